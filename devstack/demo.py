"""``make demo``: the whole service end to end on the local stack.

Starts Azurite, the simulator (short job phases) and the local runner with all five
triggers; drops the shipped sample dataset into the datasets container; starts a job
through ``POST /api/jobs``; waits until the monitor has deployed the model and a chat
completion to it answers; stops everything it started. Prints progress while it
waits, and as its last line one JSON object with the outcome. Exits non-zero with
the reason on any failure.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent / "samples" / "support-chat.jsonl"
BASE_MODEL = "gpt-4o-mini-2024-07-18"
DATASET = f"{BASE_MODEL}/support-demo.jsonl"
TIMEOUT_SECONDS = 180


class DemoFailed(Exception):
    pass


def _say(msg: str) -> None:
    print(f"[demo +{time.monotonic() - _T0:5.1f}s] {msg}", flush=True)


_T0 = time.monotonic()


def _wait(what: str, probe, timeout: float = TIMEOUT_SECONDS, interval: float = 0.5):
    """Calls ``probe`` until it returns a truthy value; prints each new state it reports."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        done, state = probe()
        if state != last:
            _say(f"{what}: {state}")
            last = state
        if done:
            return done
        time.sleep(interval)
    raise DemoFailed(f"timed out after {timeout:.0f}s waiting for {what} (last state: {last})")


# ``--accounts 2``: a pool of two accounts in two regions and subscriptions; the job trains on
# the default one and deploys to the second (deployment.account), the model named as its source.
POOL = [{"name": "aoai-demo-swc", "subscription": "00000000-0000-0000-0000-00000000d001",
         "resource_group": "rg-demo", "region": "swedencentral"},
        {"name": "aoai-demo-eus2", "subscription": "00000000-0000-0000-0000-00000000d002",
         "resource_group": "rg-demo-eus2", "region": "eastus2"}]


def run_demo(accounts: int = 1) -> dict:
    import httpx2 as httpx
    from azure.storage.blob import BlobClient

    from .stack import LocalStack

    overrides = {"MONITOR_SCHEDULE": "*/2 * * * * *", "KEEPER_SCHEDULE": "0 */5 * * * *"}
    sim_args = ["--file-processing-seconds", "1", "--job-pending-seconds", "2", "--job-running-seconds", "6"]
    deploy_to: dict[str, str] = {}
    if accounts == 2:
        first, second = POOL
        sim_args += ["--accounts", json.dumps(POOL)]
        overrides.update({
            "AZURE_OPENAI_ACCOUNT": first["name"], "AZURE_SUBSCRIPTION_ID": first["subscription"],
            "AZURE_RESOURCE_GROUP": first["resource_group"],
            "AZURE_OPENAI_ACCOUNTS": json.dumps([
                {"name": first["name"], "region": first["region"], "training_types": ["Standard"]},
                {"name": second["name"], "endpoint": "{simulator}/accounts/" + second["name"],
                 "region": second["region"], "subscription": second["subscription"],
                 "resource_group": second["resource_group"], "training_types": ["GlobalStandard"]}])})
        deploy_to = {"account": second["name"], "sku": "GlobalStandard"}
    elif accounts != 1:
        raise DemoFailed("--accounts is 1 or 2")
    with tempfile.TemporaryDirectory(prefix="ft-demo-") as state_dir, \
            LocalStack(http_port=0, sim_args=sim_args, env_overrides=overrides, state_dir=Path(state_dir)) as stack:
        api = stack.runner.base_url
        stack.runner.blob_poll_interval = 0.5
        _say(f"local stack up: API {api}, simulator {stack.simulator.url}")
        container = stack.env["DATASETS_CONTAINER"]
        blob = BlobClient.from_connection_string(stack.env["AzureWebJobsStorage"], container, DATASET)
        blob.upload_blob(SAMPLE.read_bytes(), overwrite=True)
        _say(f"dropped {SAMPLE.name} ({SAMPLE.stat().st_size} bytes) into {container}/{DATASET}")

        http = httpx.Client(timeout=30)

        def dataset_state():
            r = http.get(f"{api}/datasets/{DATASET}")
            if r.status_code == 404:
                return False, "waiting for intake"
            body = r.json()
            if body.get("status") in ("rejected", "upload_failed"):
                raise DemoFailed(f"dataset {body['status']}: {json.dumps(body.get('errors') or body.get('error'))}")
            return (body if body.get("status") == "ready" else False), body.get("status")

        dataset = _wait("dataset", dataset_state)

        r = http.post(f"{api}/jobs", headers={"Idempotency-Key": "demo-1"}, json={
            "training_dataset": DATASET, "suffix": "demo",
            "deployment": {"sku": "Standard", "capacity": 1, "keep_alive": "redeploy", **deploy_to}})
        if r.status_code != 201:
            raise DemoFailed(f"POST /api/jobs answered {r.status_code}: {r.text}")
        job = r.json()
        _say(f"job {job['id']} created (Azure OpenAI job {job.get('openai_job_id')})")

        def job_state():
            body = http.get(f"{api}/jobs/{job['id']}").json()
            status = body.get("status")
            if status in ("failed", "cancelled", "gate_failed"):
                raise DemoFailed(f"job {status}: {json.dumps(body.get('error'))}")
            dep = body.get("deployment") or {}
            state = f"{status} / deployment {dep.get('state') or '-'}"
            return (body if status == "deployed" and dep.get("state") == "active" else False), state

        job = _wait("job", job_state)
        deployment = job["deployment"]
        if deploy_to:  # where it runs, and the training resource it names as the model's source
            deployment = {**deployment, **http.get(f"{api}/deployments/{deployment['name']}").json()}
        from shared.context import get_context

        ctx = get_context()
        clients = ctx.clients
        if deploy_to:  # inference at the account that hosts it, through the service's own clients
            clients = clients.for_account(next(a for a in ctx.settings.accounts if a.name == deploy_to["account"]))
        client = clients.openai
        answer = client.chat.completions.create(
            model=deployment["name"], max_tokens=20,
            messages=[{"role": "user", "content": "Where is my order CO-10000?"}])
        text = answer.choices[0].message.content
        _say(f"deployment {deployment['name']} answered: {text!r}")
        return {
            "dataset": {"name": dataset["name"], "status": dataset["status"], "file_id": dataset.get("file_id")},
            "job": {"id": job["id"], "status": job["status"], "fine_tuned_model": job.get("fine_tuned_model"),
                    **({"account": job.get("account")} if deploy_to else {})},
            "deployment": {"name": deployment["name"],
                           **({"account": deployment.get("account"), "source": deployment.get("source")}
                              if deploy_to else {}),
                           "provisioning_state": deployment.get("provisioning_state", "Succeeded"),
                           "answered": bool(text)},
        }


def main(accounts: int = 1) -> int:
    try:
        result = run_demo(accounts)
    except DemoFailed as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # the reason, not a bare traceback, is what a person needs first
        print(f"demo FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise
    result["seconds"] = round(time.monotonic() - _T0, 1)
    print(json.dumps(result), flush=True)
    return 0
