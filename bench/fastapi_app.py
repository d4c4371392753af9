"""The alternative a notebook user would write: a FastAPI endpoint calling ``model.predict``.

``python -m bench.fastapi_app --keras_model PATH --port_file FILE`` loads the Keras model and
serves ``POST /predict`` with TF Serving's row format (``{"instances": [...]}`` in,
``{"predictions": [...]}`` out) on a free loopback port, written to ``FILE`` as
``{"rest_port": P}``. One uvicorn worker, FastAPI's defaults: the endpoint is a plain ``def``, so
it runs on FastAPI's thread pool.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from collections.abc import Sequence
from typing import Any


def build_app(keras_model: str) -> Any:
    """The FastAPI application, as short as a notebook user would write it."""
    import keras
    import numpy as np
    from fastapi import FastAPI

    model = keras.models.load_model(keras_model)
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict) -> dict:
        x = np.asarray(body["instances"], dtype="float32")
        return {"predictions": model.predict(x, verbose=0).tolist()}

    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keras_model", required=True)
    parser.add_argument("--port_file", required=True)
    args = parser.parse_args(argv)
    import uvicorn

    app = build_app(args.keras_model)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    tmp = f"{args.port_file}.tmp"
    with open(tmp, "w") as f:
        json.dump({"rest_port": sock.getsockname()[1]}, f)
    os.replace(tmp, args.port_file)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
