"""``python -m bench [--quick] [--peers] [--out DIR] [--keep]``: run the benchmark, write the
results."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter measurements")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also measure MLflow's scoring server (installs the peers extra if it is missing)",
    )
    parser.add_argument("--out", type=Path, help="results directory (default bench/results)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    # Heavy imports here, not at module level: the client worker processes, spawned by
    # multiprocessing, import this module again.
    from bench import report
    from bench.run import Plan, run
    from bench.targets import targets

    plan = Plan.quick(args.peers) if args.quick else Plan.full(args.peers)
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    workdir = Path(tempfile.mkdtemp(prefix="tfserve-nb-bench-"))
    start = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - start:6.1f} s] {message}", flush=True)

    try:
        results = run(plan, workdir, say)
        report.write(results, out, say)
        for target in targets(results):
            verdict = "met    " if target.met else "NOT met"
            if not target.values:
                verdict = "unknown"  # not measured in this run (--quick skips slow cells)
            low, mid, high = target.spread
            say(f"{verdict}  {target.name}: {mid:.2f} [{low:.2f}-{high:.2f}] ({target.detail})")
    finally:
        if args.keep:
            say(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
