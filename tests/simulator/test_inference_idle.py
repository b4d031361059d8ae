"""Inference on deployments, activity, and the service's deletion rules on the simulated clock."""
from __future__ import annotations

import openai
import pytest
from azure.core.exceptions import ResourceNotFoundError

from .conftest import ACCOUNT, BASE, RG, completion_jsonl, deploy, fine_tuned_model

DAY = 86400


def chat(oai, deployment: str):
    return oai.chat.completions.create(model=deployment, messages=[{"role": "user", "content": "ping"}])


def test_chat_and_completions_answer_for_deployed_models(oai, cs, admin):
    chat_model = fine_tuned_model(oai, admin)
    completion_model = fine_tuned_model(oai, admin, base="babbage-002", data=completion_jsonl(10))
    deploy(cs, "chatty", chat_model)
    deploy(cs, "classic", completion_model)

    reply = chat(oai, "chatty")
    assert reply.choices[0].message.role == "assistant" and "chatty" in reply.choices[0].message.content
    assert reply.model == chat_model and reply.usage.total_tokens > 0
    text = oai.completions.create(model="classic", prompt="Q1 ->")
    assert text.choices[0].text and text.model == completion_model

    with pytest.raises(openai.BadRequestError) as err:  # chat on a completion model
        chat(oai, "classic")
    assert err.value.code == "OperationNotSupported"
    log = admin.requests(path_regex="^/openai/deployments/chatty/chat/completions$")
    assert [r["status"] for r in log] == [200] and "api-version=" in log[0]["query"]


def test_not_deployed_answers_deployment_not_found(oai, admin):
    with pytest.raises(openai.NotFoundError) as err:
        chat(oai, "nowhere")
    assert err.value.code == "DeploymentNotFound"


def test_api_key_or_bearer_is_required(sim, oai, admin, raw):
    url = "/openai/deployments/x/chat/completions?api-version=2025-04-01-preview"
    assert raw.post(url, json={"messages": []}).status_code == 401
    assert raw.post(url, json={"messages": []}, headers={"Authorization": "Bearer t"}).status_code == 404


def test_warm_up_after_arm_succeeded(oai, cs, admin):
    admin.configure(deployment_warmup_seconds=120)
    deploy(cs, "warming", BASE)
    with pytest.raises(openai.NotFoundError) as err:
        chat(oai, "warming")
    assert err.value.code == "DeploymentNotReady"
    admin.advance(121)
    assert chat(oai, "warming").choices


def test_idle_fine_tuned_deployment_is_deleted_after_15_days_and_a_busy_one_is_kept(oai, cs, admin):
    model, other = fine_tuned_model(oai, admin), fine_tuned_model(oai, admin)  # one deployment per model
    deploy(cs, "idle", model)
    deploy(cs, "busy", other)
    deploy(cs, "base-idle", BASE)  # the rule is for fine-tuned models only
    chat(oai, "busy")

    admin.advance(8 * DAY)
    chat(oai, "busy")
    admin.advance(7 * DAY - 60)  # a minute short of 15 days idle
    assert cs.deployments.get(RG, ACCOUNT, "idle").properties.provisioning_state == "Succeeded"
    admin.advance(1 * DAY + 60)  # day 16

    with pytest.raises(ResourceNotFoundError):
        cs.deployments.get(RG, ACCOUNT, "idle")
    with pytest.raises(openai.NotFoundError):
        chat(oai, "idle")
    assert cs.deployments.get(RG, ACCOUNT, "busy").properties.provisioning_state == "Succeeded"
    assert cs.deployments.get(RG, ACCOUNT, "base-idle").properties.provisioning_state == "Succeeded"
    assert chat(oai, "busy").choices

    removed = admin.state()["removed_deployments"]
    assert [(r["name"], r["reason"]) for r in removed] == [("idle", "idle")]

    admin.advance(15 * DAY + 60)  # busy's last call was on day 16
    assert {d.name for d in cs.deployments.list(RG, ACCOUNT)} == {"base-idle"}
    # the fine-tuned model survives its deployments and can be deployed again
    assert deploy(cs, "idle", model).properties.provisioning_state == "Succeeded"


def test_developer_tier_deployment_is_deleted_24_hours_after_creation_whatever_its_activity(oai, cs, admin):
    model, other = fine_tuned_model(oai, admin), fine_tuned_model(oai, admin)  # one deployment per model
    deploy(cs, "dev", model, sku="DeveloperTier")
    deploy(cs, "std", other)
    for _ in range(23):
        admin.advance(3600)
        chat(oai, "dev")
    admin.advance(59 * 60)
    assert chat(oai, "dev").choices  # 23h59m: still there
    admin.advance(61)
    with pytest.raises(ResourceNotFoundError):
        cs.deployments.get(RG, ACCOUNT, "dev")
    assert cs.deployments.get(RG, ACCOUNT, "std").properties.provisioning_state == "Succeeded"
    removed = admin.state()["removed_deployments"]
    assert [(r["name"], r["reason"]) for r in removed] == [("dev", "developer_tier_expired")]
