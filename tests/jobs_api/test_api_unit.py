"""Unit tests of the HTTP layer and the job domain that need no storage or simulator."""
from __future__ import annotations

import json
import re

import httpx2 as httpx
import pytest
from jsonschema import Draft202012Validator

from shared.api import Request, handle
from shared.api.http import PROBLEM_TYPES, parse_json_body
from shared.api.openapi import openapi_document
from shared.api.router import Router
from shared.api.routes import OPERATIONS, decode_token, encode_token
from shared.api.schemas import COMPONENTS
from shared.api.validation import check_supported, validate
from shared.core.errors import classify
from shared.jobs import JOB_STATUSES, refusal
from shared.machines.job import state_for_azure

from .openapi_check import OpenApiChecker


def call(method: str, path: str, body=None, headers=None, documented: bool = True) -> tuple[int, dict, object]:
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    r = handle(Request.build(method, path, headers=headers, body=raw), ctx=object())
    if documented:
        OpenApiChecker(openapi_document()).check(method, path, r.status,
                                                 {k.lower(): v for k, v in r.headers.items()}, r.body)
    return r.status, r.headers, r.json()


# ------------------------------------------------------------------------------ OpenAPI document


def test_openapi_document_is_valid_openapi_3_1():
    from openapi_spec_validator import OpenAPIV31SpecValidator

    doc = openapi_document()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] and doc["info"]["version"]
    # The whole document against the OpenAPI 3.1 specification's own schema.
    errors = [e.message for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []
    # Every schema is a valid JSON Schema 2020-12 and every $ref resolves.
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc))
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    op_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in item.items():
            assert method in ("get", "post", "patch", "put", "delete")
            op_ids.append(op["operationId"])
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, method)
            for p in op.get("parameters", []):
                assert p["in"] in ("path", "query", "header") and "schema" in p
                assert p["required"] is True or p["in"] != "path"
                Draft202012Validator.check_schema(p["schema"])
            for status, response in op["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]", status) and response["description"]
                for media, content in response.get("content", {}).items():
                    assert media in ("application/json", "application/problem+json")
                    if status.startswith(("4", "5")):
                        assert media == "application/problem+json"
    assert len(op_ids) == len(set(op_ids)) == len(OPERATIONS)
    assert set(doc["components"]["securitySchemes"]) == {"functionKeyHeader", "functionKeyQuery"}
    # Each problem type is named in the description.
    for slug in PROBLEM_TYPES:
        assert slug in doc["info"]["description"]


def test_request_schemas_use_only_what_the_validator_implements():
    for name in ("CreateJobRequest", "PatchDeploymentRequest"):
        check_supported(COMPONENTS[name], COMPONENTS, name)


BODIES = [
    {"training_dataset": "a.jsonl"},
    {"training_dataset": "a.jsonl", "hyperparameters": {"n_epochs": "auto", "batch_size": 8,
                                                         "learning_rate_multiplier": 0.05}},
    {"training_dataset": "a.jsonl", "hyperparameters": {"n_epochs": 3.0}},
    {"training_dataset": "a.jsonl", "hyperparameters": {"n_epochs": 2.5}},
    {"training_dataset": "a.jsonl", "hyperparameters": {"n_epochs": True}},
    {"training_dataset": "a.jsonl", "hyperparameters": {"learning_rate_multiplier": 0}},
    {"training_dataset": "a.jsonl", "hyperparameters": {"learning_rate_multiplier": 10}},
    {"training_dataset": "a.jsonl", "hyperparameters": {"batch_size": "8"}},
    {"training_dataset": "a.jsonl", "hyperparameters": {"epochs": 3}},
    {"training_dataset": "a.jsonl", "deployment": False},
    {"training_dataset": "a.jsonl", "deployment": True},
    {"training_dataset": "a.jsonl", "deployment": None},
    {"training_dataset": "a.jsonl", "deployment": {}},
    {"training_dataset": "a.jsonl", "deployment": {"name": "x"}},
    {"training_dataset": "a.jsonl", "deployment": {"name": "my-dep.1", "sku": "GlobalStandard", "capacity": 2,
                                                   "keep_alive": "none", "gate": {"max_valid_loss": 0.8,
                                                                                  "min_valid_mean_token_accuracy": 1}}},
    {"training_dataset": "a.jsonl", "deployment": {"gate": {"min_valid_mean_token_accuracy": 1.1}}},
    {"training_dataset": "a.jsonl", "suffix": "a" * 40},
    {"training_dataset": "a.jsonl", "suffix": "a" * 41},
    {"training_dataset": "a.jsonl", "suffix": "ok_-1"},
    {"training_dataset": "a.jsonl", "suffix": "no.dots"},
    {"training_dataset": "a.jsonl", "seed": -1},
    {"training_dataset": "a.jsonl", "seed": 2147483647},
    {"training_dataset": "a.jsonl", "validation_dataset": None},
    {"training_dataset": ""},
    {"training_dataset": "a.jsonl", "method": "dpo", "training_type": "DeveloperTier"},
    {"training_dataset": "a.jsonl", "training_type": "developertier"},
    {},
    [],
    "text",
    None,
]


@pytest.mark.parametrize("body", BODIES, ids=[str(i) for i in range(len(BODIES))])
def test_the_validator_agrees_with_jsonschema(body):
    schema = {**COMPONENTS["CreateJobRequest"], "components": {"schemas": COMPONENTS}}
    expected = Draft202012Validator(schema).is_valid(body)
    errors = validate(body, COMPONENTS["CreateJobRequest"], COMPONENTS)
    assert (not errors) == expected, errors
    for e in errors:
        assert e.to_dict()["detail"].startswith((e.field or "body") + ": ")


# ------------------------------------------------------------------------------ HTTP layer


def test_problem_details_for_bad_bodies_without_any_backend():
    status, headers, body = call("POST", "/api/jobs", b"{not json")
    assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
    assert body["type"] == "urn:ft-autopilot:problem:invalid-json" and body["instance"] == "/api/jobs"
    status, _, body = call("POST", "/api/jobs", b'{"training_dataset": "a", "training_dataset": "b"}')
    assert status == 400 and "duplicate field 'training_dataset'" in body["detail"]
    status, _, body = call("POST", "/api/jobs", b'{"training_dataset": "a", "seed": NaN}')
    assert status == 400 and "NaN" in body["detail"]
    status, _, body = call("POST", "/api/jobs", b"\xff\xfe{}")
    assert status == 400 and "UTF-8" in body["detail"]
    status, _, body = call("POST", "/api/jobs", b"")
    assert status == 400 and "empty" in body["detail"]
    status, _, body = call("POST", "/api/jobs", b" " * (64 * 1024 + 1))
    assert status == 413 and body["limit"] == 64 * 1024
    status, _, body = call("PATCH", "/api/deployments/dep-1", {"keep_alive": "sometimes"})
    assert status == 400 and body["errors"][0]["pointer"] == "/keep_alive"


def test_routes_and_names_are_validated():
    status, headers, body = call("PUT", "/api/jobs")
    assert status == 405 and headers["Allow"] == "GET, POST"
    status, _, body = call("GET", "/api/jobs/..%2F..%2Fetc")
    assert status == 400 and body["detail"].startswith("id:")
    status, _, body = call("GET", "/api/deployments/a%27%20or%20true")
    assert status == 400 and body["detail"].startswith("name:")
    status, _, body = call("GET", "/api/jobs?limit=1000")
    assert status == 400 and body["detail"].startswith("limit:")
    status, _, body = call("GET", "/api/nowhere", documented=False)
    assert status == 404 and body["type"].endswith(":not-found")


def test_router_matches_raw_segments_and_greedy_names():
    router = Router(OPERATIONS)
    op, params, _ = router.resolve(Request.build("GET", "/api/datasets/gpt-4o/a%2Fb.jsonl"))
    assert op.operation_id == "getDataset" and params == {"name": "gpt-4o/a/b.jsonl"}
    op, params, _ = router.resolve(Request.build("POST", "/api/jobs/job-1/cancel"))
    assert op.operation_id == "cancelJob" and params == {"id": "job-1"}
    op, params, _ = router.resolve(Request.build("GET", "/jobs/abc"))  # without the prefix, too
    assert op.operation_id == "getJob"
    op, _, allowed = router.resolve(Request.build("GET", "/api/jobs/job-1/cancel"))
    assert op is None and allowed == {"POST"}


def test_continuation_tokens_are_opaque_and_tied_to_their_query():
    token = encode_token("q1", {"pk": "job", "rk": "job-123"})
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert decode_token(Request.build("GET", f"/api/jobs?continuation={token}"), "q1")["rk"] == "job-123"
    for bad in (token + "x", "e30", "not base64!", "x" * 5000):
        with pytest.raises(Exception) as info:
            decode_token(Request.build("GET", "/api/jobs", query={"continuation": bad}), "q1")
        assert info.value.kind == "invalid-parameter"
    with pytest.raises(Exception) as info:
        decode_token(Request.build("GET", f"/api/jobs?continuation={token}"), "q2")
    assert "different query" in info.value.detail


def test_unsupported_media_type_and_json_subtypes():
    req = Request.build("POST", "/api/jobs", headers={"Content-Type": "application/merge-patch+json"}, body=b"{}")
    assert parse_json_body(req) == {}
    req = Request.build("POST", "/api/jobs", headers={"Content-Type": "application/x-www-form-urlencoded"},
                        body=b"a=b")
    with pytest.raises(Exception) as info:
        parse_json_body(req)
    assert info.value.status == 415


# ------------------------------------------------------------------------------ domain


@pytest.mark.parametrize("azure, ours", [
    ("created", "pending"), ("pending", "pending"), ("queued", "queued"), ("validating_files", "validating_files"),
    ("running", "running"), ("pausing", "running"), ("paused", "paused"), ("resuming", "running"),
    ("succeeded", "succeeded"), ("failed", "failed"), ("cancelled", "cancelled"), ("Cancelled", "cancelled"),
])
def test_both_azure_vocabularies_map_to_service_statuses(azure, ours):
    assert state_for_azure(azure) == ours and ours in JOB_STATUSES


def _status_error(status: int, body: dict, headers: dict | None = None):
    import openai

    request = httpx.Request("POST", "https://x/openai/fine_tuning/jobs")
    response = httpx.Response(status, json=body, headers=headers or {}, request=request)
    client = openai.OpenAI(api_key="x", base_url="https://x")
    return client._make_status_error(f"Error code: {status}", body=body, response=response)


@pytest.mark.parametrize("status, kind, answer", [
    (400, "azure-openai-refused", 400), (404, "azure-openai-refused", 400), (409, "azure-openai-conflict", 409),
    (429, "azure-openai-unavailable", 503), (503, "azure-openai-unavailable", 503), (401, "azure-openai-error", 502),
])
def test_azure_refusals_are_classified(status, kind, answer):
    exc = _status_error(status, {"error": {"code": "someCode", "message": "nope", "target": "model"}},
                        {"retry-after": "12"})
    problem = refusal(classify(exc), "create the fine-tuning job")
    assert problem is not None  # refused: nothing was created
    assert problem.kind == kind and problem.extensions["code"] == "someCode"
    assert (problem.status or PROBLEM_TYPES[kind][0]) == answer
    if answer == 503:
        assert problem.retry_after == 12


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_leave_the_outcome_unknown(status):
    err = classify(_status_error(status, {"error": {"code": "internalFailure", "message": "x"}}))
    assert not err.created_nothing and refusal(err, "create the fine-tuning job") is None


def test_timeouts_leave_the_outcome_unknown():
    import openai

    exc = openai.APITimeoutError(request=httpx.Request("POST", "https://x"))
    err = classify(exc)
    assert not err.created_nothing and refusal(err, "create") is None


def test_function_app_loads_without_the_domain():
    import subprocess
    import sys

    code = ("import sys, function_app; names = [n for n in sys.modules if n == 'shared.api.routes' or "
            "n.startswith(('openai', 'azure.data.tables'))]; print(names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == "[]", out.stdout


def test_a_model_retiring_within_90_days_is_announced():
    from datetime import date

    from shared.jobs import retirement

    fine_tuned = "gpt-4o-mini-2024-07-18.ft-0123456789abcdef0123456789abcdef-support"
    soon = retirement(fine_tuned, today=date(2027, 1, 15))
    assert soon["retires_on"] == "2027-03-31" and soon["days_left"] == 75 and "stop serving" in soon["message"]
    assert retirement(fine_tuned, today=date(2026, 12, 1)) is None  # 120 days away: not yet
    assert retirement("gpt-4.1-2025-04-14", today=date(2027, 8, 1))["retires_on"] == "2027-10-14"
    assert retirement("no-such-model") is None
