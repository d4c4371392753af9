"""Serving backends: what runs the model server. One module each behind :mod:`.base`.

- :mod:`.base` — the one small interface every backend implements.
- :mod:`.auto` — choosing a backend for ``serve(..., backend="auto")``.
- :mod:`.embedded` — this package's model server in a child process.
- :mod:`.local` — a ``tensorflow_model_server`` found on PATH, run as a child process.
- :mod:`.docker` — the official ``tensorflow/serving`` image (a package, one module per part).

Shared by them:

- :mod:`.child_process` — a server run as a child process: its log, tied to this process,
  stopped gracefully.
- :mod:`.startup` — checks before the start, ports, and the wait until the models answer.
- :mod:`.progress` — progress of long start-up work, as a callback (no widgets here).
- :mod:`.workdir` — the work folders of servers run as child processes.
"""
