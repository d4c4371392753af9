"""``python -m bench.regular_json_server <flags>``: ``python -m tfserve_nb.model_server`` with the
REST codec's path for large numeric arrays turned off, so that every body is read as before that
path existed (Python's ``json``, then one ``np.asarray``). :mod:`bench.resources` starts it for
its "regular" measurements, the before of a before/after comparison."""

from __future__ import annotations

import sys

from tfserve_nb.model_server.main import run
from tfserve_nb.model_server.rest import numeric_arrays


def main() -> int:
    numeric_arrays.SPAN_MIN_BYTES = 2**62  # no body is that large: the regular path reads all
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
