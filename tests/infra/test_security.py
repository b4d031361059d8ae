"""Secure by default, asserted on the templates themselves (checkov covers some of
this too; these are the properties the service relies on, stated once)."""
from __future__ import annotations

import re

import pytest

from .conftest import REPO
from .helpers import config_of, module_config, one_resource, resolve, resources_of_type

# Built-in role definition ids (the same for every tenant) and their names.
ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": "Storage Blob Delegator",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "a001fd3d-188f-4b5d-821b-7da978bf7442": "Cognitive Services OpenAI Contributor",
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": "Cognitive Services OpenAI User",
    "43d0d8ad-25c7-4714-9337-8ba259a9fe05": "Monitoring Reader",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",
}
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68": "Cognitive Services Contributor",
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _role_assignments(trees):
    """(file, symbol, role id) of every role assignment."""
    found = []
    for path, symbol, resource in resources_of_type(trees, "Microsoft.Authorization/roleAssignments"):
        role = config_of(resource)["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        found.append((path, symbol, resolve(role, trees[path])))
    return found


def test_storage_account_is_keyless_and_encrypted_in_transit(trees):
    _, account = one_resource(trees, "Microsoft.Storage/storageAccounts")
    props = config_of(account)["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["allowBlobPublicAccess"] is False
    assert props["defaultToOAuthAuthentication"] is True


def test_blobs_and_containers_have_soft_delete(trees):
    path, service = one_resource(trees, "Microsoft.Storage/storageAccounts/blobServices")
    props = config_of(service)["properties"]
    for policy in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
        assert props[policy]["enabled"] is True
        days = resolve(props[policy]["days"], trees[path])
        assert isinstance(days, int) and days >= 1
    _, containers = one_resource(trees, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert config_of(containers)["properties"]["publicAccess"] == "None"


def test_openai_account_is_keyless(trees):
    path, account = one_resource(trees, "Microsoft.CognitiveServices/accounts")
    config = config_of(account)
    assert config["properties"]["disableLocalAuth"] is True
    # A custom subdomain is what makes Entra ID tokens usable on the data plane.
    assert config["properties"]["customSubDomainName"] == "name"
    kind_param = trees[path]["parameters"][config["kind"]]
    allowed = next(d["argument"] for d in kind_param["decorators"] if d["type"] == "allowed")
    assert set(allowed) == {"OpenAI", "AIServices"}


def test_a_new_openai_account_is_created_only_when_none_is_given(main_tree):
    module = main_tree["modules"]["openAi"]
    assert module["config"]["condition"] == "createOpenAi"
    assert main_tree["variables"]["createOpenAi"]["value"] == {
        "function": {"type": "empty", "parameters": {"item_to_test": "openAiAccountName"}}}


def test_application_insights_takes_entra_id_telemetry_only(trees):
    _, component = one_resource(trees, "Microsoft.Insights/components")
    props = config_of(component)["properties"]
    assert props["DisableLocalAuth"] is True
    assert props["WorkspaceResourceId"]  # workspace-based, with a Log Analytics workspace
    one_resource(trees, "Microsoft.OperationalInsights/workspaces")
    host = trees["infra/modules/functionapp.bicep"]["variables"]["hostSettings"]["value"]
    assert host["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_function_app_is_flex_consumption_python_311_with_a_user_assigned_identity(trees):
    _, plan = one_resource(trees, "Microsoft.Web/serverfarms")
    assert config_of(plan)["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    _, site = one_resource(trees, "Microsoft.Web/sites")
    config = config_of(site)
    assert config["kind"] == "functionapp,linux"
    assert config["identity"]["type"] == "UserAssigned"
    props = config["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    app_config = props["functionAppConfig"]
    assert app_config["runtime"] == {"name": "python", "version": "3.11"}
    assert app_config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"


def test_basic_auth_publishing_is_off(trees):
    policies = resources_of_type(trees, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {config_of(r)["name"]: config_of(r)["properties"]["allow"] for _, _, r in policies} == \
        {"ftp": False, "scm": False}


def test_every_role_is_a_known_narrow_built_in_role(trees):
    roles = _role_assignments(trees)
    assert roles, "no role assignments found"
    for path, symbol, role in roles:
        assert role not in BROAD_ROLES, f"{path}: {symbol} grants {BROAD_ROLES[role]}"
        assert role in ROLE_NAMES, f"{path}: {symbol} grants unknown role {role!r}"


def test_the_app_gets_exactly_the_roles_it_needs(main_tree, trees):
    storage_roles = {ROLE_NAMES[r] for p, _, r in _role_assignments(trees) if p.endswith("storage-access.bicep")}
    assert storage_roles == {"Storage Blob Data Owner", "Storage Queue Data Contributor",
                             "Storage Table Data Contributor", "Storage Blob Delegator"}
    app = module_config(main_tree["modules"]["appStorageAccess"])["params"]
    assert app["principalId"]["operator"]["operands"]["operand_1"] == "identity"
    assert app["grantBlobDelegator"] is True
    openai_roles = {(s, ROLE_NAMES[r]) for p, s, r in _role_assignments(trees) if p.endswith("openai-access.bicep")}
    assert openai_roles == {("appOpenAIContributor", "Cognitive Services OpenAI Contributor"),
                            ("appMonitoringReader", "Monitoring Reader"),
                            ("userOpenAIUser", "Cognitive Services OpenAI User")}


def test_the_deploying_user_gets_the_storage_data_roles_when_azd_names_them(main_tree):
    module = main_tree["modules"]["userStorageAccess"]
    assert module["config"]["condition"] == {"operator": {"type": "not", "operands": {
        "bool_value": {"function": {"type": "empty", "parameters": {"item_to_test": "principalId"}}}}}}
    params = module_config(module)["params"]
    assert params["principalId"] == "principalId"
    assert params["grantBlobDelegator"] is False


@pytest.mark.parametrize("path", sorted({
    "infra/modules/storage-access.bicep", "infra/modules/openai-access.bicep",
    "infra/modules/monitoring.bicep", "infra/modules/eventgrid.bicep", "infra/modules/notifications.bicep"}))
def test_every_role_assignment_says_why_and_every_role_id_is_named(path):
    lines = (REPO / path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"resource \w+ 'Microsoft\.Authorization/roleAssignments@", line):
            comment = []
            k = number - 1
            while k >= 0 and lines[k].startswith("//"):
                comment.insert(0, lines[k])
                k -= 1
            assert comment and comment[0].startswith("// Why:"), \
                f"{path}:{number + 1}: a role assignment needs a `// Why:` comment above it"
        for guid in GUID.findall(line):
            name = ROLE_NAMES.get(guid)
            assert name and name in line, f"{path}:{number + 1}: role id {guid} needs its role name beside it"
