"""The reliability suite: bad input, HTTP framing, bounded resources and process faults, against
real server processes on 127.0.0.1. Every loop is bounded in count and time.

The conformance suites' helpers (conformance_helpers, test_server_process) are top-level modules
of tests/model_server, which has no __init__.py: they are imported from there.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model_server"))
