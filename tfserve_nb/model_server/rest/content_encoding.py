"""Compressed request bodies: ``Content-Encoding: gzip`` or ``deflate``, inflated as TF Serving's
REST server does.

Bodies are inflated at most to :data:`MAX_DECOMPRESSED_BYTES` (upstream's
``ZLib::kMaxUncompressedBytes``, 100 MB); a body that would inflate further is, as upstream, read
as empty (``JSON Parse error: The document is empty``) without inflating the rest. Pure function;
thread-safe.
"""

from __future__ import annotations

import logging
import zlib

from ...core.status import invalid_argument

__all__ = ["MAX_DECOMPRESSED_BYTES", "decompress"]

log = logging.getLogger(__name__)

MAX_DECOMPRESSED_BYTES = 100 * 1024 * 1024
"""Upstream's cap on an inflated request body (``ZLib::kMaxUncompressedBytes``)."""


def decompress(body: bytes, encoding: str) -> bytes:
    """Request bodies may be gzip- or deflate-compressed (``Content-Encoding``). Inflated at
    most to :data:`MAX_DECOMPRESSED_BYTES`: past it the body reads as empty, as upstream's
    ``ReadRequestGzipBytes`` does, and the rest is never inflated."""
    encoding = encoding.strip().lower()
    if encoding not in ("gzip", "deflate"):
        return body
    wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    data = body
    try:
        while data:  # a gzip body may hold several members, one after another
            inflater = zlib.decompressobj(wbits)
            part = inflater.decompress(data, MAX_DECOMPRESSED_BYTES - size + 1)
            size += len(part)
            if size > MAX_DECOMPRESSED_BYTES or inflater.unconsumed_tail:
                log.error(
                    "Failed to uncompress the %s request body: more than %d bytes inflated",
                    encoding,
                    MAX_DECOMPRESSED_BYTES,
                )
                return b""
            if not inflater.eof:
                raise zlib.error("the compressed data ends early")
            parts.append(part)
            data = inflater.unused_data if encoding == "gzip" else b""
            if not data.strip(b"\0"):  # padding after the last member, as gzip.decompress
                break
    except zlib.error as exc:
        raise invalid_argument(f"Failed to decompress {encoding} request body: {exc}") from None
    return b"".join(parts)
