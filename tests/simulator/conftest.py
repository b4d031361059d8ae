"""One simulator process for the whole session; real SDK clients pointed at it.

Every response an SDK client receives is checked against the published API
descriptions (see ``spec_validation.py``); a test fails if any did not conform.
"""
from __future__ import annotations

import json
import ssl
from typing import Iterator

import httpx2
import pytest

from tests.simstack import simulator_fixture
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import Deployment, DeploymentModel, DeploymentProperties, Sku
from azure.mgmt.monitor import MonitorManagementClient
from openai import AzureOpenAI

from devstack.simulator import AdminClient, SimulatorProcess, StaticTokenCredential

from .spec_validation import Conformance

SUB = "00000000-1111-2222-3333-444444444444"
RG = "rg-sim"
ACCOUNT = "aoai-sim"
API_VERSION = "2025-04-01-preview"
ARM_API_VERSION = "2025-06-01"
BASE = "gpt-4o-mini-2024-07-18"
ACCOUNT_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{ACCOUNT}"

# Fast phases so the suite runs in seconds; tests that need other values call admin.configure(...)
# (reset() restores these).
FAST = {
    "file_processing_seconds": 0.1,
    "job_pending_seconds": 0.2,
    "job_running_seconds": 0.8,
    "deployment_create_seconds": 0.1,
    "deployment_delete_seconds": 0.1,
    "lro_retry_after": 0.05,
}


sim = simulator_fixture(FAST)


@pytest.fixture(scope="session")
def _conformance() -> Conformance:
    return Conformance()


@pytest.fixture(autouse=True)
def conformance(request, _conformance) -> Iterator[Conformance]:
    """Fails the test if any response an SDK client received did not match its published schema."""
    _conformance.violations.clear()
    yield _conformance
    violations = list(_conformance.violations)
    _conformance.violations.clear()
    assert not violations, "responses that do not conform to the API descriptions:\n" + "\n".join(violations)


@pytest.fixture
def admin(sim) -> AdminClient:
    sim.admin.reset()
    return sim.admin


@pytest.fixture
def ssl_context(sim) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sim.ca_path))


def make_openai(sim, conformance, **kwargs) -> AzureOpenAI:
    timeout = kwargs.pop("timeout", 30.0)
    http = httpx2.Client(verify=ssl.create_default_context(cafile=str(sim.ca_path)), timeout=timeout,
                         event_hooks={"response": [conformance.httpx_hook()]})
    return AzureOpenAI(azure_endpoint=sim.url, api_key="test-key", api_version=API_VERSION, http_client=http,
                       timeout=timeout, **kwargs)


@pytest.fixture
def oai(sim, admin, conformance) -> Iterator[AzureOpenAI]:
    client = make_openai(sim, conformance)
    yield client
    client.close()


@pytest.fixture
def raw(sim, conformance) -> Iterator[httpx2.Client]:
    """A plain HTTP client (responses are conformance-checked too)."""
    with httpx2.Client(base_url=sim.url, verify=ssl.create_default_context(cafile=str(sim.ca_path)),
                       timeout=30, event_hooks={"response": [conformance.httpx_hook()]}) as client:
        yield client


@pytest.fixture
def cs(sim, admin, conformance) -> Iterator[CognitiveServicesManagementClient]:
    client = CognitiveServicesManagementClient(
        StaticTokenCredential("test-token"), SUB, base_url=sim.url, connection_verify=str(sim.ca_path),
        api_version=ARM_API_VERSION, raw_response_hook=conformance.azure_hook())
    yield client
    client.close()


@pytest.fixture
def monitor(sim, admin, conformance) -> Iterator[MonitorManagementClient]:
    client = MonitorManagementClient(StaticTokenCredential("test-token"), SUB, base_url=sim.url,
                                     connection_verify=str(sim.ca_path), raw_response_hook=conformance.azure_hook())
    yield client
    client.close()


# --------------------------------------------------------------------------- data helpers


def chat_jsonl(n: int, *, bom: bool = False, tag: str = "x") -> bytes:
    lines = [json.dumps({"messages": [{"role": "system", "content": "You are terse."},
                                      {"role": "user", "content": f"Question {i} ({tag})?"},
                                      {"role": "assistant", "content": f"Answer {i}."}]})
             for i in range(n)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def completion_jsonl(n: int) -> bytes:
    return ("\n".join(json.dumps({"prompt": f"Q{i} ->", "completion": f" A{i}"}) for i in range(n)) + "\n").encode()


def upload(oai: AzureOpenAI, data: bytes, name: str = "train.jsonl", wait: bool = True):
    created = oai.files.create(file=(name, data), purpose="fine-tune")
    if not wait:
        return created
    return oai.files.wait_for_processing(created.id, poll_interval=0.05, max_wait_seconds=20)


def finished_job(oai: AzureOpenAI, admin: AdminClient, **create_kwargs):
    """Create a job and move the clock until it has finished."""
    job = oai.fine_tuning.jobs.create(**create_kwargs)
    admin.advance(60)
    return oai.fine_tuning.jobs.retrieve(job.id)


def fine_tuned_model(oai: AzureOpenAI, admin: AdminClient, base: str = BASE, data: bytes | None = None) -> str:
    training = upload(oai, data or chat_jsonl(12))
    job = finished_job(oai, admin, model=base, training_file=training.id)
    assert job.status == "succeeded", job
    return job.fine_tuned_model


def deployment_body(model: str, sku: str = "Standard", capacity: int = 1, version: str = "1") -> Deployment:
    return Deployment(sku=Sku(name=sku, capacity=capacity),
                      properties=DeploymentProperties(model=DeploymentModel(format="OpenAI", name=model,
                                                                            version=version)))


def deploy(cs: CognitiveServicesManagementClient, name: str, model: str, sku: str = "Standard"):
    return cs.deployments.begin_create_or_update(RG, ACCOUNT, name, deployment_body(model, sku)).result()


# --------------------------------------------------------------------------- reinforcement fine-tuning

RFT_MODEL = "o4-mini-2025-04-16"
STRING_CHECK = {"type": "string_check", "name": "exact answer", "input": "{{ sample.output_json.answer }}",
                "reference": "{{ item.answer }}", "operation": "eq"}
MULTI_GRADER = {
    "type": "multi", "name": "answer and explanation",
    "graders": {
        "exact": {"type": "string_check", "name": "exact", "input": "{{ sample.output_json.answer }}",
                  "reference": "{{ item.answer }}", "operation": "eq"},
        "close": {"type": "text_similarity", "name": "close", "input": "{{ sample.output_json.explanation }}",
                  "reference": "{{ item.explanation }}", "evaluation_metric": "fuzzy_match"},
    },
    "calculate_output": "0.7 * exact + 0.3 * close",
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {
    "name": "answer", "strict": True,
    "schema": {"type": "object", "properties": {"answer": {"type": "string"}, "explanation": {"type": "string"}},
               "required": ["answer", "explanation"], "additionalProperties": False}}}


def rft_jsonl(n: int, *, tag: str = "x", final_role: str = "user") -> bytes:
    """RFT examples: the prompt ends with the user's message; the reference answer is an extra field."""
    lines = []
    for i in range(n):
        messages = [{"role": "developer", "content": "Answer with JSON."},
                    {"role": "user", "content": f"What is {i} + {i} ({tag})?"}]
        if final_role != "user":
            messages.append({"role": final_role, "content": str(2 * i)})
        lines.append(json.dumps({"messages": messages, "answer": str(2 * i), "explanation": f"{i} twice"}))
    return ("\n".join(lines) + "\n").encode("utf-8")


def rft_files(oai: AzureOpenAI) -> tuple[str, str]:
    return (upload(oai, rft_jsonl(12), name="rft-train.jsonl").id,
            upload(oai, rft_jsonl(10, tag="v"), name="rft-valid.jsonl").id)


def rft_method(grader: dict | None = None, **reinforcement) -> dict:
    return {"type": "reinforcement", "reinforcement": {"grader": grader or STRING_CHECK, **reinforcement}}


def create_rft_job(oai: AzureOpenAI, *, model: str = RFT_MODEL, grader: dict | None = None, files=None,
                   hyperparameters: dict | None = None, **reinforcement):
    training, validation = files or rft_files(oai)
    if hyperparameters is not None:
        reinforcement["hyperparameters"] = hyperparameters
    return oai.fine_tuning.jobs.create(model=model, training_file=training, validation_file=validation,
                                       method=rft_method(grader, **reinforcement),
                                       extra_body={"trainingType": "Standard"})
