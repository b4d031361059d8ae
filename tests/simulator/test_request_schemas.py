"""Request bodies are checked against the published request schemas, at both surfaces: a body the
description refuses gets the surface's 400 naming the field; what it allows is accepted."""
from __future__ import annotations

import openai
import pytest

from devstack.simulator.request_schemas import BodyRefused, RequestSchemas

from .conftest import ACCOUNT_ID, BASE, chat_jsonl, upload

DP = {"api-version": "2025-04-01-preview"}
ARM_V = {"api-version": "2025-06-01"}
KEY = {"api-key": "k"}
BEARER = {"Authorization": "Bearer t"}
DPO_MODEL = "gpt-4o-2024-08-06"
JOBS = "/openai/fine_tuning/jobs"
DEPLOYMENT = f"{ACCOUNT_ID}/deployments/checked"


def _refused(response, code: str, target: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["target"] == target, error
    assert f"'{target}'" in error["message"], error  # the message names the field
    return error["message"]


@pytest.fixture
def training(oai):
    return upload(oai, chat_jsonl(10)).id


# --------------------------------------------------------------------------- data plane


def test_a_dpo_job_without_its_dpo_object_is_refused(oai, admin, raw, training):
    # The published DpoMethodRequest (the method type "dpo" names) requires "dpo".
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.create(model=DPO_MODEL, training_file=training, method={"type": "dpo"})
    assert err.value.code == "invalidPayload" and err.value.body["target"] == "method.dpo"
    assert "'method.dpo' is required" in err.value.body["message"]
    job = oai.fine_tuning.jobs.create(model=DPO_MODEL, training_file=training, method={"type": "dpo", "dpo": {}})
    assert job.method.type == "dpo"
    bad = raw.post(JOBS, params=DP, headers=KEY,
                   json={"model": DPO_MODEL, "training_file": training,
                         "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": "high"}}}})
    _refused(bad, "invalidPayload", "method.dpo.hyperparameters.beta")


def test_job_bodies_the_description_refuses(oai, admin, raw, training):
    cases = [({"model": BASE}, "training_file"),
             ({"model": BASE, "training_file": training, "seed": "7"}, "seed"),
             ({"model": BASE, "training_file": training, "seed": 2**31}, "seed"),  # int32
             ({"model": BASE, "training_file": training, "suffix": None}, "suffix"),  # not x-nullable
             ({"model": BASE, "training_file": training, "hyperparameters": {"batch_size": 1.5}},
              "hyperparameters.batch_size"),
             ({"model": BASE, "training_file": training, "method": {}}, "method.type"),
             ({"model": BASE, "training_file": training, "integrations": [{"type": "wandb", "wandb": {}}]},
              "integrations[0].wandb.project")]
    for body, target in cases:
        _refused(raw.post(JOBS, params=DP, headers=KEY, json=body), "invalidPayload", target)
    assert admin.state()["jobs"] == []


def test_job_bodies_the_description_allows(oai, admin, raw, training):
    # Properties the schema does not declare are allowed (no additionalProperties): trainingType is
    # Azure's, method.supervised OpenAI's; method.type is an extensible enum (modelAsString).
    body = {"model": BASE, "training_file": training, "trainingType": "Standard",
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}}
    assert raw.post(JOBS, params=DP, headers=KEY, json=body).status_code == 201


def test_file_import_and_upload_forms_are_checked(oai, admin, raw):
    missing = raw.post("/openai/files/import", params=DP, headers=KEY,
                       json={"filename": "a.jsonl", "content_url": "https://example.invalid/a.jsonl"})
    _refused(missing, "invalidPayload", "purpose")
    typed = raw.post("/openai/files/import", params=DP, headers=KEY,
                     json={"purpose": "fine-tune", "filename": 7, "content_url": "https://example.invalid/a"})
    _refused(typed, "invalidPayload", "filename")
    data = chat_jsonl(10)
    no_file = raw.post("/openai/files", params=DP, headers=KEY, files={"purpose": (None, "fine-tune")})  # multipart
    _refused(no_file, "invalidPayload", "file")
    no_purpose = raw.post("/openai/files", params=DP, headers=KEY, files={"file": ("t.jsonl", data)})
    _refused(no_purpose, "invalidPayload", "purpose")
    expiry = raw.post("/openai/files", params=DP, headers=KEY, files={"file": ("t.jsonl", data)},
                      data={"purpose": "fine-tune", "expires_after.anchor": "created_at",
                            "expires_after.seconds": "60"})
    _refused(expiry, "invalidPayload", "expires_after.seconds")  # the spec's range is 14 to 30 days
    ok = raw.post("/openai/files", params=DP, headers=KEY, files={"file": ("t.jsonl", data)},
                  data={"purpose": "fine-tune", "expires_after.anchor": "created_at",
                        "expires_after.seconds": str(14 * 86400)})
    assert ok.status_code == 201
    assert [f["id"] for f in admin.state()["files"]] == [ok.json()["id"]]


# --------------------------------------------------------------------------- ARM


def test_deployment_bodies_the_description_refuses(cs, admin, raw):
    model = {"format": "OpenAI", "name": BASE, "version": "2024-07-18"}
    cases = [({"sku": {"capacity": 1}, "properties": {"model": model}}, "sku.name"),
             ({"sku": {"name": "Standard", "capacity": "1"}, "properties": {"model": model}}, "sku.capacity"),
             ({"sku": {"name": "Standard", "capacity": 2**31}, "properties": {"model": model}}, "sku.capacity"),
             ({"sku": {"name": "Standard"}, "tags": {"n": 1}, "properties": {"model": model}}, "tags.n"),
             ({"sku": {"name": "Standard"}, "properties": {"model": {**model, "version": 1}}},
              "properties.model.version"),
             ({"sku": {"name": "Standard"}, "properties": {"model": model, "raiPolicyName": ["x"]}},
              "properties.raiPolicyName"),
             ({"sku": {"name": "Standard"}, "properties": {"model": model,
                                                           "capacitySettings": {"priority": -1}}},
              "properties.capacitySettings.priority")]
    for body, target in cases:
        message = _refused(raw.put(DEPLOYMENT, params=ARM_V, headers=BEARER, json=body),
                           "InvalidRequestContent", target)
        assert message.startswith("The request content was invalid")
    assert list(cs.deployments.list("rg-sim", "aoai-sim")) == []
    assert raw.put(DEPLOYMENT, params=ARM_V, headers=BEARER, json={"sku": {"name": "Standard"},
                                                                   "properties": {"model": model}}).status_code == 201
    _refused(raw.patch(DEPLOYMENT, params=ARM_V, headers=BEARER, json={"sku": {"capacity": 2}}),
             "InvalidRequestContent", "sku.name")
    _refused(raw.patch(DEPLOYMENT, params=ARM_V, headers=BEARER, json={"tags": {"a": False}}),
             "InvalidRequestContent", "tags.a")
    assert raw.patch(DEPLOYMENT, params=ARM_V, headers=BEARER,
                     json={"sku": {"name": "Standard", "capacity": 2}, "tags": {"a": "b"}}).status_code == 200
    not_json = raw.put(DEPLOYMENT, params=ARM_V, headers=BEARER, content=b"{nope")
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "InvalidRequestContent"


def test_read_only_properties_in_a_put_are_ignored_not_refused(cs, admin, raw):
    body = {"sku": {"name": "Standard"}, "id": 42, "systemData": "whatever",
            "properties": {"model": {"format": "OpenAI", "name": BASE}, "provisioningState": "Bogus",
                           "rateLimits": "lots", "dynamicThrottlingEnabled": "yes"}}
    put = raw.put(DEPLOYMENT, params=ARM_V, headers=BEARER, json=body)
    assert put.status_code == 201, put.text
    assert put.json()["properties"]["provisioningState"] == "Creating" and put.json()["id"].endswith("/checked")
    assert isinstance(put.json()["properties"]["rateLimits"], list)


# --------------------------------------------------------------------------- the validator itself


def test_the_validator_reads_the_description_for_requests():
    schemas = RequestSchemas()
    create = schemas.operation("POST", JOBS)
    assert create.operation_id == "FineTuning_Create" and create.body_parameter["schema"]
    assert schemas.operation("POST", "/openai/files/import").operation_id == "Files_Import"  # not {file-id}
    assert schemas.operation("POST", "/openai/deployments/d/chat/completions") is None  # not described here
    with pytest.raises(BodyRefused) as err:
        schemas.check_json("POST", JOBS, {"model": "m", "training_file": "f", "method": {"type": "dpo"}})
    assert err.value.field == "method.dpo" and err.value.operation_id == "FineTuning_Create"
    # "reinforcement" passes the description's open enum; the SDK-derived RFT schema then wants its object.
    with pytest.raises(BodyRefused) as err:
        schemas.check_json("POST", JOBS, {"model": "m", "training_file": "f", "method": {"type": "reinforcement"}})
    assert err.value.field == "method.reinforcement" and err.value.operation_id == "FineTuning_Create"
    grader = {"type": "string_check", "name": "g", "input": "{{ sample.output_text }}", "reference": "{{ item.a }}",
              "operation": "eq"}
    schemas.check_json("POST", JOBS, {"model": "m", "training_file": "f",
                                      "method": {"type": "reinforcement", "reinforcement": {"grader": grader}}})
    kept = schemas.writable("PUT", DEPLOYMENT, {"sku": {"name": "S", "capacity": 1}, "id": "x", "other": 1,
                                                 "properties": {"model": {"name": "m", "callRateLimit": {}},
                                                                "rateLimits": [], "raiPolicyName": "p"}})
    assert kept == {"sku": {"name": "S", "capacity": 1}, "properties": {"model": {"name": "m"}, "raiPolicyName": "p"}}


def test_the_validator_accepts_the_published_request_examples():
    import json

    schemas = RequestSchemas()
    checked = 0
    for spec in (schemas.data_plane, schemas.arm):
        for op in spec.operations:
            param = op.body_parameter
            raw = spec.doc["paths"][op.template][op.method.lower()]
            if param is None:
                continue
            for ref in (raw.get("x-ms-examples") or {}).values():
                example = spec.path.parent / ref["$ref"]
                if not example.is_file():
                    continue
                body = json.loads(example.read_text())["parameters"].get(param["name"])
                if body is None:
                    continue
                path = spec.prefix + op.template.replace("{", "").replace("}", "")  # any value per segment
                schemas.check_json(op.method, path, body)  # raises if refused
                checked += 1
    assert checked >= 3  # import, fine-tuning job, deployment PUT/PATCH
