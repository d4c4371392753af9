"""The benchmark: the embedded server measured against its limits, in one run on one machine.

``.venv/bin/python -m bench`` (``--quick``: about a minute; ``--peers``: MLflow too) writes
``bench/results/RESULTS.md``, ``bench/results/performance.png`` and
``bench/results/raw/results.json`` (``--quick``: under ``bench/results/quick/``). Side by side,
on the same models (:mod:`bench.models`: the digits classifier and the 28x28x1 CNN, whose
requests are all transport, and MobileNetV2 at 128x128x3, whose compute matters), batch-1
requests:

1. the limit: the SavedModel's signature called in-process, batch 1 and at the batch sizes the
   scheduler forms (:mod:`bench.inprocess`);
2. the transport floor: the embedded server's own front-ends and core answering canned zeros
   instead of running the model (:mod:`bench.floor_server`), over gRPC and REST;
3. the embedded server over gRPC, with batching off and on (each model with its own
   parameters), and over REST (row format);
4. what a notebook user would pick instead: a FastAPI endpoint calling ``model.predict``
   (:mod:`bench.fastapi_app`) and, with ``--peers``, MLflow's scoring server
   (:mod:`bench.mlflow_peer`);

each at 1, 8 and 64 closed-loop clients (:mod:`bench.setups`, :mod:`bench.load_cells`) from two
load generators: the Python clients a notebook sends (:mod:`bench.loadgen`) and native ones,
``h2load`` and ``wrk`` (:mod:`bench.native_load`); with p50 and p99 latency, requests/s, the
server's and the clients' CPU per request and the mean batch the server formed. Everything is
measured in three interleaved rounds and every target (:mod:`bench.targets`) is judged per
round: met only if its worst round meets it. Then cold start, version switches (with 1 s
polling and with a triggered reload) under 64 clients and the failed requests during them, and
resident memory with one and two versions against a bare process that loads the same
SavedModel (:mod:`bench.run`). All traffic stays on 127.0.0.1; every loop is bounded by a
duration.

Separately, ``.venv/bin/python -m bench.resources`` measures what one 50 MB numeric REST body
costs the server in resident memory and the other clients in latency, with the REST codec's
path for large numeric arrays and without it (:mod:`bench.resources`).
"""
