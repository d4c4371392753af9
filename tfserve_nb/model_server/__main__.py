"""``python -m tfserve_nb.model_server``: the server with TF Serving's flags (:mod:`.main`)."""

import sys

from .main import run

sys.exit(run())
