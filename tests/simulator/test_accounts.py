"""Several Azure OpenAI accounts: each its own data plane, region, quotas; cross-account deployment with
``properties.model.source`` and the token rules ARM applies to it (accounts.py)."""
from __future__ import annotations

import ssl

import httpx2
import openai
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from openai import AzureOpenAI

from devstack.simulator import StaticTokenCredential

from .conftest import API_VERSION, ARM_API_VERSION, BASE, RG, SUB, chat_jsonl, deployment_body, upload

SUB_B = "99999999-8888-7777-6666-555555555555"
RG_B = "rg-other"
# A: Sweden Central (trains most models, Standard), B: East US 2 in another subscription (gpt-4o-mini only
# with Global training there; fine-tuned gpt-4o-mini deploys there as GlobalStandard, not Standard).
ACCOUNTS = [{"name": "aoai-swc", "subscription": SUB, "resource_group": RG, "region": "swedencentral"},
            {"name": "aoai-eus2", "subscription": SUB_B, "resource_group": RG_B, "region": "East US 2"}]
ID_A = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/aoai-swc"
ID_B = f"/subscriptions/{SUB_B}/resourceGroups/{RG_B}/providers/Microsoft.CognitiveServices/accounts/aoai-eus2"


@pytest.fixture
def pool(admin):
    admin.configure(accounts=ACCOUNTS)
    return admin


def _oai(sim, conformance, account: str | None) -> AzureOpenAI:
    http = httpx2.Client(verify=ssl.create_default_context(cafile=str(sim.ca_path)), timeout=30,
                         event_hooks={"response": [conformance.httpx_hook()]})
    return AzureOpenAI(azure_endpoint=sim.endpoint(account), api_key="k", api_version=API_VERSION,
                       http_client=http, timeout=30, max_retries=0)


@pytest.fixture
def oai_a(sim, pool, conformance):
    client = _oai(sim, conformance, "aoai-swc")
    yield client
    client.close()


@pytest.fixture
def oai_b(sim, pool, conformance):
    client = _oai(sim, conformance, "aoai-eus2")
    yield client
    client.close()


def _cs(sim, conformance, sub: str, token: str = "test-token") -> CognitiveServicesManagementClient:
    return CognitiveServicesManagementClient(
        StaticTokenCredential(token), sub, base_url=sim.url, connection_verify=str(sim.ca_path),
        api_version=ARM_API_VERSION, raw_response_hook=conformance.azure_hook())


def _finished(oai, admin, model=BASE, **kwargs):
    training = upload(oai, chat_jsonl(12))
    job = oai.fine_tuning.jobs.create(model=model, training_file=training.id, **kwargs)
    admin.advance(60)
    job = oai.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job
    return job


def _with_source(model: str, source: str, sku: str = "Standard"):
    body = deployment_body(model, sku)
    body.properties.model.source = source
    return body


# --------------------------------------------------------------------------- default mode


def test_default_mode_is_one_resource_every_account_name_reaches(sim, admin, raw):
    info = admin.accounts()
    assert info["configured"] is False and info["accounts"] == []
    headers = {"Authorization": "Bearer t"}
    for name in ("aoai-sim", "anything-else"):
        got = raw.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/"
                      f"{name}", params={"api-version": ARM_API_VERSION}, headers=headers)
        assert got.status_code == 200 and got.json()["location"] == "swedencentral"
        assert got.json()["properties"]["endpoint"] == str(raw.base_url).rstrip("/") + "/"


def test_default_mode_prefixed_and_unprefixed_paths_share_one_data_plane(sim, admin, conformance, oai):
    prefixed = _oai(sim, conformance, "whatever")
    try:
        f = upload(oai, chat_jsonl(10))
        assert prefixed.files.retrieve(f.id).id == f.id
    finally:
        prefixed.close()


# --------------------------------------------------------------------------- data planes


def test_each_account_has_its_own_files_and_jobs(sim, oai_a, oai_b, pool, conformance):
    fa = upload(oai_a, chat_jsonl(10))
    fb = upload(oai_b, chat_jsonl(11))
    assert [f.id for f in oai_a.files.list()] == [fa.id]
    assert [f.id for f in oai_b.files.list()] == [fb.id]
    with pytest.raises(openai.NotFoundError):
        oai_b.files.retrieve(fa.id)
    # A job in B cannot use A's file: files belong to a resource.
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        oai_b.fine_tuning.jobs.create(model=BASE, training_file=fa.id, extra_body={"trainingType": "GlobalStandard"})
    job = oai_a.fine_tuning.jobs.create(model=BASE, training_file=fa.id)
    assert [j.id for j in oai_a.fine_tuning.jobs.list()] == [job.id]
    assert list(oai_b.fine_tuning.jobs.list()) == []
    with pytest.raises(openai.NotFoundError):
        oai_b.fine_tuning.jobs.retrieve(job.id)
    # The unprefixed data plane is the first account's.
    default = _oai(sim, conformance, None)
    try:
        assert default.fine_tuning.jobs.retrieve(job.id).id == job.id
    finally:
        default.close()


def test_an_account_that_is_not_served_is_not_found(sim, pool, conformance, raw):
    ghost = _oai(sim, conformance, "aoai-ghost")
    try:
        with pytest.raises(openai.NotFoundError, match="aoai-swc, aoai-eus2"):
            ghost.files.list()
    finally:
        ghost.close()
    headers = {"Authorization": "Bearer t"}
    arm = "/providers/Microsoft.CognitiveServices/accounts"
    cases = {f"/subscriptions/{SUB}/resourceGroups/{RG}{arm}/aoai-ghost": "ResourceNotFound",
             f"/subscriptions/{SUB}/resourceGroups/rg-nope{arm}/aoai-swc": "ResourceGroupNotFound",
             f"/subscriptions/12345678-0000-0000-0000-000000000000/resourceGroups/{RG}{arm}/aoai-swc":
                 "SubscriptionNotFound",
             f"/subscriptions/{SUB}/resourceGroups/{RG}{arm}/aoai-eus2": "ResourceNotFound"}  # B is in SUB_B
    for path, code in cases.items():
        got = raw.get(path + "/deployments", params={"api-version": ARM_API_VERSION}, headers=headers)
        assert (got.status_code, got.json()["error"]["code"]) == (404, code), path


def test_arm_reports_each_accounts_region_and_own_endpoint(sim, pool, raw):
    got = raw.get(ID_B, params={"api-version": ARM_API_VERSION}, headers={"Authorization": "Bearer t"}).json()
    assert got["id"] == ID_B and got["location"] == "eastus2"
    assert got["properties"]["endpoint"] == f"{sim.url}/accounts/aoai-eus2/"
    listed = {a["name"]: a for a in pool.accounts()["accounts"]}
    assert listed["aoai-swc"]["default"] and not listed["aoai-eus2"]["default"]
    assert listed["aoai-eus2"]["region"] == "eastus2"


# --------------------------------------------------------------------------- regions


def test_a_region_trains_only_the_models_and_training_types_it_offers(oai_a, oai_b, pool):
    fb = upload(oai_b, chat_jsonl(10))
    # gpt-4o-mini: no Standard training in East US 2, Global training yes.
    with pytest.raises(openai.BadRequestError, match=r"in this region \(eastus2\).*GlobalStandard"):
        oai_b.fine_tuning.jobs.create(model=BASE, training_file=fb.id, extra_body={"trainingType": "Standard"})
    assert oai_b.fine_tuning.jobs.create(model=BASE, training_file=fb.id,
                                         extra_body={"trainingType": "GlobalStandard"}).status == "pending"
    # gpt-4 trains in Sweden Central but not at all in East US 2.
    with pytest.raises(openai.BadRequestError, match=r"does not support fine-tuning in this region \(eastus2\)"):
        oai_b.fine_tuning.jobs.create(model="gpt-4-0613", training_file=fb.id)
    fa = upload(oai_a, chat_jsonl(10))
    assert oai_a.fine_tuning.jobs.create(model="gpt-4-0613", training_file=fa.id).status == "pending"
    # The models list says so too.
    caps = {m.id: m.capabilities["fine_tune"] for m in oai_b.models.list() if m.id == "gpt-4-0613"}
    assert caps == {"gpt-4-0613": False}
    assert pool.region("East US 2")["train"][BASE] == ["GlobalStandard", "developerTier"]


def test_region_availability_overrides_the_table(oai_b, pool):
    pool.configure(region_availability={"eastus2": {"train": {BASE: ["Standard"]}}})
    fb = upload(oai_b, chat_jsonl(10))
    assert oai_b.fine_tuning.jobs.create(model=BASE, training_file=fb.id,
                                         extra_body={"trainingType": "Standard"}).status == "pending"
    with pytest.raises(openai.BadRequestError, match="trainingType Standard"):
        oai_b.fine_tuning.jobs.create(model=BASE, training_file=fb.id, extra_body={"trainingType": "GlobalStandard"})


def test_three_running_jobs_is_a_per_account_limit(oai_a, oai_b, pool):
    pool.configure(job_running_seconds=1000)
    fa, fb = upload(oai_a, chat_jsonl(10)), upload(oai_b, chat_jsonl(10))
    a_jobs = [oai_a.fine_tuning.jobs.create(model=BASE, training_file=fa.id).id for _ in range(4)]
    b_jobs = [oai_b.fine_tuning.jobs.create(model=BASE, training_file=fb.id,
                                            extra_body={"trainingType": "GlobalStandard"}).id for _ in range(2)]
    pool.advance(30)
    a = [oai_a.fine_tuning.jobs.retrieve(j).status for j in a_jobs]
    b = [oai_b.fine_tuning.jobs.retrieve(j).status for j in b_jobs]
    assert a == ["running", "running", "running", "pending"]
    assert b == ["running", "running"]


def test_the_file_quota_is_per_account(oai_a, oai_b, pool):
    pool.configure(max_files=2)
    upload(oai_a, chat_jsonl(10)), upload(oai_a, chat_jsonl(11))
    with pytest.raises(openai.BadRequestError, match="maximum is 2"):
        upload(oai_a, chat_jsonl(12))
    assert upload(oai_b, chat_jsonl(12)).status == "processed"


# --------------------------------------------------------------------------- deployments across accounts


def test_a_fine_tuned_model_deploys_elsewhere_only_with_its_source(sim, oai_a, oai_b, pool, conformance):
    model = _finished(oai_a, pool).fine_tuned_model
    cs_b = _cs(sim, conformance, SUB_B)
    try:
        with pytest.raises(HttpResponseError) as refused:
            cs_b.deployments.begin_create_or_update(RG_B, "aoai-eus2", "ft", deployment_body(model, "GlobalStandard"))
        assert refused.value.error.code == "DeploymentModelNotSupported"
        assert ID_A in refused.value.message and "properties.model.source" in refused.value.message
        # Fine-tuned gpt-4o-mini deploys in East US 2 as GlobalStandard, not Standard.
        with pytest.raises(HttpResponseError, match="not supported in this region 'eastus2'"):
            cs_b.deployments.begin_create_or_update(RG_B, "aoai-eus2", "ft", _with_source(model, ID_A, "Standard"))
        done = cs_b.deployments.begin_create_or_update(
            RG_B, "aoai-eus2", "ft", _with_source(model, ID_A, "GlobalStandard")).result()
        assert done.properties.provisioning_state == "Succeeded"
        assert done.properties.model.source == ID_A
        assert [d.name for d in cs_b.deployments.list(RG_B, "aoai-eus2")] == ["ft"]
    finally:
        cs_b.close()
    cs_a = _cs(sim, conformance, SUB)
    try:
        assert list(cs_a.deployments.list(RG, "aoai-swc")) == []
    finally:
        cs_a.close()
    # Inference reaches it through B's data plane only.
    pool.advance(600)
    reply = oai_b.chat.completions.create(model="ft", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices
    with pytest.raises(openai.NotFoundError):
        oai_a.chat.completions.create(model="ft", messages=[{"role": "user", "content": "hi"}])


def test_a_source_that_is_not_a_resource_id_or_not_there_is_refused(sim, oai_a, pool, conformance):
    model = _finished(oai_a, pool).fine_tuned_model
    cs_b = _cs(sim, conformance, SUB_B)
    try:
        with pytest.raises(HttpResponseError) as bad:
            cs_b.deployments.begin_create_or_update(RG_B, "aoai-eus2", "ft", _with_source(model, "aoai-swc"))
        assert bad.value.error.code == "LinkedInvalidPropertyId"
        with pytest.raises(HttpResponseError) as missing:
            cs_b.deployments.begin_create_or_update(RG_B, "aoai-eus2", "ft",
                                                    _with_source(model, ID_A.replace("aoai-swc", "aoai-gone")))
        assert missing.value.status_code == 404 and "properties.model.source" in missing.value.message
    finally:
        cs_b.close()


def test_a_token_that_does_not_reach_the_source_subscription_is_refused_as_azure_does(sim, oai_a, pool,
                                                                                        conformance):
    model = _finished(oai_a, pool).fine_tuned_model
    pool.configure(token_subscriptions={"b-only": [SUB_B], "a-only": [SUB]})
    cs_b = _cs(sim, conformance, SUB_B, token="b-only")
    try:
        with pytest.raises(HttpResponseError) as refused:
            cs_b.deployments.begin_create_or_update(RG_B, "aoai-eus2", "ft",
                                                    _with_source(model, ID_A, "GlobalStandard"))
        assert refused.value.status_code == 403 and refused.value.error.code == "LinkedAuthorizationFailed"
        assert ID_A in refused.value.message and "b-only" not in refused.value.message  # the token is never echoed
        assert list(cs_b.deployments.list(RG_B, "aoai-eus2")) == []
    finally:
        cs_b.close()
    # Calls in a subscription the token does not reach at all: AuthorizationFailed.
    cs_x = _cs(sim, conformance, SUB, token="b-only")
    try:
        with pytest.raises(HttpResponseError) as denied:
            list(cs_x.deployments.list(RG, "aoai-swc"))
        assert denied.value.status_code == 403 and denied.value.error.code == "AuthorizationFailed"
    finally:
        cs_x.close()
    # An auxiliary token that reaches A's subscription (ARM's x-ms-authorization-auxiliary) makes it work.
    raw = httpx2.Client(base_url=sim.url, verify=ssl.create_default_context(cafile=str(sim.ca_path)), timeout=30)
    try:
        body = {"sku": {"name": "GlobalStandard", "capacity": 1},
                "properties": {"model": {"format": "OpenAI", "name": model, "version": "1", "source": ID_A}}}
        put = raw.put(f"{ID_B}/deployments/ft", params={"api-version": ARM_API_VERSION}, json=body,
                      headers={"Authorization": "Bearer b-only", "x-ms-authorization-auxiliary": "Bearer a-only"})
        assert put.status_code == 201, put.text
    finally:
        raw.close()


def test_metrics_need_a_token_that_reaches_the_subscription(sim, pool, raw):
    pool.configure(token_subscriptions={"b-only": [SUB_B]})
    path = f"{ID_A}/providers/Microsoft.Insights/metrics"
    params = {"api-version": "2023-10-01", "metricnames": "AzureOpenAIRequests", "timespan": "PT1H"}
    denied = raw.get(path, params=params, headers={"Authorization": "Bearer b-only"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "AuthorizationFailed"
    got = raw.get(f"{ID_B}/providers/Microsoft.Insights/metrics", params=params,
                  headers={"Authorization": "Bearer b-only"})
    assert got.status_code == 200 and got.json()["resourceregion"] == "eastus2"


def test_ten_fine_tuned_deployments_is_a_per_account_limit(sim, oai_a, pool, conformance):
    pool.configure(max_finetuned_deployments=1, allow_duplicate_model_deployments=True)
    model = _finished(oai_a, pool).fine_tuned_model
    cs_a, cs_b = _cs(sim, conformance, SUB), _cs(sim, conformance, SUB_B)
    try:
        cs_a.deployments.begin_create_or_update(RG, "aoai-swc", "one", deployment_body(model)).result()
        with pytest.raises(HttpResponseError, match="InsufficientQuota|quota"):
            cs_a.deployments.begin_create_or_update(RG, "aoai-swc", "two", deployment_body(model)).result()
        done = cs_b.deployments.begin_create_or_update(RG_B, "aoai-eus2", "two",
                                                       _with_source(model, ID_A, "GlobalStandard")).result()
        assert done.properties.provisioning_state == "Succeeded"
    finally:
        cs_a.close(), cs_b.close()


def test_bad_account_config_is_refused_with_the_field_named(pool):
    with pytest.raises(Exception, match=r"accounts\[1\].*used twice"):
        pool.configure(accounts=[ACCOUNTS[0], ACCOUNTS[0]])
    with pytest.raises(Exception, match=r"accounts\[0\].*subscription is required"):
        pool.configure(accounts=[{"name": "x", "resource_group": "rg"}])
    with pytest.raises(Exception, match=r"region_availability.*unknown base model"):
        pool.configure(region_availability={"eastus2": {"train": {"nope": ["Standard"]}}})


def test_reset_returns_to_the_default_mode(sim, pool, raw):
    pool.reset()
    assert pool.accounts()["configured"] is False
    got = raw.get(f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/"
                  "aoai-ghost/deployments", params={"api-version": ARM_API_VERSION},
                  headers={"Authorization": "Bearer t"})
    assert got.status_code == 200
