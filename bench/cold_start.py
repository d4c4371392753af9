"""``python -m bench.cold_start [--reps 5] [--modes before,cold,standby,ready] [--json FILE]``:
how long ``serve()`` takes to its first answer, and a new version to load.

Each repetition of each mode runs in a fresh Python process (this module with ``--rep``), as a
notebook would: it builds the digits model (:data:`bench.models.MODELS`), exports version 1 into
a fresh base path with ``tfserve_nb.export_model``, then times

- **first answer**: ``serve(base, backend="embedded")`` until the first successful ``predict``;
- **version load**: version 2 (exported beforehand elsewhere) renamed into the base path, the
  server asked to look at once (a config reload: the 1 s polling period is not measured), until
  ``GetModelStatus`` says version 2 is AVAILABLE (polled every 2 ms).

The modes, which differ only in the environment the process gets:

- ``before``: both speed-ups off (``TFSERVE_NB_LAZY_KERAS=0``: the server imports TensorFlow
  with its eager Keras import; ``TFSERVE_NB_STANDBY=0``: every start is cold);
- ``cold``: the server skips the Keras import, no standby child;
- ``standby``: as a notebook gets it: ``export_model`` starts the standby child, and ``serve()``
  follows the export at once (the standby may still be importing);
- ``ready``: the same, ``serve()`` called once the standby has imported everything (a notebook
  whose user took a moment between the export and the serve).

Modes take turns within each repetition, so a slow spell of the machine spreads over all of
them. Prints each measurement's median [min, max] in seconds. Every server is stopped; a
repetition that takes longer than :data:`REP_TIMEOUT_SECONDS` fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = ("before", "cold", "standby", "ready")
MODE_ENV = {
    "before": {"TFSERVE_NB_LAZY_KERAS": "0", "TFSERVE_NB_STANDBY": "0"},
    "cold": {"TFSERVE_NB_LAZY_KERAS": "1", "TFSERVE_NB_STANDBY": "0"},
    "standby": {"TFSERVE_NB_LAZY_KERAS": "1", "TFSERVE_NB_STANDBY": "1"},
    "ready": {"TFSERVE_NB_LAZY_KERAS": "1", "TFSERVE_NB_STANDBY": "1"},
}
"""The environment of each mode's processes (on top of this one's)."""

MEASURES = {
    "first_answer_s": ("first answer", 1.0, "s", 2),
    "version_load_s": ("version load", 1e3, "ms", 0),
}
"""Each measurement (seconds) as printed: its name, scale, unit and decimals."""
REP_TIMEOUT_SECONDS = 300.0
STANDBY_READY_TIMEOUT = 120.0
VERSION_LOAD_TIMEOUT = 60.0


def measure_once(mode: str, workdir: Path) -> dict[str, Any]:
    """One repetition of ``mode`` in this process (a fresh one: see :func:`run_rep`); returns
    its measurements (seconds) and whether the server was the standby child."""
    import tfserve_nb as tfs
    from bench.models import MODELS
    from tfserve_nb.backends import standby
    from tfserve_nb.backends.embedded import EmbeddedProcess
    from tfserve_nb.export import export_model as export_without_standby
    from tfserve_nb.waiting import wait_until

    spec = MODELS["digits"]
    model = spec.build()
    x = spec.example()
    staged = export_without_standby(model, workdir / "staged" / spec.name, 2).path
    base = workdir / spec.name
    tfs.export_model(model, base, 1)  # starts the standby child where it is on
    if mode == "ready" and not standby.wait_ready(STANDBY_READY_TIMEOUT):
        raise RuntimeError("the standby child did not get ready")
    standby_pid = standby.waiting_pid()

    start = time.perf_counter()
    server = tfs.serve(base, backend="embedded")
    try:
        server.predict(x)
        first_answer = time.perf_counter() - start

        os.rename(staged, base / "2")
        appeared = time.perf_counter()
        server.reload_config(list(server.models.values()))
        wait_until(
            lambda: any(s.version == 2 and s.state == "AVAILABLE" for s in server.status()),
            VERSION_LOAD_TIMEOUT,
            timed_out=lambda: RuntimeError("version 2 did not load"),
            interval=0.002,
        )
        version_load = time.perf_counter() - appeared
        process = server.process
        used_standby = isinstance(process, EmbeddedProcess) and process.pid == standby_pid
    finally:
        server.stop()
        standby.close()
    return {
        "mode": mode,
        "first_answer_s": first_answer,
        "version_load_s": version_load,
        "used_standby": used_standby,
    }


def run_rep(mode: str, workdir: Path) -> dict[str, Any]:
    """:func:`measure_once` of ``mode`` in a fresh Python process with the mode's environment."""
    workdir.mkdir(parents=True)
    env = {**os.environ, **MODE_ENV[mode], "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "bench.cold_start", "--rep", mode, "--workdir", str(workdir)]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=REP_TIMEOUT_SECONDS,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} repetition failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if mode in ("standby", "ready") and not result["used_standby"]:
        raise RuntimeError(f"{mode}: serve() did not use the standby child")
    return result


def shown(measure: str, values: list[float]) -> str:
    """``<name> <value> <unit>`` for one value, ``<name> <median> <unit> [<min>, <max>]`` for
    several (``values`` in seconds, shown in the unit of ``measure``)."""
    name, scale, unit, digits = MEASURES[measure]

    def number(value: float) -> str:
        return f"{value * scale:.{digits}f}"

    text = f"{name} {number(statistics.median(values))} {unit}"
    return text if len(values) == 1 else f"{text} [{number(min(values))}, {number(max(values))}]"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each mode")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--rep", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rep:  # one repetition, in the fresh process run_rep started
        print(json.dumps(measure_once(args.rep, args.workdir)), flush=True)
        return

    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    workdir = Path(tempfile.mkdtemp(prefix="tfserve-nb-cold-start-"))
    results: list[dict[str, Any]] = []
    try:
        for rep in range(args.reps):
            for mode in modes:
                result = run_rep(mode, workdir / f"{mode}-{rep}")
                results.append(result)
                cells = ", ".join(shown(m, [result[m]]) for m in MEASURES)
                print(f"rep {rep + 1}/{args.reps} {mode:8s} {cells}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nmedian [min, max] of {args.reps} fresh processes per mode:")
    for mode in modes:
        of_mode = [r for r in results if r["mode"] == mode]
        cells = "   ".join(shown(m, [r[m] for r in of_mode]) for m in MEASURES)
        print(f"  {mode:8s} {cells}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
