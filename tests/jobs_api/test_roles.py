"""Who may do what, end to end: the local runner plays App Service authentication (the
principal headers the platform would set, from ``LOCAL_PRINCIPAL``), the app checks the
role on every route, and every change names who made it — in the row's history and in
the notification it causes. Through the real runner, Azurite and the simulator; every
API answer is checked against the OpenAPI document (the ``Api`` client)."""
from __future__ import annotations

import time

import pytest

from shared.machines.outbox import outbox_rows

from .conftest import MODEL, Api, make_dataset, sim_job_posts

READER = "bob@example.com:Reader"
OPERATOR = "alice@example.com:Operator"


@pytest.fixture
def easy_auth(app_env, checker, monkeypatch):
    """start(api_key_role) -> (runner, api): a runner with App Service authentication on
    (nobody signed in until ``runner.sign_in(...)``) and an OpenAPI-checked client."""
    from devstack.runner import LocalRunner, load_app
    from shared.context import get_context
    from shared.settings import get_settings

    from ..conftest import ROOT

    started: list = []

    def start(api_key_role: str = "operator"):
        monkeypatch.setenv("API_KEY_ROLE", api_key_role)
        runner = LocalRunner(load_app(), env={**app_env, "API_KEY_ROLE": api_key_role}, host_json=ROOT / "host.json",
                             enable_timers=False, enable_blobs=False, principal="anonymous")
        runner.start()
        get_settings.cache_clear()  # WEBSITE_AUTH_ENABLED, API_KEY_ROLE: read again by the app
        get_context.cache_clear()
        api = Api(runner.base_url, checker)
        started.append((runner, api))
        return runner, api

    yield start
    for runner, api in started:
        api.client.close()
        runner.stop()
    get_settings.cache_clear()
    get_context.cache_clear()


def refused(r, status: int, kind: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == f"urn:ft-autopilot:problem:{kind}" and body["status"] == status, body
    return body


def test_a_reader_reads_everything_and_is_refused_every_change(easy_auth, ctx, simulator):
    runner, api = easy_auth()
    ds = make_dataset(ctx, f"{MODEL}/roles-reader.jsonl")
    runner.sign_in(READER)

    for path in ("/jobs", "/datasets", "/deployments", "/validation-codes", "/openapi.json",
                 f"/datasets/{ds['name']}"):
        assert api.get(path).status_code == 200, path
    # The dashboard's page and assets are GETs too (not in the OpenAPI document: a plain client).
    import httpx2 as httpx

    with httpx.Client(base_url=runner.base_url, timeout=30, trust_env=False) as page:
        assert page.get("/dashboard").status_code == 200
        assert page.get("/dashboard/assets/dashboard.js").status_code == 200

    r = api.post("/jobs", json={"training_dataset": ds["name"], "suffix": "nope"})
    body = refused(r, 403, "forbidden")
    assert (body["required_role"], body["held_role"], body["principal"]) == ("Operator", "Reader", "bob@example.com")
    assert body["detail"].startswith("POST /api/jobs needs the Operator role; bob@example.com holds Reader")
    # Refused before anything happened: no row, nothing asked of Azure OpenAI.
    assert list(ctx.repos.all_jobs()) == [] and sim_job_posts(simulator) == []

    for method, path, body in (("POST", "/jobs/job-1764590000000abcdef01/cancel", None),
                               ("POST", "/jobs/job-1764590000000abcdef01/pause", None),
                               ("PATCH", "/deployments/support", {"keep_alive": "none"}),
                               ("POST", "/deployments/support/rollback", None)):
        r = api.request(method, path, json=body)
        # 403, not 404: a Reader learns nothing about what may be changed.
        assert refused(r, 403, "forbidden")["required_role"] == "Operator", path


def test_an_operator_starts_and_cancels_and_the_rows_say_who(easy_auth, ctx, simulator):
    runner, api = easy_auth()
    ds = make_dataset(ctx, f"{MODEL}/roles-operator.jsonl")
    runner.sign_in(OPERATOR)

    r = api.post("/jobs", json={"training_dataset": ds["name"], "suffix": "who"})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["created_by"] == "alice@example.com"
    assert len(sim_job_posts(simulator)) == 1

    # Bob (a Reader) may look at it, not cancel it.
    runner.sign_in(READER)
    assert api.get(f"/jobs/{job['id']}").json()["created_by"] == "alice@example.com"
    refused(api.post(f"/jobs/{job['id']}/cancel"), 403, "forbidden")
    runner.sign_in(OPERATOR)
    r = api.post(f"/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text

    row = ctx.repos.get_job(job["id"])
    assert [(h["status"], h.get("by")) for h in row["status_history"]] == [
        (job["status"], "alice@example.com"), ("cancelled", "alice@example.com")]
    assert row["cancel_requested_by"] == "alice@example.com"
    history = api.get(f"/jobs/{job['id']}/history").json()["status_history"]
    assert [h["by"] for h in history] == ["alice@example.com", "alice@example.com"]


def test_signed_in_without_a_role_is_refused_naming_none(easy_auth):
    runner, api = easy_auth()
    runner.sign_in("carol@example.com:")
    body = refused(api.get("/jobs"), 403, "forbidden")
    assert (body["required_role"], body["held_role"]) == ("Reader", "none")
    assert "carol@example.com holds no role of this service" in body["detail"]


def test_the_function_key_has_the_role_api_key_role_names(easy_auth, ctx):
    """Nobody signed in: the request came with the function key alone (automation)."""
    _, api = easy_auth("reader")
    ds = make_dataset(ctx, f"{MODEL}/roles-key.jsonl")
    assert api.get("/jobs").status_code == 200
    body = refused(api.post("/jobs", json={"training_dataset": ds["name"]}), 403, "forbidden")
    assert body["held_role"] == "Reader" and body["principal"] == "function key"
    assert body["detail"] == ("POST /api/jobs needs the Operator role; the function key (API_KEY_ROLE is reader) "
                              "holds Reader; sign in with Entra ID (/.auth/login/aad) to act with your own role")


def test_with_api_key_role_none_nobody_signed_in_gets_401(easy_auth):
    runner, api = easy_auth("none")
    r = api.get("/jobs")
    body = refused(r, 401, "unauthenticated")
    assert "API_KEY_ROLE is none" in body["detail"] and "/.auth/login/aad" in body["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    runner.sign_in(OPERATOR)
    assert api.get("/jobs").status_code == 200


def test_a_client_cannot_sign_itself_in_behind_easy_auth(easy_auth):
    """The platform drops the principal headers a client sends; so does the runner."""
    from shared.api.auth import principal_headers

    runner, api = easy_auth()
    runner.sign_in(READER)
    forged = principal_headers("mallory@example.com", ["Operator"])
    body = refused(api.post("/jobs", json={"training_dataset": "x.jsonl"}, headers=forged), 403, "forbidden")
    assert body["principal"] == "bob@example.com" and body["held_role"] == "Reader"


def test_without_easy_auth_the_principal_headers_are_not_believed(app_env, checker, monkeypatch):
    """No App Service authentication (no LOCAL_PRINCIPAL, no WEBSITE_AUTH_ENABLED): anyone with
    the key could write the headers, so the request has the key's role."""
    from devstack.runner import LocalRunner, load_app
    from shared.api.auth import principal_headers
    from shared.context import get_context
    from shared.settings import get_settings

    from ..conftest import ROOT

    monkeypatch.setenv("API_KEY_ROLE", "reader")
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    get_settings.cache_clear()
    get_context.cache_clear()
    runner = LocalRunner(load_app(), env={**app_env, "LOCAL_PRINCIPAL": ""}, host_json=ROOT / "host.json",
                         enable_timers=False, enable_blobs=False)
    with runner:
        api = Api(runner.base_url, checker)
        forged = principal_headers("mallory@example.com", ["Operator"])
        body = refused(api.post("/jobs", json={"training_dataset": "x.jsonl"}, headers=forged), 403, "forbidden")
        assert body["principal"] == "function key" and body["held_role"] == "Reader"
        api.client.close()
    get_settings.cache_clear()
    get_context.cache_clear()


def test_a_malformed_principal_header_is_401_not_500(easy_auth):
    runner, api = easy_auth()
    runner.principal_headers = {"X-MS-CLIENT-PRINCIPAL": "not base64 at all!", "X-MS-CLIENT-PRINCIPAL-NAME": "x"}
    body = refused(api.get("/jobs"), 401, "unauthenticated")
    assert body["detail"] == ("X-MS-CLIENT-PRINCIPAL: the signed-in principal cannot be read (not base64); "
                              "sign in again")


# ------------------------------------------------------------------ changes carried out later


def _tick_until(ctx, admin, done, *, what: str, limit: int = 80, advance: float = 1.0) -> None:
    from shared.monitor import Monitor

    monitor = Monitor(ctx)
    for _ in range(limit):
        monitor.tick()
        if done():
            return
        admin.advance(advance)
        time.sleep(0.02)
    raise AssertionError(f"not done after {limit} monitor ticks: {what}")


def test_a_pause_azure_finishes_later_is_recorded_as_the_operators(easy_auth, ctx, simulator):
    admin = simulator.admin
    admin.configure(job_running_seconds=30.0, job_pausing_seconds=2.0)
    runner, api = easy_auth()
    ds = make_dataset(ctx, f"{MODEL}/roles-pause.jsonl")
    runner.sign_in(OPERATOR)
    job = api.post("/jobs", json={"training_dataset": ds["name"], "deployment": False}).json()
    _tick_until(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] == "running", what="running",
                advance=0.3)
    paused = api.post(f"/jobs/{job['id']}/pause")
    assert paused.status_code == 200 and paused.json()["openai_status"] == "pausing", paused.text
    row = ctx.repos.get_job(job["id"])
    assert row["status"] == "running" and row["requested_by"]["by"] == "alice@example.com"
    assert paused.json()["requested_by"]["by"] == "alice@example.com"

    _tick_until(ctx, admin, lambda: ctx.repos.get_job(job["id"])["status"] == "paused", what="paused",
                advance=0.5)
    row = ctx.repos.get_job(job["id"])
    last = row["status_history"][-1]
    assert (last["status"], last["by"]) == ("paused", "alice@example.com")   # the monitor's move, alice's request
    assert row.get("requested_by") is None                                   # carried out: not named again
    assert api.get(f"/jobs/{job['id']}").json()["requested_by"] is None
    running = [h for h in row["status_history"] if h["status"] == "running"]
    assert running and all("by" not in h for h in running)                   # Azure's moves are nobody's


def test_a_rollback_names_the_operator_in_history_events_and_notification(easy_auth, ctx, simulator):
    """Two jobs on one release channel, then a rollback: the monitor carries it out, and its
    moves, its events and the deployment.rolled_forward notification name who asked."""
    admin = simulator.admin
    runner, api = easy_auth()
    ds = make_dataset(ctx, f"{MODEL}/roles-channel.jsonl")
    runner.sign_in(OPERATOR)
    ids = []
    for suffix in ("one", "two"):
        r = api.post("/jobs", json={"training_dataset": ds["name"], "suffix": suffix,
                                    "deployment": {"name": "roles-channel"}})
        assert r.status_code in (201, 202), r.text
        ids.append(r.json()["id"])
        _tick_until(ctx, admin, lambda: ctx.repos.get_job(ids[-1])["status"] == "deployed"
                    and ctx.repos.find_deployment("roles-channel")["state"] == "active", what=f"job {suffix} deployed")
    before = ctx.repos.find_deployment("roles-channel")
    assert before["previous_model"]

    runner.sign_in(READER)
    refused(api.post("/deployments/roles-channel/rollback"), 403, "forbidden")
    refused(api.patch("/deployments/roles-channel", json={"keep_alive": "ping"}), 403, "forbidden")
    runner.sign_in(OPERATOR)
    r = api.patch("/deployments/roles-channel", json={"keep_alive": "ping"})
    assert r.status_code == 200, r.text
    changed = next(e for e in r.json()["events"] if e["action"] == "keep_alive_changed")
    assert "by alice@example.com" in changed["reason"] and changed["detail"]["by"] == "alice@example.com"
    r = api.post("/deployments/roles-channel/rollback")
    assert r.status_code == 202, r.text
    asked = r.json()["requested_by"]   # shown while under way (the dashboard's "Under way")
    assert (asked["by"], asked["why"], asked["until"]) == ("alice@example.com", "rollback through the API", ["active"])

    _tick_until(ctx, admin, lambda: (lambda d: d["state"] == "active" and d["model"] == before["previous_model"])(
        ctx.repos.find_deployment("roles-channel")), what="rolled back")
    dep = ctx.repos.find_deployment("roles-channel")
    assert api.get("/deployments/roles-channel").json().get("requested_by") is None
    # Every move of the rollback (ARM changes no model in place: rolling, then deleted and
    # re-created) is alice's; none before it.
    moves = [(h["state"], h.get("by")) for h in dep["state_history"]]
    done = len(before["state_history"])
    assert moves[done][0] == "rolling" and moves[-1][0] == "active" and len(moves) - done >= 2, moves
    assert {by for _, by in moves[done:]} == {"alice@example.com"}
    assert {by for _, by in moves[:done]} == {None}
    assert dep.get("requested_by") is None
    rolls = [e for e in ctx.repos.deployment_events_for("roles-channel") if e["action"] == "roll"]
    assert any("(asked by alice@example.com)" in (e["reason"] or "") for e in rolls)

    notices = [row["event"] for _, row in outbox_rows(ctx.repos)
               if row["event"]["type"] == "com.ft-autopilot.deployment.rolled_forward"
               and row["event"]["subject"] == "roles-channel"]
    assert [n["data"].get("actor") for n in notices] == [None, "alice@example.com"]   # job two's roll, then alice's
    assert notices[-1]["data"]["model"] == before["previous_model"]

