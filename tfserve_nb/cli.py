"""``tfserve-nb`` command line: ``model-server`` (tensorflow_model_server's flags), ``demo`` and
``manifests``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: tfserve-nb <command> [args]

commands:
  model-server   run the embedded TF-Serving-compatible model server
                 (tensorflow_model_server's flags; --help lists them)
  demo           export, serve, predict, new version, switch — end to end
  manifests      write Kubernetes and KServe manifests for a model repository
                 (--help lists the options)
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "model-server":
        from .model_server.main import run

        return run(rest)
    if command == "demo":
        from .demo import main as demo_main

        return demo_main(rest)
    if command == "manifests":
        from .deploy.command import run as manifests

        return manifests(rest)
    print(f"tfserve-nb: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
