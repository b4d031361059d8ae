"""State kept across restarts (--state-file), and the local CA."""
from __future__ import annotations

import socket
import ssl

import pytest
import trustme
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

from devstack.certs import ensure_certs
from devstack.simulator import SimulatorProcess, StaticTokenCredential

from .conftest import (ACCOUNT, BASE, FAST, RG, SUB, chat_jsonl, create_rft_job, deploy, finished_job, make_openai,
                       upload)


def test_state_file_keeps_files_jobs_deployments_and_the_clock(tmp_path, conformance):
    certs_dir = tmp_path / "certs"
    state_file = tmp_path / "sim-state.json"

    def clients(sim):
        oai = make_openai(sim, conformance)
        cs = CognitiveServicesManagementClient(StaticTokenCredential(), SUB, base_url=sim.url,
                                               connection_verify=str(sim.ca_path), api_version="2025-06-01")
        return oai, cs

    with SimulatorProcess(certs_dir=certs_dir, state_file=state_file, config=FAST) as first:
        oai, cs = clients(first)
        data = chat_jsonl(11)
        training = upload(oai, data)
        job = finished_job(oai, first.admin, model=BASE, training_file=training.id)
        assert job.status == "succeeded"
        deploy(cs, "kept", job.fine_tuned_model)
        oai.chat.completions.create(model="kept", messages=[{"role": "user", "content": "hi"}])
        first.admin.configure(rft_cost_per_hour=3_600_000, job_running_seconds=100)  # the $5,000 cap after 5 s
        rft = create_rft_job(oai)
        first.admin.advance(60)
        assert oai.fine_tuning.jobs.retrieve(rft.id).status == "paused"
        clock_before = first.admin.now()
        oai.close()
        cs.close()
    assert state_file.is_file()

    with SimulatorProcess(certs_dir=certs_dir, state_file=state_file, config=FAST,
                          extra_args=["--max-running-jobs", "5"]) as second:
        assert second.admin.config()["max_running_jobs"] == 5
        oai, cs = clients(second)
        assert second.admin.now() >= clock_before  # the 60 s the first run skipped are kept
        assert oai.files.retrieve(training.id).status == "processed"
        assert oai.files.content(training.id).read() == data
        again = oai.fine_tuning.jobs.retrieve(job.id)
        assert (again.status, again.fine_tuned_model) == ("succeeded", job.fine_tuned_model)
        assert oai.files.content(again.result_files[0]).read().startswith(b"step,train_loss,")
        assert len(list(oai.fine_tuning.jobs.list_events(job.id, limit=100))) > 5
        assert cs.deployments.get(RG, ACCOUNT, "kept").properties.provisioning_state == "Succeeded"
        assert oai.chat.completions.create(model="kept", messages=[{"role": "user", "content": "hi"}]).choices
        # the RFT job paused by its spending: still paused, its checkpoint deployable, resume lifts the cap
        assert oai.fine_tuning.jobs.retrieve(rft.id).status == "paused"
        saved = next(j for j in second.admin.state()["jobs"] if j["id"] == rft.id)
        assert saved["pause_reason"] == "spending_limit" and saved["deployable_checkpoints"]
        deploy(cs, "rft-kept", saved["deployable_checkpoints"][0])
        second.admin.configure(rft_cost_per_hour=3_600_000)
        oai.fine_tuning.jobs.resume(rft.id)
        second.admin.advance(300)
        assert oai.fine_tuning.jobs.retrieve(rft.id).status == "succeeded"
        oai.close()
        cs.close()


def test_in_memory_by_default(sim, oai, admin):
    # The session simulator has no --state-file: nothing is written next to its certificates.
    assert "--state-file" not in sim.command()
    upload(oai, chat_jsonl(10))
    assert not list(sim.certs_dir.glob("*.json"))


def test_certs_are_generated_once_and_reused(tmp_path):
    first = ensure_certs(tmp_path / "certs")
    contents = [p.read_bytes() for p in (first.ca_pem, first.server_cert_pem, first.server_key_pem)]
    second = ensure_certs(tmp_path / "certs")
    assert second == first
    assert [p.read_bytes() for p in (second.ca_pem, second.server_cert_pem, second.server_key_pem)] == contents
    assert b"BEGIN CERTIFICATE" in contents[0] and b"PRIVATE KEY" in contents[2]


@pytest.mark.parametrize("server_name", ["127.0.0.1", "localhost"])
def test_tls_verifies_against_the_local_ca_only(sim, server_name):
    host, port = sim.url.removeprefix("https://").rsplit(":", 1)
    trusted = ssl.create_default_context(cafile=str(sim.ca_path))
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        with trusted.wrap_socket(sock, server_hostname=server_name) as tls:
            assert tls.version()  # handshake and hostname check passed

    stranger = ssl.create_default_context()
    trustme.CA().configure_trust(stranger)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        with pytest.raises(ssl.SSLCertVerificationError):
            stranger.wrap_socket(sock, server_hostname=server_name)
