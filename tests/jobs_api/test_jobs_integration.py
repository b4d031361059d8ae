"""The Jobs API end to end: HTTP through the local runner, rows in Azurite, jobs at the
simulator. Every response is checked against the OpenAPI document (the ``api`` fixture)."""
from __future__ import annotations

import json
import time

import pytest

from shared.state.repos import new_job_id, utc_iso

from .conftest import MODEL, make_dataset, sim_job_posts


def problem(r, status: int, kind: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith(":" + kind), body
    assert body["status"] == status and body["detail"]
    return body


def job_rows(ctx) -> list:
    return list(ctx.repos.all_jobs())


# ------------------------------------------------------------------------------------ create


def test_start_a_job_from_a_ready_dataset(api, ctx, simulator):
    ds = make_dataset(ctx, f"{MODEL}/support.jsonl")
    val = make_dataset(ctx, f"{MODEL}/support-val.jsonl")
    body = {"training_dataset": ds["name"], "validation_dataset": val["id"], "suffix": "support-v1",
            "hyperparameters": {"n_epochs": 2, "batch_size": "auto", "learning_rate_multiplier": 0.1},
            "seed": 42, "training_type": "GlobalStandard",
            "deployment": {"keep_alive": "ping", "gate": {"max_valid_loss": 1.5}}}
    r = api.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["status"] == "pending" and job["openai_job_id"].startswith("ftjob-")
    assert job["training_dataset"] == ds["id"] and job["validation_dataset"] == val["id"]
    assert job["training_file_id"] == ds["file_id"] and job["validation_file_id"] == val["file_id"]
    assert job["base_model"] == MODEL and job["method"] == "supervised" and job["seed"] == 42
    assert job["requested_hyperparameters"] == body["hyperparameters"]
    assert job["hyperparameters"]["n_epochs"] == 2
    assert job["deployment"] == {"name": "ft-support-v1-" + job["id"].removeprefix("job-"), "sku": "Standard",
                                 "capacity": 1, "keep_alive": "ping", "gate": {"max_valid_loss": 1.5}}

    at_azure = ctx.clients.openai.fine_tuning.jobs.retrieve(job["openai_job_id"])
    assert at_azure.training_file == ds["file_id"] and at_azure.validation_file == val["file_id"]
    assert at_azure.seed == 42 and at_azure.model == MODEL
    assert len(sim_job_posts(simulator)) == 1

    # The row the monitor reads, and its open-index row.
    row = ctx.repos.get_job(job["id"])
    assert row["status"] == "pending" and row["openai_job_id"] == job["openai_job_id"]
    assert row["deployment"]["keep_alive"] == "ping" and row["deployment"]["gate"] == {"max_valid_loss": 1.5}
    assert row["training_type"] == "GlobalStandard" and not row.get("claimed_by")
    assert job["id"] in ctx.repos.open_job_ids()

    got = api.get(f"/jobs/{job['id']}")
    assert got.status_code == 200 and got.json()["openai_job_id"] == job["openai_job_id"]
    # Azure's own job id finds it too.
    assert api.get(f"/jobs/{job['openai_job_id']}").json()["id"] == job["id"]


def test_deployment_false_and_defaults_from_settings(api, ctx):
    ds = make_dataset(ctx, f"{MODEL}/nodeploy.jsonl")
    r = api.post("/jobs", json={"training_dataset": ds["name"], "deployment": False})
    assert r.status_code == 201, r.text
    assert r.json()["deployment"] is None and ctx.repos.get_job(r.json()["id"]).get("deployment") is None
    r = api.post("/jobs", json={"training_dataset": ds["name"]})
    dep = r.json()["deployment"]
    assert (dep["sku"], dep["capacity"], dep["keep_alive"]) == (
        ctx.settings.default_deployment_sku, ctx.settings.default_deployment_capacity, ctx.settings.default_keep_alive)
    # Without a seed in the request, one is chosen (and sent) so an interrupted attempt can be found.
    assert isinstance(r.json()["seed"], int)


def test_idempotent_retry_creates_one_job(api, ctx, simulator):
    ds = make_dataset(ctx, f"{MODEL}/idem.jsonl")
    body = {"training_dataset": ds["name"], "suffix": "idem", "hyperparameters": {"n_epochs": 3}}
    headers = {"Idempotency-Key": "pipeline-run-1842"}
    first = api.post("/jobs", json=body, headers=headers)
    assert first.status_code == 201, first.text
    # Same body written differently (key order, whitespace): same request.
    same = json.dumps({"hyperparameters": {"n_epochs": 3}, "suffix": "idem", "training_dataset": ds["name"]},
                      indent=2)
    again = api.post("/jobs", content=same, headers={**headers, "Content-Type": "application/json"})
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["openai_job_id"] == first.json()["openai_job_id"]
    assert len(sim_job_posts(simulator)) == 1
    assert len(job_rows(ctx)) == 1

    other = api.post("/jobs", json={**body, "suffix": "other"}, headers=headers)
    p = problem(other, 409, "idempotency-key-reused")
    assert "Idempotency-Key" in p["detail"] and p["job_id"] == first.json()["id"]
    assert len(sim_job_posts(simulator)) == 1

    bad_key = api.post("/jobs", json=body, headers={"Idempotency-Key": "has space"})
    assert "Idempotency-Key" in problem(bad_key, 400, "invalid-parameter")["detail"]


def test_crash_after_azure_created_the_job_is_resumed_not_repeated(api, ctx, simulator, monkeypatch):
    import shared.jobs as jobs

    ds = make_dataset(ctx, f"{MODEL}/crash.jsonl")
    body = {"training_dataset": ds["name"]}
    headers = {"Idempotency-Key": "crash-1"}
    real_record = jobs._record

    def crash(*args, **kwargs):
        raise RuntimeError("the worker died after Azure created the job")

    monkeypatch.setattr(jobs, "_record", crash)
    r = api.post("/jobs", json=body, headers=headers)
    problem(r, 500, "internal-error")
    [row] = job_rows(ctx)
    assert row["status"] == "submitted" and not row.get("openai_job_id")
    assert len(sim_job_posts(simulator)) == 1

    monkeypatch.setattr(jobs, "_record", real_record)
    # A retry from another worker while the first one's claim is fresh is told to wait...
    ctx.repos.jobs.update_with_retry(row.partition_key, row.row_key, lambda _d: {"claimed_by": "other:1"})
    busy = api.post("/jobs", json=body, headers=headers)
    assert int(problem(busy, 409, "request-in-progress")["retry_after"]) >= 1
    assert int(busy.headers["retry-after"]) >= 1
    # ...and once the claim has expired, it adopts the job the crashed attempt created.
    ctx.repos.jobs.update_with_retry(row.partition_key, row.row_key,
                                     lambda _d: {"claimed_until": utc_iso(time.time() - 1)})
    r = api.post("/jobs", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == row["id"] and r.json()["openai_job_id"].startswith("ftjob-")
    assert len(sim_job_posts(simulator)) == 1


def test_timeout_leaves_the_intent_and_a_retry_adopts_the_late_job(api, ctx, simulator, monkeypatch):
    import shared.jobs as jobs

    import shared.adapters.openai_jobs as openai_jobs

    monkeypatch.setattr(openai_jobs, "CREATE_TIMEOUT_SECONDS", 1.0)
    ds = make_dataset(ctx, f"{MODEL}/slow.jsonl")
    simulator.admin.inject_fault("delay", method="POST", path_regex=r"^/openai/fine_tuning/jobs$", seconds=2)
    headers = {"Idempotency-Key": "slow-1"}
    r = api.post("/jobs", json={"training_dataset": ds["name"]}, headers=headers)
    p = problem(r, 503, "azure-openai-unavailable")
    assert r.headers["retry-after"] and "same Idempotency-Key" in p["detail"]
    [row] = job_rows(ctx)
    assert row["status"] == "submitted" and row.get("last_error") and not row.get("claimed_by")
    time.sleep(2.5)  # the simulator carries out the held request
    r = api.post("/jobs", json={"training_dataset": ds["name"]}, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == row["id"]
    assert r.json()["openai_job_id"] and len(ctx.clients.openai.fine_tuning.jobs.list().data) == 1
    assert len(sim_job_posts(simulator)) == 1


def test_concurrent_requests_with_one_key_create_one_job(api, ctx, simulator):
    from concurrent.futures import ThreadPoolExecutor

    ds = make_dataset(ctx, f"{MODEL}/race.jsonl")
    simulator.admin.inject_fault("delay", method="POST", path_regex=r"^/openai/fine_tuning/jobs$", seconds=1)
    body, headers = {"training_dataset": ds["name"]}, {"Idempotency-Key": "race-1"}

    def post(_):
        return api.post("/jobs", json=body, headers=headers)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(4)))
    created = [r for r in answers if r.status_code == 201]
    busy = [r for r in answers if r.status_code == 409]
    assert len(created) + len(busy) == 4 and created, [r.text for r in answers]
    assert all(r.json()["type"].endswith(":request-in-progress") and r.headers["retry-after"] for r in busy)
    assert len({r.json()["id"] for r in created}) == 1
    assert len(sim_job_posts(simulator)) == 1 and len(job_rows(ctx)) == 1
    # Once the first request is done, a retry answers with its job.
    again = api.post("/jobs", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == created[0].json()["id"]


def test_rows_left_submitted_are_settled_by_the_monitor_and_revived_by_a_retry(api, ctx, simulator):
    """The contract with the monitor: it adopts the job an interrupted request created, or
    marks the row failed (submission_lost); a retry with the same key then submits it."""
    from datetime import datetime, timedelta, timezone

    import shared.jobs as jobs
    from shared.monitor import run_monitor

    ds = make_dataset(ctx, f"{MODEL}/settle.jsonl")
    later = datetime.now(timezone.utc) + timedelta(minutes=10)

    # Interrupted after Azure created the job: adopted.
    plan = jobs.plan_job(ctx, {"training_dataset": ds["name"]}, new_job_id())
    from shared.adapters import AzurePorts

    created = AzurePorts(ctx).jobs.create(plan)
    ctx.repos.insert_job(plan)
    # Interrupted before Azure was called, with an Idempotency-Key bound to it.
    body = {"training_dataset": ds["name"], "suffix": "lost"}
    lost = jobs.plan_job(ctx, body, new_job_id())
    ctx.repos.idempotency.insert({"PartitionKey": "lost-1", "RowKey": "key", "key": "lost-1", "job_id": lost["id"],
                                  "request_hash": jobs.request_hash(body), "created_at": utc_iso()})
    ctx.repos.insert_job({**lost, "idempotency_key": "lost-1"})

    run_monitor(ctx, now=later)
    adopted = ctx.repos.get_job(plan["id"])
    assert adopted["openai_job_id"] == created.id
    failed = ctx.repos.get_job(lost["id"])
    assert failed["status"] == "failed" and not failed.get("openai_job_id")
    assert lost["id"] not in ctx.repos.open_job_ids()
    assert len(sim_job_posts(simulator)) == 1

    r = api.post("/jobs", json=body, headers={"Idempotency-Key": "lost-1"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == lost["id"] and r.json()["status"] == "pending" and r.json()["error"] is None
    assert lost["id"] in ctx.repos.open_job_ids()
    assert len(sim_job_posts(simulator)) == 2


def test_continuous_fine_tuning_from_a_job_of_this_service(api, ctx, simulator):
    ds = make_dataset(ctx, f"{MODEL}/base.jsonl")
    first = api.post("/jobs", json={"training_dataset": ds["name"], "deployment": False}).json()
    # Until it has a fine-tuned model, it cannot be a base.
    r = api.post("/jobs", json={"training_dataset": ds["name"], "base_model": first["id"]})
    problem(r, 409, "base-job-not-succeeded")
    deadline = time.monotonic() + 20
    while (j := ctx.clients.openai.fine_tuning.jobs.retrieve(first["openai_job_id"])).status != "succeeded":
        assert time.monotonic() < deadline, j.status
        time.sleep(0.2)
    from shared.monitor import run_monitor

    run_monitor(ctx)  # records the outcome, events and metrics; the API shows them as the monitor wrote them
    shown = api.get(f"/jobs/{first['id']}").json()
    assert shown["status"] == "succeeded" and shown["fine_tuned_model"] == j.fine_tuned_model
    assert shown["events"] and shown["hyperparameters"]["n_epochs"] != "auto"
    # Training is over and no other job needs its file: it is deleted at Azure OpenAI (100 files per
    # resource); the dataset stays ready, and the next job gets the file uploaded again from its blob.
    assert ds["file_id"] not in {f["id"] for f in simulator.admin.state()["files"]}
    assert api.get(f"/datasets/{ds['name']}").json()["status"] == "ready"
    r = api.post("/jobs", json={"training_dataset": ds["name"], "base_model": first["id"], "suffix": "round2"})
    assert r.status_code == 202 and r.json()["status"] == "waiting", r.text
    second = r.json()
    deadline = time.monotonic() + 30
    while not (second := api.get(f"/jobs/{second['id']}").json())["openai_job_id"]:
        assert time.monotonic() < deadline, second
        run_monitor(ctx)
        time.sleep(0.3)
    assert second["base_model"] == j.fine_tuned_model and second["base_job"] == first["id"]
    assert ctx.clients.openai.fine_tuning.jobs.retrieve(second["openai_job_id"]).model == j.fine_tuned_model
    assert second["training_file_id"] != ds["file_id"]  # the same content, uploaded again
    # Named by the fine-tuned model itself, too (the file is there again: created at once).
    r = api.post("/jobs", json={"training_dataset": ds["name"], "base_model": j.fine_tuned_model})
    assert r.status_code == 201, r.text
    problem(api.post("/jobs", json={"training_dataset": ds["name"], "base_model": new_job_id()}), 404,
            "job-not-found")


# ------------------------------------------------------------------------------------ cancel


def test_cancel_a_job(api, ctx, simulator):
    ds = make_dataset(ctx, f"{MODEL}/cancel.jsonl")
    job = api.post("/jobs", json={"training_dataset": ds["name"]}).json()
    r = api.post(f"/jobs/{job['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert ctx.clients.openai.fine_tuning.jobs.retrieve(job["openai_job_id"]).status == "cancelled"
    assert ctx.repos.get_job(job["id"])["status"] == "cancelled"
    again = api.post(f"/jobs/{job['id']}/cancel")
    assert "cancelled" in problem(again, 409, "job-not-cancellable")["detail"]
    problem(api.post(f"/jobs/{new_job_id()}/cancel"), 404, "job-not-found")
    problem(api.post("/jobs/not-a-job/cancel"), 400, "invalid-parameter")


# ------------------------------------------------------------------------------------ list


def test_page_through_60_jobs_newest_first(api, ctx):
    now = time.time()
    ids = []
    for i in range(60):
        job_id = new_job_id(now - 60 + i)  # later jobs sort first
        status = "running" if i % 3 == 0 else "succeeded"
        ctx.repos.insert_job({"id": job_id, "status": status, "base_model": MODEL, "openai_job_id": f"ftjob-{i}",
                              "training_dataset": "x@1", "created_at": utc_iso(now - 60 + i)})
        ids.append(job_id)
    newest_first = list(reversed(ids))

    seen, url, pages = [], "/jobs?limit=25", 0
    while url:
        r = api.get(url)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [j["id"] for j in page["items"]]
        pages += 1
        url = f"/jobs?limit=25&continuation={page['next']}" if page["next"] else None
    assert seen == newest_first and pages == 3

    running = []
    url = "/jobs?status=running&limit=7"
    while url:
        page = api.get(url).json()
        running += [j["id"] for j in page["items"]]
        assert all(j["status"] == "running" for j in page["items"])
        url = f"/jobs?status=running&limit=7&continuation={page['next']}" if page["next"] else None
    assert running == [j for j in newest_first if ids.index(j) % 3 == 0]

    both = api.get("/jobs?status=running,succeeded&limit=100").json()
    assert len(both["items"]) == 60 and both["next"] is None

    token = api.get("/jobs?limit=5").json()["next"]
    assert "continuation" in problem(api.get(f"/jobs?status=running&continuation={token}"), 400,
                                     "invalid-parameter")["detail"]
    problem(api.get("/jobs?continuation=garbage!"), 400, "invalid-parameter")
    problem(api.get("/jobs?status=flying"), 400, "invalid-parameter")
    problem(api.get("/jobs?limit=0"), 400, "invalid-parameter")
    # A filter value is a parameter, never OData text.
    problem(api.get("/jobs?status=running' or true or status eq '"), 400, "invalid-parameter")


# ------------------------------------------------------------------------------------ errors


def test_bad_requests_get_problem_details_naming_the_field(api, ctx, simulator):
    ds = make_dataset(ctx, f"{MODEL}/errors.jsonl")
    name = ds["name"]

    p = problem(api.post("/jobs", content=b'{"training_dataset": ', headers={"Content-Type": "application/json"}),
                400, "invalid-json")
    assert "malformed JSON" in p["detail"]
    p = problem(api.post("/jobs", json={"training_dataset": name, "epochs": 3}), 400, "invalid-body")
    assert p["detail"].startswith("epochs: unknown field") and p["errors"][0]["pointer"] == "/epochs"
    p = problem(api.post("/jobs", json={"training_dataset": 7}), 400, "invalid-body")
    assert p["detail"].startswith("training_dataset: expected a string")
    p = problem(api.post("/jobs", json={}), 400, "invalid-body")
    assert p["detail"] == "training_dataset: is required"
    p = problem(api.post("/jobs", json={"training_dataset": name, "seed": "42"}), 400, "invalid-body")
    assert p["detail"].startswith("seed: expected an integer")
    p = problem(api.post("/jobs", json=[name]), 400, "invalid-body")

    for hp, field in (({"n_epochs": 0}, "n_epochs"), ({"n_epochs": 51}, "n_epochs"), ({"batch_size": 257}, "batch_size"),
                      ({"learning_rate_multiplier": 0}, "learning_rate_multiplier"),
                      ({"learning_rate_multiplier": "high"}, "learning_rate_multiplier"), ({"n_epochs": 2.5}, "n_epochs")):
        p = problem(api.post("/jobs", json={"training_dataset": name, "hyperparameters": hp}), 400, "invalid-body")
        assert p["detail"].startswith(f"hyperparameters.{field}:"), p["detail"]

    for suffix in ("", "has space", "x" * 41, "dots.not.allowed", "ünïcode"):
        p = problem(api.post("/jobs", json={"training_dataset": name, "suffix": suffix}), 400, "invalid-body")
        assert p["detail"].startswith("suffix:"), p["detail"]

    p = problem(api.post("/jobs", json={"training_dataset": name, "deployment": {"keep_alive": "forever"}}), 400,
                "invalid-body")
    assert p["detail"].startswith("deployment.keep_alive:")
    p = problem(api.post("/jobs", json={"training_dataset": name, "method": "unsupervised"}), 400, "invalid-body")
    assert p["detail"].startswith("method:")
    # A method the model does not train with (gpt-4o-mini: supervised only).
    p = problem(api.post("/jobs", json={"training_dataset": name, "method": "reinforcement"}), 422,
                "method-not-supported")
    assert "does not support 'reinforcement'" in p["detail"]
    p = problem(api.post("/jobs", json={"training_dataset": name, "training_type": "Cheap"}), 400, "invalid-body")
    assert p["detail"].startswith("training_type:")

    big = json.dumps({"training_dataset": name, "suffix": "x" * (65 * 1024)})
    problem(api.post("/jobs", content=big, headers={"Content-Type": "application/json"}), 413, "body-too-large")
    problem(api.post("/jobs", content=b"training_dataset=x", headers={"Content-Type": "text/plain"}), 415,
            "unsupported-media-type")

    # Datasets: missing, not ready, rejected (with the report's first errors).
    p = problem(api.post("/jobs", json={"training_dataset": "nope.jsonl"}), 404, "dataset-not-found")
    assert p["detail"].startswith("training_dataset:")
    p = problem(api.post("/jobs", json={"training_dataset": name, "validation_dataset": "nope.jsonl"}), 404,
                "dataset-not-found")
    assert p["detail"].startswith("validation_dataset:")
    busy = make_dataset(ctx, f"{MODEL}/busy.jsonl", status="processing")
    p = problem(api.post("/jobs", json={"training_dataset": busy["name"]}), 409, "dataset-not-ready")
    assert "processing" in p["detail"] and p["dataset_status"] == "processing"
    errors = [{"line": 5, "code": "invalid_json", "message": "line is not JSON"},
              {"line": 9, "code": "missing_assistant", "message": "no assistant message"}]
    bad = make_dataset(ctx, f"{MODEL}/bad.jsonl", status="rejected", errors=errors)
    p = problem(api.post("/jobs", json={"training_dataset": bad["name"]}), 409, "dataset-rejected")
    assert "line 5: line is not JSON" in p["detail"] and p["dataset_errors"] == errors
    assert p["report_blob"].endswith("bad.jsonl.report.json")

    # Model family, method, catalogue, SKU.
    p = problem(api.post("/jobs", json={"training_dataset": name, "base_model": "gpt-35-turbo-0613"}), 422,
                "model-mismatch")
    assert p["detail"].startswith("training_dataset:") and "gpt-35-turbo-0613" in p["detail"]
    p = problem(api.post("/jobs", json={"training_dataset": name, "method": "dpo"}), 422, "method-not-supported")
    assert p["detail"].startswith("method:")
    p = problem(api.post("/jobs", json={"training_dataset": name, "base_model": "gpt-3.5-turbo"}), 422,
                "unknown-model")
    assert p["detail"].startswith("base_model:")
    old_model = make_dataset(ctx, "gpt-35-turbo-0613/legacy.jsonl", model="gpt-35-turbo-0613", upload=False,
                             status="processing")
    ctx.repos.datasets.update_with_retry(*ctx.repos.dataset_keys("gpt-35-turbo-0613", old_model["name"],
                                                                  old_model["version"]),
                                         lambda _d: {"status": "ready", "file_id": ds["file_id"]})
    p = problem(api.post("/jobs", json={"training_dataset": old_model["name"], "deployment": {"sku": "GlobalStandard"}}),
                422, "sku-not-supported")
    assert p["detail"].startswith("deployment.sku:")

    # Nothing was half-made.
    assert job_rows(ctx) == [] and ctx.repos.open_job_ids() == []
    assert sim_job_posts(simulator) == []


def test_azure_refusals_pass_through_and_leave_no_row(api, ctx, simulator, monkeypatch):
    import shared.machines.job as job_mod

    monkeypatch.setattr(job_mod, "QUEUE_RETRY_SECONDS", 0.5)  # after "Azure is full", look again soon
    ds = make_dataset(ctx, f"{MODEL}/refused.jsonl")
    body = {"training_dataset": ds["name"]}

    from shared.monitor import run_monitor

    # Azure's queue is full: the job is accepted and waits its turn in the service's queue.
    simulator.admin.configure(max_queued_jobs=0)
    try:
        r = api.post("/jobs", json=body, headers={"Idempotency-Key": "quota-1"})
        assert r.status_code == 202, r.text
        waiting = r.json()
        assert waiting["status"] == "waiting" and waiting["queue_position"] == 1 and not waiting["openai_job_id"]
        assert r.headers["location"] == f"/api/jobs/{waiting['id']}"
        # A retry with the key answers with the same waiting job; a tick while Azure is still full waits on.
        again = api.post("/jobs", json=body, headers={"Idempotency-Key": "quota-1"})
        assert again.status_code == 202 and again.json()["id"] == waiting["id"]
        run_monitor(ctx)
        assert api.get(f"/jobs/{waiting['id']}").json()["status"] == "waiting"
    finally:
        simulator.admin.configure(max_queued_jobs=20)
    # Room again: the next tick creates it at Azure OpenAI (once the half-second wait, kept to whole
    # seconds, has passed).
    time.sleep(2.1)
    run_monitor(ctx)
    job = api.get(f"/jobs/{waiting['id']}").json()
    assert job["openai_job_id"] and job["status"] in ("pending", "queued", "running"), job
    assert len(sim_job_posts(simulator)) == 3  # refused at the request, refused at the first tick, created

    for kind, status in (("unavailable", 503), ("throttle", 429)):
        simulator.admin.inject_fault(kind, method="POST", path_regex=r"^/openai/fine_tuning/jobs$", retry_after=7)
        r = api.post("/jobs", json=body)
        p = problem(r, 503, "azure-openai-unavailable")
        assert r.headers["retry-after"] == "7" and p["azure_status"] == status
    assert len(job_rows(ctx)) == 1  # only the job created above

    # The file vanished at Azure: Azure's own reason comes back.
    ctx.clients.openai.files.delete(ds["file_id"])
    p = problem(api.post("/jobs", json=body), 400, "azure-openai-refused")
    assert p["code"] == "invalidPayload" and ds["file_id"] in p["detail"]
    assert len(job_rows(ctx)) == 1 and len(ctx.repos.open_job_ids()) == 1


# ------------------------------------------------------------------------------------ datasets


def test_datasets_endpoints(api, ctx):
    ready = make_dataset(ctx, f"{MODEL}/catalog/a.jsonl")
    errors = [{"line": 2, "code": "invalid_json", "message": "line is not JSON"}]
    rejected = make_dataset(ctx, f"{MODEL}/catalog/b.jsonl", status="rejected", errors=errors)

    r = api.get("/datasets?limit=1")
    assert r.status_code == 200
    first = r.json()
    assert [d["id"] for d in first["items"]] == [ready["id"]] and first["next"]
    second = api.get(f"/datasets?limit=1&continuation={first['next']}").json()
    assert [d["id"] for d in second["items"]] == [rejected["id"]] and second["next"] is None
    assert [d["name"] for d in api.get("/datasets?status=rejected").json()["items"]] == [rejected["name"]]

    for path in (f"/datasets/{ready['name']}", "/datasets/" + ready["name"].replace("/", "%2F")):
        d = api.get(path).json()
        assert d["id"] == ready["id"] and d["status"] == "ready" and d["file_id"] == ready["file_id"]
        assert d["versions"] == [{"id": ready["id"], "status": "ready", "is_current": True,
                                  "created_at": ready["created_at"]}]
    d = api.get(f"/datasets/{rejected['id']}").json()
    assert d["status"] == "rejected" and d["report"]["errors"] == errors and d["errors"] == errors
    problem(api.get("/datasets/nothing.jsonl"), 404, "dataset-not-found")
    problem(api.get("/datasets/bad%01name"), 400, "invalid-parameter")


# ------------------------------------------------------------------------------------ deployments


def test_deployments_endpoints(api, ctx):
    pk, rk = ctx.repos.deployment_keys("ft-support-1")
    created = time.time() - 3 * 3600
    ctx.repos.deployments.insert({"PartitionKey": pk, "RowKey": rk, "name": "ft-support-1",
                                  "account": ctx.settings.openai_account, "model": f"{MODEL}.ft-abc",
                                  "job_id": "job-x", "sku": "Standard", "capacity": 1, "keep_alive": "redeploy",
                                  "state": "active", "created_at": utc_iso(created)})
    ctx.repos.add_deployment_event("ft-support-1", "created", "job succeeded", now=created)

    items = api.get("/deployments").json()["items"]
    assert [d["name"] for d in items] == ["ft-support-1"]
    d = api.get("/deployments/ft-support-1").json()
    assert d["state"] == "active" and d["keep_alive"] == "redeploy"
    assert d["idle_deadline"] == utc_iso(created + 15 * 86400)
    assert 2.9 < d["hosting_hours"] < 3.2 and d["estimated_cost_usd"] == pytest.approx(
        d["hosting_hours"] * ctx.settings.hosting_cost_per_hour, abs=0.02)
    assert [e["action"] for e in d["events"]] == ["created"]

    r = api.patch("/deployments/ft-support-1", json={"keep_alive": "none"})
    assert r.status_code == 200, r.text
    assert r.json()["keep_alive"] == "none" and r.json()["events"][0]["action"] == "keep_alive_changed"
    assert ctx.repos.get_deployment("ft-support-1")["keep_alive"] == "none"

    p = problem(api.patch("/deployments/ft-support-1", json={"keep_alive": "always"}), 400, "invalid-body")
    assert p["detail"].startswith("keep_alive:")
    problem(api.patch("/deployments/ft-support-1", json={"keep_alive": "ping", "sku": "x"}), 400, "invalid-body")
    problem(api.patch("/deployments/nothing-here", json={"keep_alive": "ping"}), 404, "deployment-not-found")
    problem(api.get("/deployments/nothing-here"), 404, "deployment-not-found")
    problem(api.get("/deployments/-bad"), 400, "invalid-parameter")
    problem(api.delete("/deployments/ft-support-1"), 405, "method-not-allowed")


# ------------------------------------------------------------------------------------ openapi


def test_openapi_document_is_served_and_covers_every_route(api, runner, checker):
    r = api.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0" and doc == checker.doc
    # Every HTTP function of the app serves documented paths, and every documented path has a function.
    function_routes = [route.pattern for route in runner.routes]
    for path in doc["paths"]:
        sample = "/" + path.strip("/").replace("{id}", new_job_id()).replace("{name}", "some-name")
        assert any(rx.fullmatch(sample) for rx in function_routes), path


def test_a_deployment_made_by_the_monitor_is_shown_and_its_policy_changed(api, ctx, simulator):
    from shared.monitor import run_monitor

    ds = make_dataset(ctx, f"{MODEL}/deployed.jsonl")
    job = api.post("/jobs", json={"training_dataset": ds["name"], "suffix": "live",
                                  "deployment": {"keep_alive": "ping"}}).json()
    name = job["deployment"]["name"]
    deadline = time.monotonic() + 30
    while ctx.repos.get_job(job["id"])["status"] != "deployed":
        assert time.monotonic() < deadline, ctx.repos.get_job(job["id"]).data
        run_monitor(ctx)
        time.sleep(0.3)
    shown = api.get(f"/jobs/{job['id']}").json()
    assert shown["status"] == "deployed" and shown["deployment"]["name"] == name
    assert shown["deployment"]["state"] and shown["deployment"]["model"] == shown["fine_tuned_model"]
    d = api.get(f"/deployments/{name}").json()
    assert d["keep_alive"] == "ping" and d["model"] == shown["fine_tuned_model"] and d["idle_deadline"]
    assert name in [x["name"] for x in api.get("/deployments").json()["items"]]
    r = api.patch(f"/deployments/{name}", json={"keep_alive": "redeploy"})
    assert r.status_code == 200 and r.json()["keep_alive"] == "redeploy"
    assert ctx.repos.get_job(job["id"])["deployment"]["keep_alive"] == "redeploy"
