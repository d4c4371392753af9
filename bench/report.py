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
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import setups
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
class Round:
    """One measurement of a load cell: the answers' summary, the CPU milliseconds per successful
    request the server (``server_cpu_ms``) and the load generator (``client_cpu_ms``) spent in
    the measured period, and the mean rows per batch the server's batching sessions ran then
    (NaN: none ran)."""

    summary: Summary
    server_cpu_ms: float
    client_cpu_ms: float
    batch_size: float


@dataclass(frozen=True)
class LoadCell:
    """One setup under closed-loop load: ``concurrency`` batch-1 clients of ``generator``
    (``python`` or ``native``) on ``model``, one :class:`Round` per round measured."""

    model: str
    setup: str
    concurrency: int
    generator: str
    rounds: list[Round]

    def median(self, value: Callable[[Round], float]) -> float:
        return median([value(r) for r in self.rounds])


@dataclass(frozen=True)
class InProcessCall:
    """The in-process limit: ``call`` (``signature`` or ``prepared``) at ``batch`` rows, one
    summary and CPU milliseconds per row (the process's, every thread) per round."""

    model: str
    call: str
    batch: int
    rounds: list[Summary]
    cpu_ms_per_row: list[float]


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
    switch_clients: int
    rss_one_version: int
    rss_two_versions: int
    rss_bare: int


@dataclass(frozen=True)
class Results:
    mode: str
    measurement: str
    """How long each cell was measured, in words."""
    machine: dict[str, Any]
    batching: dict[str, str]
    """The batching server's parameters: ``"shared"`` (its ``--batching_parameters_file``)
    and each model's own."""
    seconds: float
    inprocess: list[InProcessCall]
    cells: list[LoadCell]
    lifecycle: Lifecycle

    def cell(self, model: str, setup: str, concurrency: int, generator: str) -> LoadCell | None:
        for c in self.cells:
            if (c.model, c.setup, c.concurrency, c.generator) == (
                model,
                setup,
                concurrency,
                generator,
            ):
                return c
        return None

    def limit(self, model: str, call: str, batch: int) -> InProcessCall | None:
        for c in self.inprocess:
            if (c.model, c.call, c.batch) == (model, call, batch):
                return c
        return None

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.cells))

    @property
    def generators(self) -> list[str]:
        return list(dict.fromkeys(c.generator for c in self.cells))

    @property
    def setups(self) -> list[str]:
        return list(dict.fromkeys(c.setup for c in self.cells))


def median(values: list[float]) -> float:
    """The median of ``values`` (NaN if none)."""
    return statistics.median(values) if values else math.nan


# ---- writing -------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def _spread(values: list[float], digits: int = 0) -> str:
    """``median [min-max]`` (just the value if there is one; — if none)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "—"
    mid = f"{median(values):,.{digits}f}"
    if len(values) == 1:
        return mid
    return f"{mid} [{min(values):,.{digits}f}-{max(values):,.{digits}f}]"


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


GENERATOR_NAMES = {
    "python": "Python clients (bench.loadgen, 2 worker processes)",
    "native": "native: h2load (gRPC) / wrk (REST), one thread",
}


def markdown(results: Results, plot_name: str) -> str:
    """``RESULTS.md``: machine, targets, load table, in-process limit, lifecycle."""
    from bench.targets import targets

    m = results.machine
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    batching = "; ".join(
        f"{name}: `{' '.join(text.split())}`" for name, text in results.batching.items()
    )
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
        "Every figure is the median over the rounds, with [min-max]. "
        f"Batching parameters: {batching}.",
        "",
        f"![performance]({plot_name})",
        "",
        "## Targets",
        "",
        "Each target is computed in every round from that round's measurements; *met* means "
        "met in its worst round.",
        "",
        targets_table(targets(results)),
        "",
        "## At a glance (requests/s)",
        "",
        glance_table(results),
        "",
        "## Under load",
        "",
        "CPU per request: CPU seconds (user + system) of the setup's server processes, and of "
        "the load generator, in the measured period, over the requests answered. Batch: mean "
        "rows per batch the server's batching sessions ran.",
        "",
        load_table(results),
        "",
        "## The limit: the SavedModel signature called in-process",
        "",
        "`signature`: `signature(**{name: tf.constant(x)})` and `.numpy()`, as a user writes it; "
        "`prepared`: the server's call (`SavedModelServable.run`: a session callable per "
        "signature, fed and fetched by tensor name). One thread, a bare process.",
        "",
        _table(
            ["model", "call", "batch", "p50 ms", "calls/s", "rows/s", "CPU ms/row"],
            [
                [
                    c.model,
                    c.call,
                    str(c.batch),
                    _spread([s.p50_ms for s in c.rounds], 3),
                    _spread([s.rate for s in c.rounds]),
                    _spread([s.rate * c.batch for s in c.rounds]),
                    _spread(c.cpu_ms_per_row, 3),
                ]
                for c in results.inprocess
            ],
        ),
        "",
        "## Version lifecycle and memory (digits)",
        "",
        lifecycle_table(results.lifecycle),
        "",
    ]
    return "\n".join(parts)


def glance_table(results: Results) -> str:
    """Requests/s at each concurrency, per model, setup and load generator."""
    concurrencies = sorted({c.concurrency for c in results.cells})
    header = ["model", "setup", "load"] + [
        f"{c} client{'s' if c > 1 else ''}" for c in concurrencies
    ]
    rows = []
    for model in results.models:
        for setup in results.setups:
            for generator in results.generators:
                cells = [results.cell(model, setup, c, generator) for c in concurrencies]
                if not any(cells):
                    continue
                rows.append(
                    [model, setup, generator]
                    + [_spread([r.summary.rate for r in c.rounds]) if c else "—" for c in cells]
                )
    return _table(header, rows)


def load_table(results: Results) -> str:
    return _table(
        [
            "model",
            "setup",
            "load",
            "clients",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server CPU ms/req",
            "client CPU ms/req",
            "batch",
            "failed",
        ],
        [
            [
                c.model,
                c.setup,
                c.generator,
                str(c.concurrency),
                _spread([r.summary.rate for r in c.rounds]),
                _spread([r.summary.p50_ms for r in c.rounds], 2),
                _spread([r.summary.p99_ms for r in c.rounds], 2),
                _spread([r.server_cpu_ms for r in c.rounds], 3),
                _spread([r.client_cpu_ms for r in c.rounds], 3),
                _spread([r.batch_size for r in c.rounds], 1),
                str(sum(r.summary.errors for r in c.rounds))
                + next((f" ({r.summary.first_error})" for r in c.rounds if r.summary.errors), ""),
            ]
            for c in results.cells
        ],
    )


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
                f"failed requests during the switches, {life.switch_clients} gRPC clients",
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


def targets_table(found: list[Any]) -> str:
    """The targets (:class:`bench.targets.Target`): min / median / max over the rounds."""

    def cell(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:.2f}"

    return _table(
        ["target", "min", "median", "max", "bound", "met", "from"],
        [
            [
                t.name,
                *(cell(v) for v in t.spread),
                f"{t.bound:g}",
                "yes" if t.met else "**no**",
                t.detail,
            ]
            for t in found
        ],
    )


SETUP_STYLES = {
    setups.TRANSPORT_FLOOR_GRPC: ("#888888", "--"),
    setups.TRANSPORT_FLOOR_REST: ("#bbbbbb", "--"),
    setups.EMBEDDED_GRPC: ("#1f77b4", "-"),
    setups.BATCHING_GRPC: ("#2ca02c", "-"),
    setups.EMBEDDED_REST: ("#ff7f0e", "-"),
    setups.FASTAPI: ("#d62728", "-"),
    setups.MLFLOW: ("#9467bd", "-"),
}


def plot(results: Results, path: Path) -> None:
    """Per model (a row): requests/s with each load generator, and p50 latency with the Python
    clients, against clients, log scales; medians over the rounds with min-max bars, and the
    in-process limit (batch 1, one thread) as a dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, generators = results.models, results.generators
    panels = [(g, "requests/s") for g in generators] + [(generators[0], "p50 latency (ms)")]
    fig, axes = plt.subplots(
        len(models), len(panels), figsize=(5.5 * len(panels), 4 * len(models)), squeeze=False
    )
    for row, model in zip(axes, models, strict=True):
        limit = results.limit(model, "signature", 1)
        for ax, (generator, title) in zip(row, panels, strict=True):
            for setup in results.setups:
                color, style = SETUP_STYLES[setup]
                cells = [
                    c
                    for c in results.cells
                    if (c.model, c.setup, c.generator) == (model, setup, generator)
                ]
                if not cells:
                    continue

                def value(r: Round, title: str = title) -> float:
                    return r.summary.rate if title == "requests/s" else r.summary.p50_ms

                mid = [c.median(value) for c in cells]
                low = [m - min(value(r) for r in c.rounds) for m, c in zip(mid, cells, strict=True)]
                high = [
                    max(value(r) for r in c.rounds) - m for m, c in zip(mid, cells, strict=True)
                ]
                ax.errorbar(
                    [c.concurrency for c in cells], mid, yerr=[low, high], fmt=style,
                    color=color, marker="o", capsize=3, label=setup,
                )  # fmt: skip
            if limit:
                one = median([s.rate if title == "requests/s" else s.p50_ms for s in limit.rounds])
                ax.axhline(one, color="black", linestyle=":", label="in-process, batch 1")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(sorted({c.concurrency for c in results.cells}))
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_xlabel("closed-loop clients")
            ax.set_title(f"{model}: {title}, {generator} load", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"tfserve-nb, {results.machine['cpu']}, {results.machine['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(results: Results, out: Path, log: Callable[[str], None]) -> None:
    """Write ``RESULTS.md``, ``performance.png`` and ``raw/results.json`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "raw").mkdir(exist_ok=True)
    plot(results, out / "performance.png")
    (out / "RESULTS.md").write_text(markdown(results, "performance.png"))
    (out / "raw" / "results.json").write_text(json.dumps(dataclasses.asdict(results), indent=1))
    log(f"wrote {out / 'RESULTS.md'} and {out / 'performance.png'}")
