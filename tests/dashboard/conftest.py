"""Fixtures of the dashboard's tests: the local stack (Azurite, the simulator, the local
runner over the real function_app) after a flow like ``make demo``'s, and headless
Chromium (Debian's ``chromium`` package, installed by ``make chromium``) driven by
playwright's Python package.

The flow, once for the package (tests/dashboard): a ready training and validation dataset and a rejected one
(errors on line 5 and 7) through intake; a job started with ``POST /api/jobs`` on the
release channel ``support``, followed by the monitor until deployed; a second job on the
same channel (so the deployment has a previous model to roll back to); a reinforcement
fine-tuning job (reward curves); then, Azure OpenAI made full, a job pending there and one
waiting in the service's queue.

Without Chromium, or when it does not start, every browser test fails with the reason:
it is never skipped. Screenshots go to ``test-artifacts/dashboard/`` (``DASHBOARD_ARTIFACTS``
overrides it; git-ignored), listed at the end of the run."""
from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.simstack import simulator_fixture

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("DASHBOARD_ARTIFACTS") or ROOT / "test-artifacts" / "dashboard")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BASE = "gpt-4o-mini-2024-07-18"
RFT_MODEL = "o4-mini-2025-04-16"
SAMPLE = ROOT / "devstack" / "samples" / "support-chat.jsonl"
RFT_DATA = ROOT / "tests" / "validation" / "data" / "rft"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

simulator = simulator_fixture({"file_processing_seconds": 0.1, "job_pending_seconds": 0.2,
                               "job_running_seconds": 0.6, "deployment_create_seconds": 0.2,
                               "deployment_delete_seconds": 0.2, "lro_retry_after": 0.05})

_SHOTS: list[Path] = []


# ------------------------------------------------------------------------------ the stack


@pytest.fixture(scope="package")
def stack(azurite, simulator):
    """The function app on the local runner with tables and containers of its own (the
    package-scoped twin of tests/conftest.py's ``app_env`` + ``runner`` + ``ctx``)."""
    import shared.clients
    from azure.storage.blob import BlobServiceClient

    from devstack.runner import LocalRunner, load_app
    from devstack.stack import stack_env
    from shared.context import get_context
    from shared.settings import get_settings

    unique = uuid.uuid4().hex[:10]
    simulator.admin.reset()
    env = stack_env(azurite.endpoints.connection_string, simulator.url, str(simulator.ca_path), {
        "DATASETS_CONTAINER": f"datasets-{unique}", "REPORTS_CONTAINER": f"reports-{unique}",
        "RESULTS_CONTAINER": f"results-{unique}", "DATASETS_TABLE": f"Datasets{unique}",
        "JOBS_TABLE": f"Jobs{unique}", "DEPLOYMENTS_TABLE": f"Deployments{unique}",
        "DEPLOYMENT_EVENTS_TABLE": f"DeploymentEvents{unique}", "IDEMPOTENCY_TABLE": f"IdempotencyKeys{unique}",
        "AZURE_OPENAI_ACCOUNT": f"aoai{unique}",
    })
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    mp.setattr(shared.clients, "SDK_MAX_RETRIES", 0)
    get_settings.cache_clear()
    get_context.cache_clear()
    blobs = BlobServiceClient.from_connection_string(env["AzureWebJobsStorage"])
    for c in (env["DATASETS_CONTAINER"], env["REPORTS_CONTAINER"], env["RESULTS_CONTAINER"]):
        blobs.create_container(c)
    runner = LocalRunner(load_app(), env=env, host_json=ROOT / "host.json", enable_timers=False, enable_blobs=False)
    runner.start()
    try:
        yield SimpleNamespace(env=env, runner=runner, ctx=get_context(), admin=simulator.admin,
                              api=runner.base_url, page_url=runner.base_url + "/dashboard")
    finally:
        runner.stop()
        mp.undo()
        get_settings.cache_clear()
        get_context.cache_clear()


def _drop(ctx, name: str, data: bytes):
    from shared.intake import Intake

    blob = ctx.clients.blob_service.get_blob_client(ctx.settings.datasets_container, name)
    blob.upload_blob(data, overwrite=True)
    return Intake(ctx, poll_interval=0.05).process(blob)


def _until(stack, done, *, what: str, limit: int = 80, advance: float = 1.0):
    for _ in range(limit):
        assert stack.runner.run_timer("monitor")
        if done():
            return
        stack.admin.advance(advance)
        time.sleep(0.02)
    raise AssertionError(f"not done after {limit} monitor ticks: {what}")


def _status(stack, job_id: str) -> str:
    return stack.ctx.repos.get_job(job_id)["status"]


@pytest.fixture(scope="package")
def flow(stack):
    """What ``make demo`` leaves behind, and a little more (see the module doc)."""
    import httpx2 as httpx

    ctx = stack.ctx
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    train, valid = f"{BASE}/support.jsonl", f"{BASE}/support-valid.jsonl"
    assert _drop(ctx, train, SAMPLE.read_bytes()).status == "ready"
    assert _drop(ctx, valid, b"".join(lines[40:60])).status == "ready"
    # Line 5: a user message and no answer; line 7: not JSON.
    rejected = f"{BASE}/support-broken.jsonl"
    broken = lines[:4] + [b'{"messages": [{"role": "user", "content": "Where is my order?"}]}\n'] + lines[4:5] \
        + [b"this line is not JSON\n"] + lines[5:14]
    assert _drop(ctx, rejected, b"".join(broken)).status == "rejected"

    http = httpx.Client(base_url=stack.api, timeout=60, trust_env=False)
    gate = {"max_valid_loss": 5.0, "min_valid_mean_token_accuracy": 0.05}
    first = http.post("/jobs", json={"training_dataset": train, "validation_dataset": valid, "suffix": "support",
                                     "deployment": {"name": "support", "keep_alive": "redeploy", "gate": gate}})
    assert first.status_code == 201, first.text
    first = first.json()
    _until(stack, lambda: _status(stack, first["id"]) == "deployed", what="the first job deployed")

    # The same release channel again: the deployment then serves the second model and keeps the first.
    second = http.post("/jobs", json={"training_dataset": train, "validation_dataset": valid, "suffix": "support2",
                                      "seed": 11, "deployment": {"name": "support", "gate": gate}})
    assert second.status_code in (201, 202), second.text  # 202: waits while its files are uploaded again
    second = second.json()
    _until(stack, lambda: _status(stack, second["id"]) == "deployed"
           and stack.ctx.repos.find_deployment("support")["state"] == "active", what="the second job rolled out")

    # Reinforcement fine-tuning (Microsoft's Countdown sample): reward curves, per grader.
    folder = f"{RFT_MODEL}/countdown"
    grader = {"grader": json.loads((RFT_DATA / "countdown_grader.json").read_text()),
              "response_format": json.loads((RFT_DATA / "countdown_response_format.json").read_text())}
    _drop(ctx, f"{folder}/grader.json", json.dumps(grader).encode())
    assert _drop(ctx, f"{folder}/train.jsonl", (RFT_DATA / "countdown_train_25.jsonl").read_bytes()).status == "ready"
    assert _drop(ctx, f"{folder}/valid.jsonl", (RFT_DATA / "countdown_valid_15.jsonl").read_bytes()).status == "ready"
    rft = http.post("/jobs", json={"training_dataset": f"{folder}/train.jsonl",
                                   "validation_dataset": f"{folder}/valid.jsonl", "suffix": "countdown",
                                   "hyperparameters": {"eval_interval": 2, "reasoning_effort": "low"},
                                   "deployment": False})
    assert rft.status_code == 201, rft.text
    rft = rft.json()
    _until(stack, lambda: _status(stack, rft["id"]) == "succeeded", what="the RFT job succeeded", advance=2.0,
           limit=120)

    # Azure OpenAI full (its queue holds one job, and none starts): a job pending there, one waiting here.
    stack.admin.configure(max_running_jobs=0, max_queued_jobs=1)
    more = f"{BASE}/support-more.jsonl"
    assert _drop(ctx, more, b"".join(lines[:30])).status == "ready"
    pending = http.post("/jobs", json={"training_dataset": more, "suffix": "more", "deployment": False})
    assert pending.status_code == 201, pending.text
    waiting = http.post("/jobs", json={"training_dataset": more, "suffix": "later", "deployment": False})
    assert waiting.status_code == 202 and waiting.json()["queue_position"] == 1, waiting.text
    http.close()
    return SimpleNamespace(train=train, valid=valid, rejected=rejected, first=first["id"], second=second["id"],
                           rft=rft["id"], pending=pending.json()["id"], waiting=waiting.json()["id"],
                           deployment="support")


# ----------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    """Headless Chromium (a fresh profile), or a failure that says what is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: the dashboard's browser tests need Debian's "
                    "'chromium' package. `make chromium` installs it (`make test` does so first; as root, or "
                    "with passwordless sudo: apt-get install chromium). DASHBOARD_CHROMIUM names another binary.",
                    pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"The browser driver is not installed ({exc}): `make install` installs playwright from "
                    "requirements-dev.txt.", pytrace=False)
    profile = tmp_path_factory.mktemp("chromium-profile")
    manager = sync_playwright().start()
    try:
        context = manager.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=LAPTOP,
            locale="en-GB", timezone_id="UTC")
    except Exception as exc:  # noqa: BLE001 - the reason is the message
        manager.stop()
        pytest.fail(f"Chromium at {CHROMIUM} did not start under playwright: {exc}", pytrace=False)
    context.set_default_timeout(15_000)
    yield context
    context.close()
    manager.stop()


class Page:
    """One tab; remembers the page's script errors and failed requests (a test ends with none)."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.ready()

    def ready(self) -> None:
        # A selector, not wait_for_function: the page's Content-Security-Policy forbids eval.
        self.page.wait_for_selector("body[data-state=ready], body[data-state=error]", state="attached")
        assert self.page.evaluate("document.body.dataset.state") == "ready", self.page.inner_text("main")

    def go(self, fragment: str) -> None:
        self.page.evaluate("document.body.dataset.state = 'navigating'")
        self.page.evaluate(f"location.hash = {json.dumps(fragment)}")
        self.ready()

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        _SHOTS.append(path)
        print(f"screenshot: {path}")
        return path

    def __getattr__(self, name: str):
        return getattr(self.page, name)


@pytest.fixture
def tab(browser_context):
    page = browser_context.new_page()
    page.set_viewport_size(LAPTOP)
    wrapped = Page(page)
    yield wrapped
    page.close()
    assert not wrapped.errors, wrapped.errors


def pytest_terminal_summary(terminalreporter):
    if _SHOTS:
        terminalreporter.write_sep("-", "dashboard screenshots")
        for path in _SHOTS:
            terminalreporter.write_line(str(path))
