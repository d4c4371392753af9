"""The benchmark's results, the targets they are judged by, and the files they are written to:
``RESULTS.md`` (tables, machine, targets), ``performance.png`` (the plot) and
``raw/results.json`` (everything, for later analysis)."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import Summary


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, RAM, date, software versions, and how busy the machine was when the
    run began (CPU use by other processes over one second, load average)."""
    import psutil

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    if models:
        cpu = models[0]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            p: importlib.metadata.version(p)
            for p in ("tensorflow", "grpcio", "protobuf", "fastapi", "uvicorn")
        },
        "busy_percent_before": psutil.cpu_percent(interval=1.0),
        "load_before": os.getloadavg()[0],
    }


@dataclass(frozen=True)
class LoadCell:
    """One setup under closed-loop load: ``concurrency`` batch-1 clients on ``model``."""

    model: str
    setup: str
    concurrency: int
    summary: Summary


@dataclass(frozen=True)
class InProcessCall:
    """The in-process limit: ``call`` (``signature`` or ``prepared``) at ``batch`` rows."""

    model: str
    call: str
    batch: int
    summary: Summary


@dataclass(frozen=True)
class Lifecycle:
    """Cold start, version switches (seconds from ``export_model`` returning to the new
    version answering) and memory (resident bytes)."""

    cold_start_s: float
    switch_polling_s: list[float]
    switch_triggered_s: list[float]
    switch_requests: int
    switch_failures: int
    switch_first_failure: str
    rss_one_version: int
    rss_two_versions: int
    rss_bare: int


@dataclass(frozen=True)
class Results:
    mode: str
    measurement: str
    """How long each cell was measured, in words."""
    machine: dict[str, Any]
    batching_parameters: str
    seconds: float
    inprocess: list[InProcessCall]
    cells: list[LoadCell]
    lifecycle: Lifecycle

    def cell(self, model: str, setup: str, concurrency: int) -> Summary | None:
        for c in self.cells:
            if (c.model, c.setup, c.concurrency) == (model, setup, concurrency):
                return c.summary
        return None

    def limit(self, model: str, call: str, batch: int) -> Summary | None:
        for c in self.inprocess:
            if (c.model, c.call, c.batch) == (model, call, batch):
                return c.summary
        return None

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.cells))


@dataclass(frozen=True)
class Target:
    """One of issue 6's targets, as measured: ``value`` against ``bound``."""

    name: str
    value: float
    bound: float
    met: bool
    detail: str


def targets(results: Results) -> list[Target]:
    """Issue 6's targets, from the ratios of this run."""
    out = []

    def add(name: str, value: float, bound: float, at_most: bool, detail: str) -> None:
        met = not math.isnan(value) and (value <= bound if at_most else value >= bound)
        out.append(Target(name, value, bound, met, detail))

    for model in results.models:
        grpc1 = results.cell(model, "embedded, gRPC", 1)
        floor1 = results.cell(model, "transport floor, gRPC", 1)
        limit1 = results.limit(model, "signature", 1)
        rest1 = results.cell(model, "embedded, REST", 1)
        if grpc1 and floor1 and limit1:
            add(
                f"{model}: gRPC batch-1 p50, c=1 ≤ 1.25 x (in-process + transport floor)",
                grpc1.p50_ms / (limit1.p50_ms + floor1.p50_ms),
                1.25,
                True,
                f"{grpc1.p50_ms:.3f} ms vs {limit1.p50_ms:.3f} + {floor1.p50_ms:.3f} ms",
            )
        top = max(c.concurrency for c in results.cells)
        batched = results.cell(model, "embedded, gRPC, batching", top)
        comparisons = (
            ("transport floor, gRPC", 0.7),
            ("embedded, gRPC", 2.0),
            ("FastAPI + model.predict", 10.0),
        )
        for setup, factor in comparisons:
            other = results.cell(model, setup, top)
            name = f"{model}: {top} clients, batching ≥ {factor:g} x {setup} req/s"
            if batched and other:
                ratio = batched.rate / other.rate if other.rate else math.inf
                detail = f"{batched.rate:.0f} vs {other.rate:.0f} req/s"
                add(name, ratio, factor, False, detail)
            else:
                add(name, math.nan, factor, False, f"not measured at {top} clients in this run")
        if rest1 and grpc1:
            add(
                f"{model}: REST row batch-1 p50 ≤ 1.5 x gRPC p50 (c=1)",
                rest1.p50_ms / grpc1.p50_ms,
                1.5,
                True,
                f"{rest1.p50_ms:.3f} vs {grpc1.p50_ms:.3f} ms",
            )
    life = results.lifecycle
    add(
        "switch with 1 s polling ≤ 1.5 s (slowest sample)",
        max(life.switch_polling_s),
        1.5,
        True,
        ", ".join(f"{s:.2f} s" for s in life.switch_polling_s),
    )
    add(
        "switch with a triggered reload ≤ 0.5 s (slowest sample)",
        max(life.switch_triggered_s),
        0.5,
        True,
        ", ".join(f"{s:.2f} s" for s in life.switch_triggered_s),
    )
    add(
        "failed requests during the switches (64 clients) = 0",
        life.switch_failures,
        0,
        True,
        f"{life.switch_failures} of {life.switch_requests}"
        + (f": {life.switch_first_failure}" if life.switch_failures else ""),
    )
    add(
        "memory, one version ≤ 1.3 x bare process",
        life.rss_one_version / life.rss_bare,
        1.3,
        True,
        f"{life.rss_one_version / 2**20:.0f} MiB vs {life.rss_bare / 2**20:.0f} MiB",
    )
    return out


# ---- writing -------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def contention_note(machine: dict[str, Any]) -> str:
    """A sentence on how quiet the machine was: the CPUs' busy share in the second before the
    run tells (the load average, a one-minute average, still counts work that just ended)."""
    busy, load = machine["busy_percent_before"], machine["load_before"]
    quiet = busy < 10
    text = (
        f"Before the run the CPUs were {busy:.0f} % busy (load average {load:.2f}); "
        f"after it the load average was {machine.get('load_after', float('nan')):.2f}."
    )
    if not quiet:
        text += (
            " **Other processes were using the machine: absolute numbers are lower and noisier "
            "than on a quiet machine; ratios within the run are less affected.**"
        )
    return text


def markdown(results: Results, plot_name: str) -> str:
    """``RESULTS.md``: machine, load table, in-process limit, lifecycle, targets."""
    m = results.machine
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    parts = [
        f"# tfserve-nb benchmark ({results.mode})",
        "",
        f"{m['date']} · {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM · {m['os']} · "
        f"Python {m['python']}, {versions} · run took {results.seconds:.0f} s.",
        "",
        contention_note(m),
        "",
        "Closed-loop clients (each sends its next request when the last is answered), batch-1 "
        f"requests, in separate processes; everything on 127.0.0.1. {results.measurement} "
        f"Batching parameters: `{' '.join(results.batching_parameters.split())}`.",
        "",
        f"![performance]({plot_name})",
        "",
        "## At a glance",
        "",
        glance_table(results),
        "",
        "## Under load",
        "",
        _table(
            ["model", "setup", "clients", "p50 ms", "p99 ms", "req/s", "failed"],
            [
                [
                    c.model,
                    c.setup,
                    str(c.concurrency),
                    _ms(c.summary.p50_ms),
                    _ms(c.summary.p99_ms),
                    f"{c.summary.rate:.0f}",
                    str(c.summary.errors),
                ]
                for c in results.cells
            ],
        ),
        "",
        "## The limit: the SavedModel signature called in-process",
        "",
        "`signature`: `signature(**{name: tf.constant(x)})` and `.numpy()`, as a user writes it; "
        "`prepared`: the server's call (`SavedModelServable.run`: a session callable per "
        "signature, fed and fetched by tensor name).",
        "",
        _table(
            ["model", "call", "batch", "p50 ms", "p99 ms", "calls/s", "rows/s"],
            [
                [
                    c.model,
                    c.call,
                    str(c.batch),
                    _ms(c.summary.p50_ms),
                    _ms(c.summary.p99_ms),
                    f"{c.summary.rate:.0f}",
                    f"{c.summary.rate * c.batch:.0f}",
                ]
                for c in results.inprocess
            ],
        ),
        "",
        "## Version lifecycle and memory (digits)",
        "",
        lifecycle_table(results.lifecycle),
        "",
        "## Targets (issue 6)",
        "",
        targets_table(targets(results)),
        "",
    ]
    return "\n".join(parts)


def glance_table(results: Results) -> str:
    """p50 latency at the lowest concurrency and requests/s at each, per model and setup, with
    the in-process limit (one thread) on top."""
    concurrencies = sorted({c.concurrency for c in results.cells})
    low = concurrencies[0]
    header = ["model", "setup", f"p50 ms, {low} client"] + [
        f"req/s, {c} client{'s' if c > 1 else ''}" for c in concurrencies
    ]
    rows = []
    for model in results.models:
        limit = results.limit(model, "signature", 1)
        if limit:
            rows.append(
                [model, "in-process signature call, batch 1", _ms(limit.p50_ms)]
                + [f"{limit.rate:.0f} (one thread)"]
                + ["" for _ in concurrencies[1:]]
            )
        for setup in SETUP_STYLES:
            first = results.cell(model, setup, low)
            rates = [results.cell(model, setup, c) for c in concurrencies]
            rows.append(
                [model, setup, _ms(first.p50_ms) if first else "—"]
                + [f"{r.rate:.0f}" if r else "—" for r in rates]
            )
    return _table(header, rows)


def lifecycle_table(life: Lifecycle) -> str:
    mib = 2**20
    return _table(
        ["measure", "value"],
        [
            ["cold start: `serve()` to AVAILABLE", f"{life.cold_start_s:.2f} s"],
            [
                "switch, 1 s polling: `export_model` returns → new version answers",
                ", ".join(f"{s:.2f} s" for s in life.switch_polling_s),
            ],
            [
                "switch, triggered reload (`HandleReloadConfigRequest`)",
                ", ".join(f"{s:.2f} s" for s in life.switch_triggered_s),
            ],
            [
                "failed requests during the switches, 64 gRPC clients",
                f"{life.switch_failures} of {life.switch_requests}",
            ],
            ["resident memory, one version loaded", f"{life.rss_one_version / mib:.0f} MiB"],
            ["resident memory, two versions loaded", f"{life.rss_two_versions / mib:.0f} MiB"],
            [
                "bare process: `import tensorflow`, load the SavedModel, call it once",
                f"{life.rss_bare / mib:.0f} MiB",
            ],
        ],
    )


def targets_table(found: list[Target]) -> str:
    return _table(
        ["target", "measured", "bound", "met", "from"],
        [
            [t.name, _ms(t.value), f"{t.bound:g}", "yes" if t.met else "**no**", t.detail]
            for t in found
        ],
    )


SETUP_STYLES = {
    "transport floor, gRPC": ("#888888", "--"),
    "transport floor, REST": ("#bbbbbb", "--"),
    "embedded, gRPC": ("#1f77b4", "-"),
    "embedded, gRPC, batching": ("#2ca02c", "-"),
    "embedded, REST": ("#ff7f0e", "-"),
    "FastAPI + model.predict": ("#d62728", "-"),
}


def plot(results: Results, path: Path) -> None:
    """Requests/s and p50 latency against clients, one row per model, log scales; the
    in-process limit (one thread, batch 1) as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = results.models
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4 * len(models)), squeeze=False)
    for row, model in zip(axes, models, strict=True):
        for setup, (color, style) in SETUP_STYLES.items():
            cells = [c for c in results.cells if c.model == model and c.setup == setup]
            x = [c.concurrency for c in cells]
            row[0].plot(x, [c.summary.rate for c in cells], style, color=color, marker="o")
            row[1].plot(
                x, [c.summary.p50_ms for c in cells], style, color=color, marker="o", label=setup
            )
        limit = results.limit(model, "signature", 1)
        if limit:
            row[0].axhline(limit.rate, color="black", linestyle=":", label="in-process, batch 1")
            row[1].axhline(limit.p50_ms, color="black", linestyle=":", label="in-process, batch 1")
        for ax, title in zip(row, ("requests/s", "p50 latency (ms)"), strict=True):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(sorted({c.concurrency for c in results.cells}))
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_xlabel("closed-loop clients")
            ax.set_title(f"{model}: {title}")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][1].legend(fontsize=8)
    fig.suptitle(f"tfserve-nb, {results.machine['cpu']}, {results.machine['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: Results, out: Path, log: Callable[[str], None]) -> None:
    """Write ``RESULTS.md``, ``performance.png`` and ``raw/results.json`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "raw").mkdir(exist_ok=True)
    plot(results, out / "performance.png")
    (out / "RESULTS.md").write_text(markdown(results, "performance.png"))
    (out / "raw" / "results.json").write_text(json.dumps(dataclasses.asdict(results), indent=1))
    log(f"wrote {out / 'RESULTS.md'} and {out / 'performance.png'}")
