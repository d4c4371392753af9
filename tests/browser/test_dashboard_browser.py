"""The dashboard in a real browser: JupyterLab on loopback, Debian's Chromium driven by
Playwright, a notebook run from the Run menu, and the switching controls clicked by hand.

Nothing is downloaded: Playwright launches ``/usr/bin/chromium`` (``executable_path``), host
names other than 127.0.0.1 do not resolve and any attempt to reach one fails the test, and
JupyterLab runs with news, update checks and the PyPI extension manager off. Screenshots and
JupyterLab's log go to ``test-artifacts/browser/``.

Chromium missing: the test fails under ``CI=true`` (the CI set-up installs it) and is skipped
elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import nbformat
import pytest

from tests.helpers.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # nothing but loopback
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "02_versions_and_rollout.ipynb"
"""The dashboard notebook, copied as it is into JupyterLab's root; the test runs it up to
:data:`RUN_UNTIL` (its dashboard on screen, version 1 pinned, version 2 exported next to it),
then clicks the controls the rest of the notebook drives from Python."""
RUN_UNTIL = "## 3. A canary label on version 2"
"""The first markdown cell the test does not run: JupyterLab's *Run All Above Selected Cell*
from there."""


def require_browser() -> None:
    """Skip (locally) or fail (CI) with a clear message when Chromium or Playwright is missing."""
    problems = []
    if not CHROMIUM.exists():
        problems.append(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install "
            "chromium; scripts/install-system-deps does it)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright Python package is missing (pip install '.[test]')")
    if problems:
        message = "browser tests need Chromium and Playwright: " + "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL, token and root directory."""

    url: str
    token: str
    root: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 (random port, token) with a root holding a copy of the dashboard
    notebook; its config, data, runtime, settings and temp dirs are private (the temp dir is
    removed afterwards)."""
    require_browser()
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    root.mkdir()
    notebook = nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, root / NOTEBOOK)

    settings = home / "settings" / "@jupyterlab"
    for plugin, values in {
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "notebook-extension/tracker": {"autoStartDefaultKernel": True},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    config = home / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "LabApp": {
                    "news_url": None,
                    "extension_manager": "readonly",
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                }
            }
        )
    )
    port, token = free_port(), secrets.token_hex(16)
    # The notebook runs only up to RUN_UNTIL, so its own clean-up (the temp folder it exports
    # into) never runs: its kernel gets a temp dir of its own, removed with JupyterLab.
    kernel_tmp = tempfile.mkdtemp(prefix="tfserve-nb-lab-tmp-")
    env = {
        **os.environ,
        "TMPDIR": kernel_tmp,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "jupyterlab.log"  # kept for diagnosis, with the screenshots
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",  # CI runs as root; harmless otherwise
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(
                f"JupyterLab exited ({process.returncode}):\n" + log_path.read_text()[-3000:]
            )
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until(ready, timeout=90, what="JupyterLab to answer")
        yield Lab(url, token, root)
    finally:
        request = urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST")
        try:
            urllib.request.urlopen(request, timeout=10).close()
            process.wait(timeout=60)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
        shutil.rmtree(kernel_tmp, ignore_errors=True)


@pytest.fixture
def page(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A Chromium page that can reach only 127.0.0.1 (other host names do not resolve); the
    test fails if the page even tried another host.
    A failed test leaves ``test-artifacts/browser/failed-<test>.png``."""
    from playwright.sync_api import sync_playwright

    left_loopback: list[str] = []

    def note_request(request: Any) -> None:
        if urlparse(request.url).hostname not in ("127.0.0.1", None):
            left_loopback.append(request.url)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1500})
        context.on("request", note_request)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield tab
        finally:
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                tab.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
            context.close()
            browser.close()
        assert not left_loopback, f"the page tried to leave loopback: {left_loopback}"
        assert not errors, f"JavaScript errors in the page: {errors}"


def api(lab: Lab, path: str, body: Any = None) -> Any:
    """One call to the Jupyter server's REST API; the decoded JSON answer."""
    request = urllib.request.Request(
        f"{lab.url}/api/{path}?token={lab.token}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def start_kernel(lab: Lab, notebook: str) -> None:
    """Start the notebook's kernel session through the API, so the page attaches to it instead
    of racing its own start-up (or asking which kernel to use)."""
    api(
        lab,
        "sessions",
        {"path": notebook, "type": "notebook", "name": notebook, "kernel": {"name": "python3"}},
    )


def kernel_connected(lab: Lab) -> bool:
    """Whether a kernel is idle with the page's websocket attached (``/api/kernels``): run
    requests sent earlier can be lost while jupyter_server is still connecting it."""
    return any(k["connections"] > 0 and k["execution_state"] == "idle" for k in api(lab, "kernels"))


def shoot(target: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


def test_dashboard_notebook_runs_and_switches_versions_from_clicks(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    page.set_default_timeout(60_000)
    start_kernel(lab, NOTEBOOK)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    page.locator(".jp-Notebook").wait_for()
    page.keyboard.press("Control+b")  # hide the file browser: more room for the dashboard
    wait_until(lambda: kernel_connected(lab), timeout=120, what="the notebook's kernel to connect")
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1)

    # Run the notebook up to its canary section: train, export v1, serve, the dashboard, pin v1,
    # export v2.
    stop_at = page.locator(".jp-MarkdownCell", has_text=RUN_UNTIL.lstrip("# "))
    stop_at.locator(".jp-InputPrompt").click()  # selects the cell (not its links)
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.get_by_role("menuitem", name="Run All Above Selected Cell", exact=True).click()

    dashboard = page.locator(".tfnb-dashboard")
    versions = dashboard.locator(".tfnb-versions-table")
    predictions = dashboard.locator(".tfnb-predictions-table")
    message = dashboard.locator(".tfnb-switch-message")
    expect(dashboard).to_contain_text("Digits: rollout of version 2", timeout=180_000)
    expect(versions).to_contain_text("on disk · not asked for by the policy", timeout=120_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=60_000
    )
    expect(message).to_contain_text("Now serving version 1.")  # the notebook's dash.pin(1)
    expect(predictions).to_contain_text("accuracy")
    assert versions.locator("tbody tr").count() == 2
    assert predictions.locator("thead th").all_inner_texts()[-1].strip() == "v1"
    assert predictions.locator("img").count() == 8  # the digits drawn as images
    shoot(dashboard, "01-version-1-serving")

    # A label on a version that is not loaded: refused, explained, nothing changes.
    canary = dashboard.locator(".tfnb-label-canary select")
    canary.select_option(label="v2 — not loaded")
    dashboard.get_by_role("button", name="Move canary").click()
    expect(message).to_contain_text("Version 2 is not loaded")
    expect(message).to_contain_text("FAILED_PRECONDITION")
    shoot(dashboard, "02-label-refused")

    # Pin versions 1 and 2: both load, the predictions get a second column.
    before = predictions.inner_text()
    dashboard.get_by_role("button", name="v2", exact=True).click()
    dashboard.get_by_role("button", name="Pin selected").click()
    expect(message).to_contain_text("Now serving versions 1 and 2.", timeout=120_000)
    expect(versions.locator("tbody tr", has_text="AVAILABLE")).to_have_count(2)
    expect(predictions.locator("thead th").last).to_have_text("v2")
    expect(dashboard.locator(".tfnb-predictions")).to_contain_text("where versions disagree")
    assert predictions.inner_text() != before
    shoot(dashboard, "03-versions-1-and-2")
    # ...next to its outcome, the protocol it sent and how to reproduce it by hand.
    by_hand = message.locator(".tfnb-by-hand")
    expect(by_hand).to_contain_text("HandleReloadConfigRequest")
    expect(by_hand.locator("details[open] pre").first).to_contain_text("versions: 2")
    for title in ("from Python (gRPC)", "models.config", "tensorflow/serving container"):
        by_hand.locator("summary", has_text=title).click()  # unfold it
    expect(by_hand).to_contain_text("model_service_pb2_grpc.ModelServiceStub(channel)")
    expect(by_hand).to_contain_text("--model_config_file=/models/models.config")
    expect(by_hand).to_contain_text('"state": "AVAILABLE"')  # the status read afterwards
    shoot(message, "03b-pin-protocol-by-hand")

    # Now the canary label may point at version 2.
    canary.select_option(label="v2")
    dashboard.get_by_role("button", name="Move canary").click()
    expect(message).to_contain_text("Requests for label canary now go to version 2.")
    expect(versions.locator("tbody tr").first).to_contain_text("canary")
    expect(predictions.locator("thead th").last).to_contain_text("canary")
    shoot(dashboard, "04-canary-on-version-2")

    # A promotion under traffic: requests for label stable, moved from v1 to v2 while they
    # flow; the chart's colour changes from v1's to v2's with no red.
    stable = dashboard.locator(".tfnb-label-stable select")
    stable.select_option(label="v1")
    dashboard.get_by_role("button", name="Move stable").click()
    expect(message).to_contain_text("Requests for label stable now go to version 1.")
    dashboard.locator(".lm-TabBar-tab", has_text="Traffic").click()
    traffic = dashboard.locator(".tfnb-panel", has=page.locator(".tfnb-traffic-chart"))
    traffic.locator("select").select_option(label="label stable → v1")
    dashboard.locator(".tfnb-traffic-toggle").click()
    expect(traffic).to_contain_text(re.compile(r"v1: [1-9]\d+"), timeout=30_000)  # 10 or more
    page.wait_for_timeout(3000)  # a few seconds of v1 in the chart
    stable.select_option(label="v2")
    dashboard.get_by_role("button", name="Move stable").click()
    expect(message).to_contain_text("Requests for label stable now go to version 2.")
    expect(traffic).to_contain_text(re.compile(r"v2: [1-9]\d+"), timeout=30_000)
    page.wait_for_timeout(3000)  # a few seconds of v2 after the promotion
    expect(traffic.locator("svg")).to_have_count(2)
    expect(traffic).to_contain_text("errors: 0")
    shoot(traffic, "05-promotion-under-traffic")
    dashboard.locator(".tfnb-traffic-toggle").click()
    expect(traffic).to_contain_text("errors: 0")

    # The same request by hand.
    dashboard.locator(".lm-TabBar-tab", has_text="curl & gRPC").click()
    teaching = dashboard.locator(".tfnb-teaching")
    teaching_panel = dashboard.locator(".tfnb-panel", has=page.locator(".tfnb-teaching"))
    teaching_panel.locator("select").select_option(label="label canary → v2")  # was: stable
    expect(teaching).to_contain_text("/v1/models/digits/labels/canary:predict")
    expect(teaching).to_contain_text("request.model_spec.version_label = 'canary'")
    shoot(dashboard, "06-curl-and-grpc")

    # Back to following the latest version: version 1 unloads.
    dashboard.locator(".lm-TabBar-tab", has_text="Predictions").click()
    dashboard.get_by_role("button", name="Follow latest").click()
    expect(message).to_contain_text("Now serving version 2.", timeout=120_000)
    expect(versions.locator("tbody tr").last).to_contain_text("END")
    expect(predictions.locator("thead th").last).to_contain_text("v2")
    assert "v1" not in predictions.locator("thead").inner_text()
    shoot(dashboard, "07-follow-latest")

    # The status by hand: Refresh shows GET /v1/models/digits as curl, with its answer.
    dashboard.get_by_role("button", name="Refresh").click()
    status_by_hand = dashboard.locator(".tfnb-status-by-hand")
    expect(status_by_hand).to_contain_text("curl -s http://127.0.0.1:")
    expect(status_by_hand).to_contain_text("/v1/models/digits")
    expect(status_by_hand).to_contain_text('"model_version_status"')
    status_panel = dashboard.locator(".tfnb-panel", has=page.locator(".tfnb-status-by-hand"))
    shoot(status_panel, "08-status-by-hand")
