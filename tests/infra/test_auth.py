"""App Service authentication in front of the app (infra/modules/auth.bicep): Entra ID
sign-in that lets the function-key automation through (the app enforces the roles,
shared/api/auth.py), deployed when an app registration is named, and API_KEY_ROLE set
from a parameter the code accepts."""
from __future__ import annotations

import json

import pytest

from shared.api.auth import API_KEY_ROLES
from shared.settings import SETTINGS_SPEC

from .conftest import INFRA, REPO
from .helpers import config_of, module_config, resources_of_type

AUTH = "infra/modules/auth.bicep"


@pytest.fixture(scope="module")
def auth_settings(trees) -> dict:
    found = [(path, r) for path, _, r in resources_of_type(trees, "Microsoft.Web/sites/config")
             if config_of(r)["name"] == "authsettingsV2"]
    assert [p for p, _ in found] == [AUTH], "one authsettingsV2, in the auth module"
    return config_of(found[0][1])


def test_it_configures_the_function_app_itself(trees, auth_settings):
    app = trees[AUTH]["resources"][auth_settings["parent"]]
    assert app["type"] == "Microsoft.Web/sites" and app["existing"] is True
    assert app["config"]["name"] == "functionAppName"


def test_sign_in_is_optional_at_the_platform_so_function_key_automation_gets_through(auth_settings):
    p = auth_settings["properties"]
    assert p["platform"]["enabled"] is True
    # RedirectToLoginPage / Return401 / Return403 would refuse every call made with the key alone.
    assert p["globalValidation"] == {"requireAuthentication": False, "unauthenticatedClientAction": "AllowAnonymous"}
    assert p["httpSettings"]["requireHttps"] is True


def test_entra_id_is_the_provider_with_the_registration_given_as_parameters(trees, auth_settings):
    aad = auth_settings["properties"]["identityProviders"]["azureActiveDirectory"]
    assert set(auth_settings["properties"]["identityProviders"]) == {"azureActiveDirectory"}
    assert aad["enabled"] is True and aad["isAutoProvisioned"] is False
    assert aad["registration"]["clientId"] == "clientId"
    issuer = aad["registration"]["openIdIssuer"]
    assert "environment().authentication.loginEndpoint" in issuer and issuer.endswith("${tenantId}/v2.0")
    # Bearer tokens from scripts are for the API's application id URI.
    assert "api://${clientId}" in aad["validation"]["allowedAudiences"]
    # No secret to hold: browser sign-in with ID tokens, scripts with bearer tokens.
    assert "clientSecretSettingName" not in aad["registration"]
    params = trees[AUTH]["parameters"]
    assert set(params) == {"functionAppName", "clientId", "tenantId"}
    for name in ("clientId", "tenantId"):
        lengths = {d["type"]: d["argument"] for d in params[name]["decorators"]}
        assert lengths["min_length"] == lengths["max_length"] == 36, name   # a GUID, not an empty string


def test_no_token_store_is_kept(auth_settings):
    assert auth_settings["properties"]["login"]["tokenStore"] == {"enabled": False}


def test_main_deploys_it_when_an_app_registration_is_named(main_tree):
    module = main_tree["modules"]["appAuth"]
    assert module["detail"]["path"] == "modules/auth.bicep"
    condition = module["config"]["condition"]["operator"]
    assert condition["type"] == "not"
    assert condition["operands"]["bool_value"]["function"] == {"type": "empty",
                                                               "parameters": {"item_to_test": "authClientId"}}
    params = module_config(module)["params"]
    assert params["clientId"] == "authClientId"
    assert params["functionAppName"]["operator"]["operands"]["operand_1"] == "functionApp"
    tenant = params["tenantId"]["operator"]["operands"]
    assert tenant["false_value"] == "authTenantId" and tenant["true_value"]["function"]["type"] == "tenant"
    for name in ("authClientId", "authTenantId"):
        assert main_tree["parameters"][name]["default"] == "", f"{name}: optional (no sign-in without it)"


def test_api_key_role_is_the_one_asked_else_operator_without_sign_in_and_reader_with_it(main_tree):
    """Without sign-in the key keeps today's role (the code's default, operator); with it the
    key alone may only read unless apiKeyRole says otherwise (the dashboard's URL carries the key)."""
    settings = main_tree["variables"]["serviceSettings"]["value"]
    assert settings["API_KEY_ROLE"] == "keyRole"
    chosen = main_tree["variables"]["keyRole"]["value"]["operator"]["operands"]
    assert chosen["condition"]["function"] == {"type": "empty", "parameters": {"item_to_test": "apiKeyRole"}}
    assert chosen["false_value"] == "apiKeyRole"
    automatic = chosen["true_value"]["operator"]["operands"]
    assert automatic["condition"]["function"] == {"type": "empty", "parameters": {"item_to_test": "authClientId"}}
    spec = next(v for v in SETTINGS_SPEC if v.name == "API_KEY_ROLE")
    assert automatic["true_value"] == spec.default == "operator" and automatic["false_value"] == "reader"
    param = main_tree["parameters"]["apiKeyRole"]
    allowed = next(d["argument"] for d in param["decorators"] if d["type"] == "allowed")
    assert allowed == [""] + list(API_KEY_ROLES) and param["default"] == ""
    for value in allowed[1:]:
        assert spec.parse(value) == value


def test_azd_passes_the_registration_and_the_key_role():
    values = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert values["authClientId"] == {"value": "${AUTH_CLIENT_ID}"}
    assert values["authTenantId"] == {"value": "${AUTH_TENANT_ID}"}
    assert values["apiKeyRole"] == {"value": "${API_KEY_ROLE}"}


def test_the_readme_gives_the_app_roles_manifest_the_code_checks():
    """The manifest JSON of README "Who may do what" declares exactly the roles the app checks."""
    import re

    from shared.api.auth import ROLE_NAMES, ROLES

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Who may do what", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```json\n\s*\"appRoles\": (\[.*?\n\s*\])\n\s*```", section, re.S)
    assert block, "README's Who may do what has the appRoles JSON"
    roles = json.loads(re.sub(r'"<[^>]+>"', '"00000000-0000-0000-0000-000000000000"', block.group(1)))
    assert [r["value"] for r in roles] == [ROLE_NAMES[r] for r in ROLES]
    assert all(r["isEnabled"] and "User" in r["allowedMemberTypes"] and "Application" in r["allowedMemberTypes"]
               for r in roles)
