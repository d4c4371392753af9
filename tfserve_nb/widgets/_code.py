"""Copyable code in the panels: the protocol beside every action, as ``<pre>`` blocks.

Each block is a ``<details>`` element (a click folds it), its text selectable and escaped, so what
is copied is exactly the command or snippet. Pure HTML, no JavaScript.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._render import BORDER, MUTED, esc


def code_block(title: str, code: str, *, open: bool = True) -> str:
    """``code`` under a small ``title``, folded when ``open`` is false."""
    return (
        f'<details class="tfnb-code"{" open" if open else ""} style="margin-top:6px">'
        f'<summary style="color:{MUTED};font-size:12px;cursor:pointer">{esc(title)}</summary>'
        f'<pre style="user-select:text;white-space:pre-wrap;word-break:break-all;'
        f"max-height:220px;overflow:auto;border:1px solid {BORDER};border-radius:4px;"
        f'padding:6px;margin:2px 0;font-size:11px">{esc(code.rstrip())}</pre></details>'
    )


def code_blocks(blocks: Iterable[tuple[str, str]], *, open_first: int = 1) -> str:
    """(title, code) pairs as :func:`code_block` s, the first ``open_first`` of them open."""
    return "".join(
        code_block(title, code, open=i < open_first) for i, (title, code) in enumerate(blocks)
    )
