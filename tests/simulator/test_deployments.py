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
    admin.configure(max_finetuned_deployments=2)
    model = fine_tuned_model(oai, admin)
    deploy(cs, "ft-1", model)
    deploy(cs, "ft-2", model)
    deploy(cs, "base-1", BASE)  # base models do not count
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "ft-3", model)
    assert err.value.error.code == "InsufficientQuota"
    deploy(cs, "ft-2", model)  # updating an existing one is not a new deployment


def test_one_deployment_per_fine_tuned_model_when_configured(oai, cs, admin):
    model = fine_tuned_model(oai, admin)
    deploy(cs, "first", model)
    deploy(cs, "second", model)  # allowed by default
    admin.configure(allow_duplicate_model_deployments=False)
    with pytest.raises(HttpResponseError) as err:
        deploy(cs, "third", model)
    assert err.value.status_code == 409 and "already deployed" in err.value.error.message


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
