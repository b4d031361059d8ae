"""ARM deployments through the real azure-mgmt-cognitiveservices SDK and its LRO pollers."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .conftest import ACCOUNT, ARM_API_VERSION, BASE, RG, SUB, deploy, deployment_body, fine_tuned_model

DEPLOYMENTS = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{ACCOUNT}/deployments"


def test_create_is_a_long_running_operation_the_poller_follows(oai, cs, admin, raw):
    model = fine_tuned_model(oai, admin)
    since = admin.last_seq()
    result = deploy(cs, "ft-support", model)
    assert result.properties.provisioning_state == "Succeeded"
    assert result.name == "ft-support" and result.sku.name == "Standard" and result.sku.capacity == 1
    assert result.properties.model.name == model
    assert result.system_data.created_at is not None

    log = admin.requests(since=since)
    assert [(r["method"], r["status"]) for r in log][0] == ("PUT", 201)
    polls = [r for r in log if "/operationResults/" in r["path"]]
    assert polls and all(r["method"] == "GET" and r["status"] == 200 for r in polls)
    assert log[-1]["method"] == "GET" and log[-1]["path"] == f"{DEPLOYMENTS}/ft-support"  # the final GET

    got = cs.deployments.get(RG, ACCOUNT, "ft-support")
    assert got.properties.provisioning_state == "Succeeded"
    assert [d.name for d in cs.deployments.list(RG, ACCOUNT)] == ["ft-support"]


def test_lro_headers(oai, cs, admin, raw):
    admin.configure(lro_retry_after=1)
    headers = {"Authorization": "Bearer anything"}
    body = {"sku": {"name": "GlobalStandard", "capacity": 2},
            "properties": {"model": {"format": "OpenAI", "name": BASE, "version": "2024-07-18"}}}
    put = raw.put(f"{DEPLOYMENTS}/base-raw", params={"api-version": ARM_API_VERSION}, json=body, headers=headers)
    assert put.status_code == 201 and put.json()["properties"]["provisioningState"] == "Creating"
    assert put.headers["Retry-After"] == "1"
    status_url = put.headers["Azure-AsyncOperation"]
    assert status_url.startswith(raw.base_url.scheme + "://") and "/operationResults/" in status_url
    status = raw.get(status_url, headers=headers)
    assert status.json()["status"] == "InProgress" and status.headers["Retry-After"] == "1"
    admin.advance(5)
    assert raw.get(status_url, headers=headers).json()["status"] == "Succeeded"

    admin.configure(lro_retry_after=0)
    delete = raw.delete(f"{DEPLOYMENTS}/base-raw", params={"api-version": ARM_API_VERSION}, headers=headers)
    assert delete.status_code == 202 and delete.headers["Retry-After"] == "0"
    assert delete.headers["Azure-AsyncOperation"] and delete.headers["Location"]
    admin.advance(5)
    gone = raw.delete(f"{DEPLOYMENTS}/base-raw", params={"api-version": ARM_API_VERSION}, headers=headers)
    assert gone.status_code == 204


def test_bearer_token_and_api_version_are_required(cs, admin, raw):
    no_token = raw.get(DEPLOYMENTS, params={"api-version": ARM_API_VERSION})
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "AuthenticationFailed"
    no_version = raw.get(DEPLOYMENTS, headers={"Authorization": "Bearer x"})
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"


def test_delete_through_the_sdk(oai, cs, admin):
    deploy(cs, "to-delete", BASE)
    cs.deployments.begin_delete(RG, ACCOUNT, "to-delete").result()
    with pytest.raises(ResourceNotFoundError):
        cs.deployments.get(RG, ACCOUNT, "to-delete")
    cs.deployments.begin_delete(RG, ACCOUNT, "to-delete").result()  # nothing to delete: 204


@pytest.mark.parametrize("sku", ["Standard", "GlobalStandard", "DeveloperTier", "ProvisionedManaged"])
def test_skus(oai, cs, admin, sku):
    model = fine_tuned_model(oai, admin)
    assert deploy(cs, f"sku-{sku.lower()}", model, sku=sku).sku.name == sku


def test_unknown_sku_and_unknown_model_are_refused(cs, admin):
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "bad-sku", BASE, sku="Bogus")
    assert err.value.status_code == 400 and err.value.error.code == "InvalidResourceProperties"
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "bad-model", f"{BASE}.ft-{'0' * 32}")
    assert err.value.status_code == 400 and err.value.error.code == "DeploymentModelNotSupported"
    assert list(cs.deployments.list(RG, ACCOUNT)) == []


def test_cap_on_fine_tuned_deployments(oai, cs, admin):
    admin.configure(max_finetuned_deployments=2, allow_duplicate_model_deployments=True)
    model = fine_tuned_model(oai, admin)
    deploy(cs, "ft-1", model)
    deploy(cs, "ft-2", model)
    deploy(cs, "base-1", BASE)  # base models do not count
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "ft-3", model)
    assert err.value.error.code == "InsufficientQuota"
    deploy(cs, "ft-2", model)  # updating an existing one is not a new deployment


def test_one_deployment_per_fine_tuned_model_by_default(oai, cs, admin):
    assert admin.config()["allow_duplicate_model_deployments"] is False  # as Azure
    model = fine_tuned_model(oai, admin)
    deploy(cs, "first", model)
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "second", model)
    assert err.value.status_code == 409 and "already deployed as 'first'" in err.value.error.message
    assert [d.name for d in cs.deployments.list(RG, ACCOUNT)] == ["first"]
    assert deploy(cs, "first", model).properties.provisioning_state == "Succeeded"  # its own update is fine
    deploy(cs, "base-a", BASE)
    deploy(cs, "base-b", BASE)  # base models may be deployed any number of times
    admin.configure(allow_duplicate_model_deployments=True)
    assert deploy(cs, "second", model).properties.model.name == model


def test_injected_provisioning_failure(oai, cs, admin):
    model = fine_tuned_model(oai, admin)
    admin.inject_fault("deployment_failure")
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "doomed", model)
    assert err.value.error.code == "InsufficientQuota"
    assert cs.deployments.get(RG, ACCOUNT, "doomed").properties.provisioning_state == "Failed"
    assert deploy(cs, "doomed", model).properties.provisioning_state == "Succeeded"  # a retry works


def test_update_keeps_the_deployment(oai, cs, admin):
    created = deploy(cs, "upd", BASE)
    updated = cs.deployments.begin_create_or_update(RG, ACCOUNT, "upd", deployment_body(BASE, capacity=5)).result()
    assert updated.sku.capacity == 5 and updated.properties.provisioning_state == "Succeeded"
    assert updated.system_data.created_at == created.system_data.created_at
    log = admin.requests(method="PUT", path_regex="/deployments/upd$")
    assert [r["status"] for r in log] == [201, 200]


def test_retry_after_zero_with_a_zero_polling_interval(sim, admin, conformance):
    import time

    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

    from devstack.simulator import StaticTokenCredential

    admin.configure(lro_retry_after=0, deployment_create_seconds=0.3)
    client = CognitiveServicesManagementClient(StaticTokenCredential(), SUB, base_url=sim.url,
                                               connection_verify=str(sim.ca_path), api_version=ARM_API_VERSION,
                                               polling_interval=0, raw_response_hook=conformance.azure_hook())
    started = time.monotonic()
    assert deploy(client, "zero", BASE).properties.provisioning_state == "Succeeded"
    assert time.monotonic() - started < 5
    assert all(r["status"] == 200 for r in admin.requests(path_regex="/operationResults/"))
    client.close()


# --------------------------------------------------------------------------- model change, properties kept

HEADERS = {"Authorization": "Bearer t"}
V = {"api-version": ARM_API_VERSION}


def _body(model: str, **extra) -> dict:
    return {"sku": {"name": "Standard", "capacity": 1},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}, **extra}}


def test_a_put_that_changes_the_model_is_refused_by_default(oai, cs, admin, raw):
    assert admin.config()["deployment_model_change"] == "refuse"
    model = fine_tuned_model(oai, admin)
    deploy(cs, "swap", BASE)
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "swap", model)
    assert err.value.status_code == 400 and err.value.error.code == "CannotChangeDeploymentModel"
    assert "cannot be changed" in err.value.error.message and model in err.value.error.message
    kept = cs.deployments.get(RG, ACCOUNT, "swap")
    assert kept.properties.model.name == BASE and kept.properties.provisioning_state == "Succeeded"
    put = raw.put(f"{DEPLOYMENTS}/swap", params=V, headers=HEADERS, json=_body(model))
    assert put.status_code == 400 and put.json()["error"]["code"] == "CannotChangeDeploymentModel"
    # The dated and undated names of a base model are the same model.
    same = deployment_body("gpt-4o-mini", version="2024-07-18")
    assert cs.deployments.begin_create_or_update(RG, ACCOUNT, "swap", same).result().properties.model.name \
        == "gpt-4o-mini"


def test_a_put_that_changes_the_model_updates_in_place_when_configured(oai, cs, admin, raw):
    admin.configure(deployment_model_change="update", deployment_create_seconds=30)
    model = fine_tuned_model(oai, admin)
    first = raw.put(f"{DEPLOYMENTS}/swap", params=V, headers=HEADERS, json=_body(BASE))
    assert first.status_code == 201
    admin.advance(31)
    before = raw.get(f"{DEPLOYMENTS}/swap", params=V, headers=HEADERS).json()
    assert before["properties"]["provisioningState"] == "Succeeded"
    admin.advance(60)
    put = raw.put(f"{DEPLOYMENTS}/swap", params=V, headers=HEADERS, json=_body(model))
    assert put.status_code == 200 and put.json()["properties"]["provisioningState"] == "Updating"
    assert put.json()["properties"]["model"]["name"] == model
    assert raw.get(put.headers["Azure-AsyncOperation"], headers=HEADERS).json()["status"] == "InProgress"
    updating = raw.get(f"{DEPLOYMENTS}/swap", params=V, headers=HEADERS).json()
    assert updating["properties"]["provisioningState"] == "Updating"
    admin.advance(31)
    after = raw.get(f"{DEPLOYMENTS}/swap", params=V, headers=HEADERS).json()
    assert after["properties"]["provisioningState"] == "Succeeded"
    assert after["properties"]["model"] == {"format": "OpenAI", "name": model, "version": "1"}
    assert after["properties"]["capabilities"]["fineTuned"] == "true"
    assert after["systemData"]["createdAt"] == before["systemData"]["createdAt"]
    assert after["systemData"]["lastModifiedAt"] > before["systemData"]["lastModifiedAt"]
    reply = oai.chat.completions.create(model="swap", messages=[{"role": "user", "content": "hi"}])
    assert reply.model == model  # the same deployment serves the new model
    assert [r["status"] for r in admin.requests(method="PUT", path_regex="/deployments/swap$")] == [201, 200]


def test_a_put_with_the_same_model_updates_in_place(oai, cs, admin, raw):
    admin.configure(deployment_create_seconds=0)
    created = raw.put(f"{DEPLOYMENTS}/same", params=V, headers=HEADERS, json=_body(BASE)).json()
    admin.advance(5)
    changed = {"sku": {"name": "Standard", "capacity": 7}, "tags": {"team": "support"},
               "properties": {"model": {"format": "OpenAI", "name": BASE, "version": "1"},
                              "raiPolicyName": "Microsoft.Default", "versionUpgradeOption": "NoAutoUpgrade"}}
    put = raw.put(f"{DEPLOYMENTS}/same", params=V, headers=HEADERS, json=changed)
    assert put.status_code == 200 and put.json()["properties"]["provisioningState"] == "Updating"
    admin.advance(1)
    got = raw.get(f"{DEPLOYMENTS}/same", params=V, headers=HEADERS).json()
    assert got["properties"]["provisioningState"] == "Succeeded"
    assert got["sku"] == {"name": "Standard", "capacity": 7} and got["tags"] == {"team": "support"}
    assert got["properties"]["raiPolicyName"] == "Microsoft.Default"
    assert got["properties"]["versionUpgradeOption"] == "NoAutoUpgrade"
    assert got["systemData"]["createdAt"] == created["systemData"]["createdAt"]
    # A PUT replaces the resource: what it leaves out is gone or back to its default.
    raw.put(f"{DEPLOYMENTS}/same", params=V, headers=HEADERS, json=_body(BASE))
    again = raw.get(f"{DEPLOYMENTS}/same", params=V, headers=HEADERS).json()
    assert "tags" not in again and "versionUpgradeOption" not in again["properties"]
    assert again["properties"]["raiPolicyName"] == "Microsoft.DefaultV2" and again["sku"]["capacity"] == 1


def test_a_deployment_keeps_and_returns_what_the_put_sent(oai, cs, admin, raw):
    admin.configure(deployment_create_seconds=0)
    model = fine_tuned_model(oai, admin)
    source = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{ACCOUNT}"
    sent = {"sku": {"name": "GlobalStandard", "capacity": 3},
            "tags": {"managed-by": "ft-autopilot", "ft-autopilot-job": "ftjob-1"},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": "1", "source": source},
                           "raiPolicyName": "Microsoft.Default", "versionUpgradeOption": "NoAutoUpgrade",
                           # read-only in the description: computed by the service, whatever a PUT says
                           "provisioningState": "Succeeded", "rateLimits": [{"key": "request", "count": 1e9}],
                           "capabilities": {"everything": "true"}, "callRateLimit": {"count": 1e9}},
            "id": "/somewhere/else", "name": "other-name", "systemData": {"createdBy": "someone"},
            "etag": '"x"', "notInTheDescription": True}
    put = raw.put(f"{DEPLOYMENTS}/kept", params=V, headers=HEADERS, json=sent)
    assert put.status_code == 201 and put.json()["properties"]["provisioningState"] == "Creating"
    admin.advance(1)
    got = raw.get(f"{DEPLOYMENTS}/kept", params=V, headers=HEADERS).json()
    [listed] = raw.get(DEPLOYMENTS, params=V, headers=HEADERS).json()["value"]
    for d in (got, listed):
        assert d["sku"] == sent["sku"] and d["tags"] == sent["tags"]
        assert d["properties"]["model"] == sent["properties"]["model"]
        assert d["properties"]["raiPolicyName"] == "Microsoft.Default"
        assert d["properties"]["versionUpgradeOption"] == "NoAutoUpgrade"
        assert d["name"] == "kept" and d["id"].endswith("/deployments/kept") and d["etag"] != '"x"'
        assert d["systemData"]["createdBy"] != "someone" and "notInTheDescription" not in d
        assert d["properties"]["capabilities"] == {"chatCompletion": "true", "fineTuned": "true"}
        assert {r["key"]: r["count"] for r in d["properties"]["rateLimits"]} == {"request": 3, "token": 3000}
        assert "callRateLimit" not in d["properties"]
    sdk = cs.deployments.get(RG, ACCOUNT, "kept")  # the SDK reads the same (conformance-checked too)
    assert sdk.sku.capacity == 3 and sdk.properties.model.source == source and sdk.tags == sent["tags"]
    assert sdk.properties.version_upgrade_option == "NoAutoUpgrade"


def test_deployment_model_change_takes_refuse_or_update(admin):
    from devstack.simulator.process import AdminError

    assert admin.configure(deployment_model_change="Update")["deployment_model_change"] == "update"
    with pytest.raises(AdminError) as err:
        admin.configure(deployment_model_change="replace")
    assert err.value.status == 400 and "refuse, update" in err.value.body
