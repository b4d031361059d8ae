"""What the dashboard reads and how it is served, without a browser: the API operations
added for it (checked against the OpenAPI document like every other answer), the page
and its assets (the charting library from node_modules, pinned by package-lock.json),
and that the asset is in what a deploy ships (.funcignore, as Core Tools and azd read it)."""
from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from shared.api.dashboard_api import RESULTS_MAX_ROWS, _sample, parse_results
from shared.validation.codes import CODES
from tests.jobs_api.openapi_check import OpenApiChecker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checked(stack):
    """An HTTP client on the runner whose every answer is checked against the OpenAPI document."""
    import httpx2 as httpx

    from shared.api.openapi import openapi_document

    checker = OpenApiChecker(openapi_document())

    def check(response) -> None:
        response.read()
        if response.request.url.path.startswith("/api/dashboard"):
            return  # the page, not an API operation
        checker.check(response.request.method, response.request.url.raw_path.decode(), response.status_code,
                      response.headers, response.content)

    client = httpx.Client(base_url=stack.api, timeout=30, trust_env=False, event_hooks={"response": [check]})
    yield client
    client.close()


# ------------------------------------------------------------------------------ the API


def test_a_jobs_results_are_its_results_csv_as_rows(checked, stack, flow):
    r = checked.get(f"/jobs/{flow.first}/results")
    assert r.status_code == 200, r.text
    body = r.json()
    job = stack.ctx.repos.get_job(flow.first)
    assert body["results_blob"] == job["results_blob"] and body["status"] == "deployed"
    container, _, path = job["results_blob"].partition("/")
    csv_rows = stack.ctx.clients.blob_service.get_blob_client(container, path).download_blob().readall() \
        .decode().strip().splitlines()
    assert body["columns"] == csv_rows[0].split(",") and body["row_count"] == len(csv_rows) - 1 == len(body["rows"])
    first, last = body["rows"][0], body["rows"][-1]
    assert first["step"] == 1 and isinstance(first["train_loss"], float) and last["step"] == job["metrics"]["steps"]
    assert last["valid_loss"] == job["metrics"]["final"]["valid_loss"]
    # By Azure OpenAI's job id too.
    assert checked.get(f"/jobs/{job['openai_job_id']}/results").json()["rows"] == body["rows"]


def test_reinforcement_results_have_reward_columns_per_grader(checked, flow):
    body = checked.get(f"/jobs/{flow.rft}/results").json()
    assert {"train_reward_mean", "valid_reward_mean"} <= set(body["columns"])
    graders = [c for c in body["columns"] if c.startswith("train_reward_mean_")]
    assert graders and all(isinstance(r["train_reward_mean"], float) for r in body["rows"])
    # Validation runs every eval_interval steps: the other rows have null there.
    assert any(r["valid_reward_mean"] is None for r in body["rows"])


def test_a_job_without_results_yet_says_so(checked, flow):
    body = checked.get(f"/jobs/{flow.waiting}/results").json()
    assert body["rows"] == [] and body["results_blob"] is None and "no results yet" in body["note"]


def test_a_jobs_history_is_its_status_timeline(checked, stack, flow):
    body = checked.get(f"/jobs/{flow.first}/history").json()
    statuses = [h["status"] for h in body["status_history"]]
    assert statuses == [h["status"] for h in stack.ctx.repos.get_job(flow.first)["status_history"]]
    assert statuses[-1] == "deployed" and "succeeded" in statuses and all(h["at"] for h in body["status_history"])
    waiting = checked.get(f"/jobs/{flow.waiting}/history").json()
    assert waiting["status"] == "waiting" and waiting["status_history"][-1]["why"]


def test_unknown_and_malformed_jobs_are_problems(checked):
    for suffix in ("results", "history"):
        r = checked.get(f"/jobs/job-0000000000000aaaaaaaa/{suffix}")
        assert r.status_code == 404 and r.json()["type"].endswith(":job-not-found")
        r = checked.get(f"/jobs/not-a-job/{suffix}")
        assert r.status_code == 400 and r.json()["detail"].startswith("id:")
        assert checked.post(f"/jobs/job-0000000000000aaaaaaaa/{suffix}").status_code == 405


def test_the_validation_codes_are_the_validators(checked):
    codes = checked.get("/validation-codes").json()["codes"]
    assert set(codes) == set(CODES)
    assert codes["no_assistant_message"] == {"severity": "error", "meaning": CODES["no_assistant_message"].meaning,
                                             "fix": CODES["no_assistant_message"].fix}


def test_results_csv_parsing_and_sampling():
    columns, rows = parse_results(b"\xef\xbb\xbfstep, Train_Loss,valid_loss,train_reward_mean_exact\n"
                                  b"1,0.5,,1\n2,0.25,0.3,nan\n\n3,1e-1,0.2,x\n")
    assert columns == ["step", "train_loss", "valid_loss", "train_reward_mean_exact"]
    assert rows == [{"step": 1, "train_loss": 0.5, "valid_loss": None, "train_reward_mean_exact": 1},
                    {"step": 2, "train_loss": 0.25, "valid_loss": 0.3, "train_reward_mean_exact": None},
                    {"step": 3, "train_loss": 0.1, "valid_loss": 0.2, "train_reward_mean_exact": "x"}]
    many = [{"step": i} for i in range(1, 12_346)]
    kept, every = _sample(many, RESULTS_MAX_ROWS)
    assert len(kept) <= RESULTS_MAX_ROWS + 1 and every == 3 and kept[0]["step"] == 1 and kept[-1]["step"] == 12_345


# ---------------------------------------------------------------------- page and assets


def test_the_page_is_served_with_a_strict_content_security_policy(checked, stack):
    r = checked.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    [inline] = re.findall(rb"<script>(.*?)</script>", r.content, re.S)
    digest = base64.b64encode(hashlib.sha256(inline).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert b"dashboard.js" in r.content and b"chart.umd.min.js" in r.content


def test_the_charting_library_is_served_from_node_modules_as_pinned(checked):
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = package["dependencies"]["chart.js"]
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", pinned), "chart.js is pinned to one version"
    assert lock["packages"]["node_modules/chart.js"]["version"] == pinned
    installed = ROOT / "node_modules" / "chart.js"
    assert json.loads((installed / "package.json").read_text())["version"] == pinned, "run npm ci"
    r = checked.get("/dashboard/assets/chart.umd.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.content == (installed / "dist" / "chart.umd.min.js").read_bytes()
    assert f"Chart.js v{pinned}".encode() in r.content[:200]
    for name, media in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        r = checked.get(f"/dashboard/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)


def test_only_the_pages_assets_are_served(checked):
    for path in ("/dashboard/assets/index.html", "/dashboard/assets/x.js", "/dashboard/assets/__init__.py"):
        r = checked.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), path
    # A path that climbs out does not reach the function (the host, here the runner, answers 404).
    r = checked.get("/dashboard/assets/..%2F__init__.py")
    assert r.status_code == 404 and b"import" not in r.content
    r = checked.post("/dashboard")
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_a_missing_charting_library_is_explained(monkeypatch, tmp_path):
    import shared.dashboard as dashboard
    from shared.api.http import Request

    monkeypatch.setitem(dashboard.ASSETS, "chart.umd.min.js", (dashboard.ROOT / "node_modules" / "nothing.js",
                                                               "text/javascript"))
    monkeypatch.setattr(dashboard, "CHART_JS", dashboard.ROOT / "node_modules" / "nothing.js")
    r = dashboard.serve(Request.build("GET", "/api/dashboard/assets/chart.umd.min.js"))
    assert r.status == 404 and "npm ci" in r.json()["detail"] and ".funcignore" in r.json()["detail"]


# --------------------------------------------------------------------------- deploying


def _funcignore() -> list[str]:
    return [ln.strip() for ln in (ROOT / ".funcignore").read_text().splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def _core_tools_accepts(path: str, patterns: list[str]) -> bool:
    """Core Tools (`func azure functionapp publish`): every file of the tree is tested on its own; a file
    is shipped when a negated pattern matches it or no pattern does. A pattern matches a path that starts
    with it (at a word boundary); * stays within a segment, ** crosses them."""
    def rx(p: str) -> re.Pattern:
        p = p[1:] if p.startswith("/") else p
        body = re.escape(p).replace(r"\*\*", "(.+)").replace(r"\*", "([^/]+)")
        return re.compile(rf"^({body})\b")

    negative = [rx(p[1:]) for p in patterns if p.startswith("!")]
    positive = [rx(p) for p in patterns if not p.startswith("!")]
    return any(r.search(path) for r in negative) or not any(r.search(path) for r in positive)


def _gitignore_ignores(path: str, is_dir: bool, patterns: list[str]) -> bool:
    """gitignore as azd reads .funcignore: the last pattern that matches decides; a trailing / matches
    directories only; a pattern without / matches the name anywhere, one with / the whole path."""
    from fnmatch import fnmatchcase

    for raw in reversed(patterns):
        negated = raw.startswith("!")
        p = raw[1:] if negated else raw
        directory = p.endswith("/")
        p = p.strip("/")
        if directory and not is_dir:
            continue
        if "/" in p:
            parts, segs = p.split("/"), path.split("/")
            hit = len(parts) == len(segs) and all(fnmatchcase(s, q) for s, q in zip(segs, parts))
        else:
            hit = fnmatchcase(path.rsplit("/", 1)[-1], p)
        if hit:
            return not negated
    return False


def _azd_ships(path: str, patterns: list[str]) -> bool:
    """azd walks the tree and does not enter an ignored directory."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        if _gitignore_ignores("/".join(parts[:i]), True, patterns):
            return False
    return not _gitignore_ignores(path, False, patterns)


@pytest.mark.parametrize("ships", [_core_tools_accepts, _azd_ships], ids=["func-publish", "azd-deploy"])
def test_a_deploy_ships_the_page_and_the_charting_library_but_not_the_rest_of_node_modules(ships):
    patterns = _funcignore()
    shipped = ["node_modules/chart.js/dist/chart.umd.min.js", "node_modules/chart.js/LICENSE.md",
               "shared/dashboard/__init__.py", "shared/dashboard/static/index.html",
               "shared/dashboard/static/dashboard.js", "shared/dashboard/static/dashboard.css",
               "function_app.py", "functions/jobs_api.py", "host.json", "requirements.txt"]
    for path in shipped:
        assert (ROOT / path).exists(), path
        assert ships(path, patterns), f"{path} would not be deployed"
    left_out = ["node_modules/azurite/package.json", "node_modules/.bin/azurite", "node_modules/.package-lock.json",
                "node_modules/@kurkle/color/package.json", "tests/dashboard/conftest.py",
                "test-artifacts/dashboard/overview-laptop.png", "local.settings.json", "package.json",
                ".venv/bin/python", "devstack/stack.py"]
    for path in left_out:
        assert not ships(path, patterns), f"{path} would be deployed"
