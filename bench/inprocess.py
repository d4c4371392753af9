"""The limit: a SavedModel's serving signature called in-process, in a bare Python process.

``python -m bench.inprocess --saved_model DIR --batches 1,64 --seconds S`` imports TensorFlow,
loads the SavedModel with ``tf.saved_model.load``, calls its ``serving_default`` signature once,
records the process's resident memory (what the server's memory is compared with), then times
closed-loop calls for ``S`` seconds per batch size, two ways:

- ``signature``: what a user writes, ``signature(**{name: tf.constant(x)})`` and ``.numpy()`` of
  every output;
- ``prepared``: the server's call, :meth:`~tfserve_nb.servables.saved_model.SavedModelServable.run`
  (the version's session, fed and fetched by tensor name; numpy in and out too).

It prints one JSON object: ``{"rss_bytes": ..., "calls": [{"call", "batch", "summary",
"cpu_ms_per_row"}]}``, the last the process's CPU milliseconds (every thread) per row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence

from bench.stats import summarize

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _time_calls(call: Callable[[], object], seconds: float) -> tuple[list[float], float]:
    """Latencies of closed-loop calls for ``seconds`` (after a warm-up), and the process's CPU
    seconds (all its threads: TensorFlow's run on every core) over those calls."""
    for _ in range(20):  # warm up
        call()
    latencies = []
    cpu = time.process_time()
    end = time.perf_counter() + seconds
    while (start := time.perf_counter()) < end:
        call()
        latencies.append(time.perf_counter() - start)
    return latencies, time.process_time() - cpu


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saved_model", required=True)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)

    import numpy as np
    import psutil
    import tensorflow as tf

    from tfserve_nb.servables.saved_model import SavedModelServable

    signature = tf.saved_model.load(args.saved_model).signatures["serving_default"]
    ((name, spec),) = signature.structured_input_signature[1].items()
    rng = np.random.default_rng(0)

    def inputs(batch: int) -> np.ndarray:
        return rng.random((batch, *spec.shape[1:]), dtype=np.float32)

    signature(**{name: tf.constant(inputs(1))})
    rss = psutil.Process().memory_info().rss
    servable = SavedModelServable(args.saved_model)
    served = servable.signatures["serving_default"]
    aliases = list(served.outputs)
    calls = []
    for batch in (int(b) for b in args.batches.split(",")):
        x = inputs(batch)

        def as_written(x: np.ndarray = x) -> object:
            return {k: v.numpy() for k, v in signature(**{name: tf.constant(x)}).items()}

        def as_served(x: np.ndarray = x) -> object:
            return servable.run(served, {name: x}, aliases)

        for way, call in (("signature", as_written), ("prepared", as_served)):
            latencies, cpu_s = _time_calls(call, args.seconds)
            summary = summarize(latencies, args.seconds)
            calls.append(
                {
                    "call": way,
                    "batch": batch,
                    "summary": dataclasses.asdict(summary),
                    "cpu_ms_per_row": 1e3 * cpu_s / (len(latencies) * batch),
                }
            )
    print(json.dumps({"rss_bytes": rss, "calls": calls}))


if __name__ == "__main__":
    main()
