"""Every operation the simulator serves, and its error answers, checked against the published descriptions.

The autouse ``conformance`` fixture validates each response; this module makes sure every operation is
exercised (including error bodies), that the validator accepts the published examples, and that it rejects
a body that does not conform (so a pass means something).
"""
from __future__ import annotations

import json
from pathlib import Path


from .conftest import ACCOUNT_ID, BASE, chat_jsonl
from .spec_validation import ARM, DATA_PLANE, Conformance

DP = {"api-version": "2025-04-01-preview"}
ARM_V = {"api-version": "2025-06-01"}
KEY = {"api-key": "k"}
BEARER = {"Authorization": "Bearer t"}

SERVED = {
    "Files_List", "Files_Upload", "Files_Import", "Files_Get", "Files_Delete", "Files_GetContent",
    "FineTuning_List", "FineTuning_Create", "FineTuning_Get", "FineTuning_Delete", "FineTuning_Cancel",
    "FineTuning_GetCheckpoints", "FineTuning_GetEvents", "FineTuning_Pause", "FineTuning_Resume",
    "Models_List", "Models_Get",
    "Deployments_List", "Deployments_Get", "Deployments_CreateOrUpdate", "Deployments_Update", "Deployments_Delete",
    "AsyncOperation_Get", "Metrics_List",
}


def _examples(spec_path: Path):
    doc = json.loads(spec_path.read_text())
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters" or op.get("operationId") not in SERVED:
                continue
            for ref in (op.get("x-ms-examples") or {}).values():
                example = spec_path.parent / ref["$ref"]
                if example.is_file():
                    yield op["operationId"], method.upper(), template, json.loads(example.read_text())


def test_the_validator_accepts_the_published_examples(_conformance):
    checked = 0
    for spec, path in ((_conformance.data_plane, DATA_PLANE), (_conformance.arm, ARM)):
        for operation_id, method, template, example in _examples(path):
            for status, response in example.get("responses", {}).items():
                body = response.get("body")
                if not isinstance(body, dict):
                    continue
                op = next(o for o in spec.operations if o.operation_id == operation_id)
                schema_ref = op.responses[status]["schema"]["$ref"]
                problems = [p for p in _conformance._validate(spec, spec.schema_ref(schema_ref), body)
                            if not p.startswith("undeclared")]  # examples may carry fields the schema omits
                assert not problems, (operation_id, status, problems)
                checked += 1
    assert checked >= 12


def test_the_validator_rejects_what_does_not_conform(_conformance):
    dp = _conformance.data_plane
    good = {"object": "fine_tuning.job", "id": "ftjob-1", "status": "pending", "model": BASE,
            "training_file": "file-1", "created_at": 1}
    assert _conformance.validate_definition(dp, "FineTuningJob", good) == []
    assert _conformance.validate_definition(dp, "FineTuningJob", {**good, "status": "queued"})  # not in the enum
    assert _conformance.validate_definition(dp, "FineTuningJob", {**good, "fine_tuned_model": None})  # null
    assert _conformance.validate_definition(dp, "FineTuningJob", {**good, "fine_tune_model": "x"})  # misspelt
    assert _conformance.validate_definition(dp, "File", {"id": "file-1", "purpose": "fine-tune"})  # no filename
    local = Conformance()
    assert local.check("GET", "https://h/openai/files/file-1", 200, "application/json",
                       json.dumps({"id": "file-1", "purpose": "fine-tune", "filename": "x", "status": "done"}).encode())
    assert local.check("DELETE", "https://h/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/"
                                 "accounts/a/deployments/d", 201, "", b"")  # 201 is not a DELETE answer
    assert local.check("GET", "https://h/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/"
                              "accounts/a/deployments/d", 404, "application/json", b'{"error": {"code": "x"}}')


def test_the_sdk_checks_reject_what_the_description_lacks_and_does_not_conform():
    local = Conformance()
    grader = {"type": "string_check", "name": "g", "input": "{{ sample.output_text }}", "reference": "r",
              "operation": "eq"}
    job = {"object": "fine_tuning.job", "id": "ftjob-1", "status": "pending", "model": "o4-mini",
           "training_file": "file-1", "created_at": 1,
           "method": {"type": "reinforcement", "reinforcement": {"grader": grader}}}
    url = "https://h/openai/fine_tuning/jobs/ftjob-1"
    assert local.check("GET", url, 200, "application/json", json.dumps(job).encode()) == []
    bad = json.loads(json.dumps(job))
    bad["method"]["reinforcement"]["grader"]["operation"] = "equals"
    assert local.check("GET", url, 200, "application/json", json.dumps(bad).encode())
    bad["method"]["reinforcement"] = {"grader": grader, "hyperparameters": {"eval_samples": "many"}}
    assert local.check("GET", url, 200, "application/json", json.dumps(bad).encode())
    multi = {"type": "multi", "name": "m", "calculate_output": "a", "graders": grader}  # not a map of graders
    validate = "https://h/openai/v1/fine_tuning/alpha/graders/validate"
    assert local.check("POST", validate, 200, "application/json", json.dumps({"grader": multi}).encode())
    multi["graders"] = {"a": grader}
    assert local.check("POST", validate, 200, "application/json", json.dumps({"grader": multi}).encode()) == []
    assert local.check("POST", validate, 200, "application/json", json.dumps({"grader": {"type": "x"}}).encode())


def test_every_operation_and_its_errors_conform(admin, raw, conformance):
    admin.configure(file_processing_seconds=0, deployment_create_seconds=0, deployment_delete_seconds=5)
    # -- data plane
    up = raw.post("/openai/files", params=DP, headers=KEY, data={"purpose": "fine-tune"},
                  files={"file": ("t.jsonl", chat_jsonl(10), "application/octet-stream")})
    assert up.status_code == 201 and up.headers["Location"].endswith(up.json()["id"])
    file_id = up.json()["id"]
    assert raw.post("/openai/files/import", params=DP, headers=KEY,
                    json={"purpose": "fine-tune", "filename": "i.jsonl",
                          "content_url": "http://127.0.0.1:9/nothing.jsonl"}).status_code == 201
    assert raw.get("/openai/files", params=DP, headers=KEY).status_code == 200
    assert raw.get(f"/openai/files/{file_id}", params=DP, headers=KEY).json()["status"] == "processed"
    assert raw.get(f"/openai/files/{file_id}/content", params=DP, headers=KEY).content == chat_jsonl(10)
    job = raw.post("/openai/fine_tuning/jobs", params=DP, headers=KEY,
                   json={"model": BASE, "training_file": file_id, "suffix": "tour",
                         "method": {"type": "supervised"}, "trainingType": "Standard"})
    assert job.status_code == 201
    job_id = job.json()["id"]
    jobs = f"/openai/fine_tuning/jobs/{job_id}"
    admin.configure(job_running_seconds=100)
    admin.advance(1)
    assert raw.post(f"{jobs}/pause", params=DP, headers=KEY).json()["status"] == "paused"
    assert raw.post(f"{jobs}/resume", params=DP, headers=KEY).json()["status"] == "resuming"
    admin.advance(200)
    assert raw.get(jobs, params=DP, headers=KEY).json()["status"] == "succeeded"
    assert raw.get("/openai/fine_tuning/jobs", params={**DP, "limit": 1}, headers=KEY).status_code == 200
    assert raw.get(f"{jobs}/events", params=DP, headers=KEY).json()["data"]
    assert raw.get(f"{jobs}/checkpoints", params=DP, headers=KEY).json()["data"]
    model = raw.get(jobs, params=DP, headers=KEY).json()["fine_tuned_model"]
    assert raw.get("/openai/models", params=DP, headers=KEY).status_code == 200
    assert raw.get(f"/openai/models/{model}", params=DP, headers=KEY).json()["fine_tune"] == job_id
    assert raw.get(f"/openai/models/{BASE}", params=DP, headers=KEY).json()["capabilities"]["fine_tune"] is True
    second = raw.post("/openai/fine_tuning/jobs", params=DP, headers=KEY,
                      json={"model": BASE, "training_file": file_id}).json()["id"]
    assert raw.post(f"/openai/fine_tuning/jobs/{second}/cancel", params=DP, headers=KEY).status_code == 200
    assert raw.delete(f"/openai/fine_tuning/jobs/{second}", params=DP, headers=KEY).status_code == 204
    # data-plane errors
    assert raw.get("/openai/files", params=DP).status_code == 401
    assert raw.get("/openai/files/file-missing", params=DP, headers=KEY).status_code == 404
    assert raw.get("/openai/fine_tuning/jobs/ftjob-missing", params=DP, headers=KEY).status_code == 404
    assert raw.post("/openai/fine_tuning/jobs", params=DP, headers=KEY, json={"model": "nope"}).status_code == 400
    assert raw.post(f"{jobs}/cancel", params=DP, headers=KEY).status_code == 400  # already succeeded
    assert raw.post(f"/openai/fine_tuning/jobs/{job_id}/pause", params=DP, headers=KEY).status_code == 400
    assert raw.delete("/openai/files/file-missing", params=DP, headers=KEY).status_code == 404
    assert raw.post("/openai/files", params=DP, headers=KEY, data={"purpose": "fine-tune"}).status_code == 400
    assert raw.get("/openai/models/nope", params=DP, headers=KEY).status_code == 404
    assert raw.delete(f"/openai/files/{file_id}", params=DP, headers=KEY).json()["deleted"] is True

    # -- ARM
    dep = f"{ACCOUNT_ID}/deployments/tour"
    body = {"sku": {"name": "Standard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}}}
    put = raw.put(dep, params=ARM_V, headers=BEARER, json=body)
    assert put.status_code == 201
    assert raw.get(put.headers["Azure-AsyncOperation"], headers=BEARER).json()["status"] == "Succeeded"
    assert raw.get(dep, params=ARM_V, headers=BEARER).json()["properties"]["provisioningState"] == "Succeeded"
    assert raw.put(dep, params=ARM_V, headers=BEARER, json=body).status_code == 200
    patch = {"sku": {"name": "Standard", "capacity": 3}}
    assert raw.patch(dep, params=ARM_V, headers=BEARER, json=patch).json()["sku"]["capacity"] == 3
    assert raw.get(f"{ACCOUNT_ID}/deployments", params=ARM_V, headers=BEARER).json()["value"]
    deleting = raw.delete(dep, params=ARM_V, headers=BEARER)
    assert deleting.status_code == 202
    assert raw.get(dep, params=ARM_V, headers=BEARER).json()["properties"]["provisioningState"] == "Deleting"
    assert raw.get(deleting.headers["Location"], headers=BEARER).json()["status"] == "InProgress"
    assert raw.put(dep, params=ARM_V, headers=BEARER, json=body).status_code == 409
    admin.advance(10)
    assert raw.delete(dep, params=ARM_V, headers=BEARER).status_code == 204
    # ARM errors
    assert raw.get(dep, params=ARM_V).status_code == 401
    assert raw.get(dep, params=ARM_V, headers=BEARER).status_code == 404
    assert raw.put(dep, params=ARM_V, headers=BEARER, json={"sku": {"name": "Standard"}}).status_code == 400
    assert raw.put(dep, params=ARM_V, headers=BEARER, content=b"{not json").status_code == 400
    assert raw.patch(dep, params=ARM_V, headers=BEARER, json=patch).status_code == 404
    op_missing = f"/subscriptions/s/providers/Microsoft.CognitiveServices/locations/x/operationResults/nope"
    assert raw.get(op_missing, params=ARM_V, headers=BEARER).status_code == 404
    # metrics
    metrics = f"{ACCOUNT_ID}/providers/Microsoft.Insights/metrics"
    assert raw.get(metrics, params={"api-version": "2024-02-01", "metricnames": "AzureOpenAIRequests",
                                    "timespan": "PT1H", "interval": "PT1H", "aggregation": "Total",
                                    "$filter": "ModelDeploymentName eq '*'"}, headers=BEARER).status_code == 200
    assert raw.get(metrics, params={"api-version": "2024-02-01", "metricnames": "Nope"},
                   headers=BEARER).status_code == 400

    operations = {c[4] for c in conformance.checked}
    assert SERVED <= operations, SERVED - operations
    statuses = {(c[4], c[2]) for c in conformance.checked}
    for expected in (("Files_Get", 404), ("FineTuning_Create", 400), ("Files_List", 401), ("FineTuning_Pause", 400),
                     ("Deployments_Get", 401), ("Deployments_Get", 404), ("Deployments_CreateOrUpdate", 400),
                     ("Deployments_CreateOrUpdate", 409), ("Deployments_Delete", 202), ("Deployments_Delete", 204),
                     ("Metrics_List", 400), ("AsyncOperation_Get", 404)):
        assert expected in statuses, expected
