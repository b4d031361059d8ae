"""Checkpoints: one per epoch, listed with their metrics; the three most recent (and a pause's) deployable by
their id as the deployment's model name; a pause makes one; inference on a checkpoint deployment."""
from __future__ import annotations

import re

import openai
import pytest
from azure.core.exceptions import HttpResponseError
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint
from pydantic import TypeAdapter

from .conftest import ACCOUNT, BASE, RG, chat_jsonl, create_rft_job, deploy, deployment_body, finished_job, upload


def five_epoch_job(oai, admin):
    training = upload(oai, chat_jsonl(10))
    job = finished_job(oai, admin, model=BASE, training_file=training.id,
                       hyperparameters={"n_epochs": 5, "batch_size": 2})
    assert job.status == "succeeded"
    return job


def test_one_checkpoint_per_epoch_with_its_metrics_newest_first(oai, admin):
    job = five_epoch_job(oai, admin)
    page = oai.fine_tuning.jobs.checkpoints.list(job.id)
    assert [c.step_number for c in page.data] == [25, 20, 15, 10, 5] and not page.has_more  # 10 / 2 = 5 per epoch
    for c in page.data:
        TypeAdapter(FineTuningJobCheckpoint).validate_python(c.to_dict())
        assert re.fullmatch(r"ftchkpt-[0-9a-f]{32}", c.id)
        assert c.fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-{c.step_number}"
        assert c.fine_tuning_job_id == job.id and c.metrics.step == c.step_number and c.metrics.train_loss > 0
    first = oai.fine_tuning.jobs.checkpoints.list(job.id, limit=2)
    assert [c.step_number for c in first.data] == [25, 20] and first.has_more
    rest = oai.fine_tuning.jobs.checkpoints.list(job.id, limit=10, after=first.data[-1].id)
    assert [c.step_number for c in rest.data] == [15, 10, 5]
    events = [e.message for e in oai.fine_tuning.jobs.list_events(job.id, limit=200)]
    assert sum(m.startswith("Checkpoint created at step") for m in events) == 5


def test_a_recent_checkpoint_deploys_by_its_id_and_answers_like_a_fine_tuned_model(oai, cs, admin):
    job = five_epoch_job(oai, admin)
    ckpt = next(c for c in oai.fine_tuning.jobs.checkpoints.list(job.id).data if c.step_number == 15)
    deployed = deploy(cs, "ckpt-15", ckpt.id)
    assert deployed.properties.provisioning_state == "Succeeded"
    assert deployed.properties.model.name == ckpt.id and deployed.properties.model.version == "1"
    assert deployed.properties.capabilities["fineTuned"] == "true"
    reply = oai.chat.completions.create(model="ckpt-15", messages=[{"role": "user", "content": "ping"}])
    assert reply.model == ckpt.id and "ckpt-15" in reply.choices[0].message.content
    with pytest.raises(HttpResponseError) as err:  # one deployment per model, as for fine-tuned models
        deploy(cs, "ckpt-15-again", ckpt.id)
    assert err.value.status_code == 409


def test_an_older_checkpoint_is_not_deployable(oai, cs, admin):
    job = five_epoch_job(oai, admin)
    old = next(c for c in oai.fine_tuning.jobs.checkpoints.list(job.id).data if c.step_number == 10)
    with pytest.raises(HttpResponseError) as err:
        cs.deployments.begin_create_or_update(RG, ACCOUNT, "ckpt-10", deployment_body(old.id)).result()
    assert err.value.status_code == 400 and err.value.error.code == "DeploymentModelNotSupported"
    assert old.id in err.value.message and "3 most recent checkpoints" in err.value.message
    assert "15, 20, 25" in err.value.message or "25, 20, 15" in err.value.message
    with pytest.raises(HttpResponseError):  # nor by its checkpoint model name
        cs.deployments.begin_create_or_update(RG, ACCOUNT, "ckpt-10", deployment_body(
            old.fine_tuned_model_checkpoint)).result()


def test_a_pause_makes_a_deployable_checkpoint_and_a_running_job_s_checkpoints_are_not(oai, cs, admin):
    admin.configure(job_running_seconds=100)
    training = upload(oai, chat_jsonl(10))
    job = oai.fine_tuning.jobs.create(model=BASE, training_file=training.id,
                                      hyperparameters={"n_epochs": 4, "batch_size": 1})  # 40 steps over 100 s
    admin.advance(40)  # ~15 steps: the first epoch's checkpoint (step 10) exists
    assert [c.step_number for c in oai.fine_tuning.jobs.checkpoints.list(job.id).data] == [10]
    epoch_one = oai.fine_tuning.jobs.checkpoints.list(job.id).data[0]
    with pytest.raises(HttpResponseError) as err:  # the job is still running
        deploy(cs, "too-early", epoch_one.id)
    assert err.value.status_code == 400 and "running" in err.value.message

    paused = oai.fine_tuning.jobs.pause(job.id)
    assert paused.status == "paused"
    steps = [c.step_number for c in oai.fine_tuning.jobs.checkpoints.list(job.id).data]
    assert len(steps) == 2 and steps[1] == 10 and 10 < steps[0] < 20  # the pause's, at the step reached
    pause_ckpt = oai.fine_tuning.jobs.checkpoints.list(job.id).data[0]
    messages = [e.message for e in oai.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "message"]
    assert f"Checkpoint created at step {pause_ckpt.step_number}." in messages and "Job paused." in messages
    assert deploy(cs, "paused-ckpt", pause_ckpt.id).properties.provisioning_state == "Succeeded"
    assert oai.chat.completions.create(model="paused-ckpt", messages=[{"role": "user", "content": "hi"}]).model \
        == pause_ckpt.id

    # resumed, it trains on to the end; the pause's checkpoint stays deployable beside the last three
    oai.fine_tuning.jobs.resume(job.id)
    admin.advance(200)
    done = oai.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    listed = oai.fine_tuning.jobs.checkpoints.list(job.id).data
    assert sorted(c.step_number for c in listed) == [10, pause_ckpt.step_number, 20, 30, 40]
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "epoch-one", epoch_one.id)  # now older than the three most recent
    assert err.value.error.code == "DeploymentModelNotSupported"
    cs.deployments.begin_delete(RG, ACCOUNT, "paused-ckpt").result()
    assert deploy(cs, "paused-ckpt-2", pause_ckpt.id).properties.provisioning_state == "Succeeded"


def test_pausing_takes_configured_time_and_the_checkpoint_appears_when_paused(oai, admin):
    admin.configure(job_running_seconds=100, job_pausing_seconds=30)
    training = upload(oai, chat_jsonl(10))
    job = oai.fine_tuning.jobs.create(model=BASE, training_file=training.id)
    admin.advance(20)
    assert oai.fine_tuning.jobs.pause(job.id).status == "pausing"
    assert oai.fine_tuning.jobs.checkpoints.list(job.id).data == []  # made while pausing
    with pytest.raises(openai.BadRequestError):
        oai.fine_tuning.jobs.resume(job.id)  # only a paused job resumes
    admin.advance(10)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "pausing"
    admin.advance(25)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "paused"
    assert len(oai.fine_tuning.jobs.checkpoints.list(job.id).data) == 1
    assert oai.fine_tuning.jobs.resume(job.id).status == "resuming"


def test_an_rft_job_paused_by_its_spending_deploys_its_latest_checkpoint(oai, cs, admin):
    admin.configure(rft_cost_per_hour=3_600_000, job_running_seconds=100)  # the $5,000 cap after 5 s
    job = create_rft_job(oai)
    admin.advance(60)
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "paused"
    latest = oai.fine_tuning.jobs.checkpoints.list(job.id).data[0]
    assert "train_reward_mean" in latest.metrics.to_dict()
    deployed = deploy(cs, "rft-ckpt", latest.id)
    assert deployed.properties.model.name == latest.id and deployed.properties.provisioning_state == "Succeeded"
    assert oai.chat.completions.create(model="rft-ckpt", messages=[{"role": "user", "content": "1 + 1?"}]).model \
        == latest.id


def test_a_recent_checkpoint_can_be_fine_tuned_further(oai, admin):
    job = five_epoch_job(oai, admin)
    listed = oai.fine_tuning.jobs.checkpoints.list(job.id).data
    training = upload(oai, chat_jsonl(10, tag="more"))
    again = finished_job(oai, admin, model=listed[1].id, training_file=training.id, suffix="from-ckpt")
    assert again.status == "succeeded" and again.model == listed[1].id
    assert again.fine_tuned_model == f"{BASE}.ft-{again.id.removeprefix('ftjob-')}-from-ckpt"
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.jobs.create(model=listed[-1].id, training_file=training.id)
    assert err.value.body["target"] == "model" and "3 most recent" in err.value.body["message"]
