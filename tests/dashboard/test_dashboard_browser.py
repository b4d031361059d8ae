"""The dashboard as a person sees it, in headless Chromium, on the local stack after the
flow of ``conftest.flow``: what each view shows is checked against the API, the curves
by the points of the chart's own data, and the actions by what the API says afterwards.
Each test keeps screenshots (see conftest: test-artifacts/dashboard/)."""
from __future__ import annotations

import json
import re
from urllib.parse import quote

import httpx2 as httpx
import pytest

from shared.validation.codes import CODES

from .conftest import PHONE


def api(stack, path: str, method: str = "GET", **kwargs):
    r = httpx.request(method, stack.api + path, timeout=30, trust_env=False, **kwargs)
    assert r.status_code < 400, r.text
    return r.json()


def url(stack, fragment: str = "", **query) -> str:
    query = {"refresh": "0", **query}  # no automatic refresh while a test looks
    return stack.page_url + "?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()) + fragment


def chart(tab, canvas_id: str) -> list[dict]:
    """The datasets a chart draws, read from Chart.js itself: label and points."""
    return tab.evaluate("id => { const c = Chart.getChart(id); return c ? c.data.datasets.map(d => "
                        "({label: d.label, type: d.type || c.config.type, points: d.data.map(p => ({x: p.x, y: p.y, "
                        "id: p.id || null, deployed: !!p.deployed}))})) : null; }", canvas_id)


def series(datasets: list[dict], label: str) -> list[dict]:
    [found] = [d for d in datasets if d["label"] == label]
    return found["points"]


# ------------------------------------------------------------------------------ overview


def test_the_overview_lists_datasets_jobs_and_deployments(stack, flow, tab):
    tab.open(url(stack))
    main = tab.locator("main")
    for name in (flow.train, flow.rejected):
        assert main.locator("table.datasets tr", has_text=name).count() == 1
    assert main.locator("table.datasets tr", has_text=flow.rejected).locator(".badge").inner_text() == "rejected"
    for job_id in (flow.first, flow.second, flow.rft, flow.waiting):
        assert main.locator("table.jobs tr", has_text=job_id).count() == 1
    row = main.locator("table.deployments tr", has_text="support")
    assert row.locator(".badge").inner_text() == "active"
    assert re.fullmatch(r"1[45] d \d+ h \d+ min \d+ s", row.locator(".countdown").inner_text())
    tab.shot("overview-laptop")


# ------------------------------------------------------------------------------ datasets


def test_a_rejected_dataset_reads_as_the_lines_to_fix(stack, flow, tab):
    tab.open(url(stack, "#/datasets/" + quote(flow.rejected, safe="")))
    assert tab.locator("h1").inner_text() == flow.rejected
    assert tab.locator("main .badge").first.inner_text() == "rejected"
    issue = tab.locator(".issue[data-code=no_assistant_message]")
    assert issue.locator("li[data-line='5']").inner_text().startswith("Line 5:")
    assert CODES["no_assistant_message"].fix in issue.locator(".fix").inner_text()
    assert CODES["no_assistant_message"].meaning in issue.inner_text()
    other = tab.locator(".issue[data-code=invalid_json]")
    assert other.locator("li[data-line='7']").count() == 1 and CODES["invalid_json"].fix in other.inner_text()
    # Every error and warning of the report is shown, under its code.
    report = api(stack, "/datasets/" + quote(flow.rejected, safe=""))["report"]
    shown = {(li.get_attribute("data-line"), code)
             for code in report["error_counts"] for li in tab.locator(f"#report-errors .issue[data-code={code}] li").all()}
    assert shown == {(str(e["line"]), e["code"]) for e in report["errors"]}
    assert tab.locator("#report-warnings .issue[data-code=few_examples]").count() == 1
    assert tab.locator("table.versions tbody tr").count() == 1
    tab.shot("dataset-rejected-laptop")


def test_a_ready_dataset_shows_status_size_examples_and_versions(stack, flow, tab):
    shown = api(stack, "/datasets/" + quote(flow.train, safe=""))
    tab.open(url(stack, "#/datasets/" + quote(flow.train, safe="")))
    text = tab.inner_text("main")
    assert "ready" in text and f"{shown['size']:,} bytes" in text and "60" in text
    assert tab.locator(".box.ok", has_text="Valid").count() == 1
    assert tab.locator("table.versions tbody tr").count() == len(shown["versions"]) >= 1
    stats = shown["report"]["stats"]  # the job's cost, with the epochs it assumes (60 examples: 3)
    assert f"{stats['estimated_billable_tokens']:,} ({stats['assumed_epochs']} epochs assumed)" in text


# ---------------------------------------------------------------------------------- jobs


def test_a_job_draws_its_curves_from_results_csv_with_its_checkpoints(stack, flow, tab):
    job = api(stack, f"/jobs/{flow.first}")
    results = api(stack, f"/jobs/{flow.first}/results")
    tab.open(url(stack, f"#/jobs/{flow.first}"))
    loss = chart(tab, "chart-loss")
    train = series(loss, "training loss")
    assert train == [{"x": r["step"], "y": r["train_loss"], "id": None, "deployed": False} for r in results["rows"]]
    valid = series(loss, "validation loss")
    assert len(valid) == sum(r["valid_loss"] is not None for r in results["rows"]) > 0
    accuracy = chart(tab, "chart-accuracy")
    assert len(series(accuracy, "training token accuracy")) == len(results["rows"])
    assert series(accuracy, "validation token accuracy")
    # Checkpoints are marked at their steps, on the curve.
    marks = series(loss, "checkpoints")
    assert sorted(m["x"] for m in marks) == sorted(c["step"] for c in job["checkpoints"]) and len(marks) == 3
    assert {m["id"] for m in marks} == {c["id"] for c in job["checkpoints"]}
    by_step = {p["x"]: p["y"] for p in valid}
    assert all(m["y"] == by_step[m["x"]] for m in marks)
    # The status timeline, the gate's checks, what was deployed and where.
    history = api(stack, f"/jobs/{flow.first}/history")["status_history"]
    assert [li.get_attribute("data-status") for li in tab.locator("#timeline li").all()] == \
        [h["status"] for h in history]
    gate = tab.locator("#gate")
    assert "The gate passed" in gate.inner_text()
    assert gate.locator("tbody tr").count() == len(job["gate_result"]["checks"]) == 2
    assert "max_valid_loss" in gate.inner_text() and "min_valid_mean_token_accuracy" in gate.inner_text()
    text = tab.inner_text("main")
    assert job["deployed_model"] in text and job["model_choice"]["why"] in text
    assert tab.locator("a[href='#/deployments/support']").count() >= 1
    assert tab.locator("table.events tbody tr").count() >= 8
    tab.shot("job-laptop")


def test_a_reinforcement_job_draws_reward_curves_per_grader(stack, flow, tab):
    results = api(stack, f"/jobs/{flow.rft}/results")
    tab.open(url(stack, f"#/jobs/{flow.rft}"))
    reward = chart(tab, "chart-reward")
    assert len(series(reward, "training reward")) == len(results["rows"])
    assert 0 < len(series(reward, "validation reward")) < len(results["rows"])  # every eval_interval steps
    assert series(reward, "checkpoints")
    graders = [c for c in results["columns"] if c.startswith(("train_reward_mean_", "valid_reward_mean_"))]
    per_grader = chart(tab, "chart-graders")
    assert len([d for d in per_grader if d["label"] != "checkpoints"]) == len(graders) >= 2
    assert all(d["points"] for d in per_grader)
    assert chart(tab, "chart-loss") is None  # no loss curve for a reinforcement job
    tab.shot("job-rft-laptop")


def test_a_waiting_job_shows_its_queue_position_and_a_pending_one_no_curves_yet(stack, flow, tab):
    tab.open(url(stack, f"#/jobs/{flow.waiting}"))
    assert "number 1 in the queue" in tab.locator("main .box.warn").first.inner_text()
    assert "no results yet" in tab.inner_text("#curves")
    tab.shot("job-waiting-laptop")
    tab.go(f"#/jobs/{flow.pending}")
    assert tab.locator("main .badge").first.inner_text() == "pending"
    assert tab.locator("canvas").count() == 0 and "no results yet" in tab.inner_text("#curves")


# --------------------------------------------------------------------------- deployments


def test_the_deployment_counts_down_and_its_keep_alive_is_changed_from_the_page(stack, flow, tab):
    before = api(stack, "/deployments/support")
    assert before["keep_alive"] == "redeploy"
    tab.open(url(stack, "#/deployments/support"))
    countdown = tab.locator(".card .countdown").first
    first = countdown.inner_text()
    assert re.fullmatch(r"1[45] d \d+ h \d+ min \d+ s", first), first
    for _ in range(50):  # it counts down (by the second; up to 10 s on a loaded machine)
        tab.wait_for_timeout(200)
        if countdown.inner_text() != first:
            break
    assert countdown.inner_text() != first
    text = tab.inner_text("main")
    assert before["previous_model"] in text and f"{before['hosting_hours']:g}" in text
    assert tab.locator("table.events tbody tr").count() == len(before["events"])

    tab.select_option("#keep-alive", "ping")
    tab.evaluate("document.body.dataset.state = 'acting'")
    tab.click("#keep-alive-save")
    tab.ready()
    assert "now ping" in tab.inner_text("#notice")
    after = api(stack, "/deployments/support")
    assert after["keep_alive"] == "ping" and after["events"][0]["action"] == "keep_alive_changed"
    assert tab.inner_text("#keep-alive-now") == "ping"
    assert "keep_alive_changed" in tab.locator("table.events tbody tr").first.inner_text()
    tab.shot("deployment-laptop")


def test_a_rollback_is_asked_from_the_page_and_carried_out(stack, flow, tab):
    before = api(stack, "/deployments/support")
    assert before["previous_model"] and before["model"] != before["previous_model"]
    tab.open(url(stack, "#/deployments/support"))
    asked = []
    tab.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    button = tab.locator("#rollback")
    assert button.is_enabled() and before["previous_model"] in button.inner_text()
    tab.evaluate("document.body.dataset.state = 'acting'")
    button.click()
    tab.ready()
    assert asked and before["previous_model"] in asked[0]
    assert "next tick" in tab.inner_text("#notice")
    assert api(stack, "/deployments/support")["pending_model"] == before["previous_model"]
    assert f"Asked to serve next: {before['previous_model']}" in tab.inner_text("main")
    assert tab.locator("#rollback").is_disabled()
    for _ in range(40):  # the monitor carries it out
        stack.runner.run_timer("monitor")
        if api(stack, "/deployments/support")["state"] == "active":
            break
        stack.admin.advance(1)
    after = api(stack, "/deployments/support")
    assert after["state"] == "active" and after["model"] == before["previous_model"]
    tab.click("#refresh")
    tab.ready()
    assert after["model"] in tab.inner_text("main")
    tab.shot("deployment-rolled-back-laptop")


# ------------------------------------------------------------------------- a phone, a key


@pytest.mark.parametrize("fragment,name", [("", "overview"), ("#/jobs/{first}", "job"),
                                           ("#/deployments/support", "deployment"),
                                           ("#/datasets/{rejected}", "dataset-rejected")])
def test_on_a_phone_nothing_needs_sideways_scrolling(stack, flow, tab, fragment, name):
    tab.set_viewport_size(PHONE)
    tab.open(url(stack, fragment.format(first=flow.first, rejected=quote(flow.rejected, safe=""))))
    width = tab.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide on a {width[1]} px screen"
    tables = tab.locator("table.cards")
    if tables.count():
        assert tables.first.locator("thead").evaluate("e => getComputedStyle(e).display") == "none"
        assert tables.first.locator("td").first.evaluate("e => getComputedStyle(e, '::before').content") != "none"
    for canvas in tab.locator("canvas").all():
        assert canvas.bounding_box()["width"] <= PHONE["width"]
    tab.shot(f"{name}-phone")


def test_the_function_key_of_the_page_is_sent_with_every_call(stack, flow, tab):
    """As in Azure: every request needs the function key (?code= or x-functions-key), else 401."""
    keys = {"valid": "a-function-key"}
    seen = []

    def azure_auth(route, request):
        query = dict(p.split("=", 1) for p in (request.url.split("?", 1) + [""])[1].split("&") if "=" in p)
        given = request.headers.get("x-functions-key") or query.get("code")
        seen.append((request.url, given))
        if given != keys["valid"]:
            return route.fulfill(status=401, body="")
        return route.continue_()

    tab.route(re.compile(r".*/api/.*"), azure_auth)
    tab.open(url(stack, "#/deployments/support", code=keys["valid"]))
    assert tab.locator("h1").inner_text() == "support"
    assert [u for u, _ in seen if "/api/deployments/support" in u]
    assert all(k == keys["valid"] for _, k in seen), seen
    assert any("/dashboard/assets/chart.umd.min.js?code=" in u for u, _ in seen)
    assert any("/dashboard/assets/dashboard.css?code=" in u for u, _ in seen)
    # The key is renewed while the page is open: the next read says what to do.
    keys["valid"] = "a-renewed-key"
    tab.evaluate("document.body.dataset.state = 'refreshing'")
    tab.click("#refresh")
    tab.wait_for_selector("body[data-state=error]", state="attached")
    assert "?code=<function key>" in tab.inner_text("main") and "refused" in tab.inner_text("main")
    tab.errors.clear()  # the 401s are the point here
    tab.shot("renewed-key-laptop")


def test_the_page_holds_no_data_of_its_own(stack):
    page = httpx.get(stack.page_url, trust_env=False).text
    script = httpx.get(stack.page_url + "/assets/dashboard.js", trust_env=False).text
    for text in (page, script):
        assert "support-broken" not in text and "ftjob-" not in text
    assert json.dumps(stack.env["JOBS_TABLE"]) not in page
