"""No drift between the code and the infrastructure: the Function App gets every
setting shared/settings.py reads (and none of the local-only ones), with values the
code accepts and, for optional settings, its own defaults; every container and
table the code uses is declared."""
from __future__ import annotations

import pytest

from shared.settings import SETTINGS_SPEC, all_setting_names, required_app_settings

from .helpers import Unresolved, module_config, resolve

# Local emulators only: never set in Azure (they would replace managed identity).
LOCAL_ONLY = {"AZURE_OPENAI_API_KEY", "LOCAL_ARM_TOKEN", "LOCAL_CA_BUNDLE"}
SPEC = {v.name: v for v in SETTINGS_SPEC}
FUNCTION_APP = "infra/modules/functionapp.bicep"


def _output_of(module: str, output: str) -> dict:
    """The pycep form of `module.outputs.output`."""
    return {"operator": {"type": "property_accessor", "operands": {
        "operand_1": module,
        "operand_2": {"operator": {"type": "property_accessor",
                                   "operands": {"operand_1": "outputs", "operand_2": output}}}}}}


@pytest.fixture(scope="module")
def service_settings(main_tree) -> dict:
    """The serviceSettings object main.bicep hands to the Function App module."""
    app = module_config(main_tree["modules"]["functionApp"])
    assert app["params"]["serviceSettings"] == "serviceSettings"
    return main_tree["variables"]["serviceSettings"]["value"]


@pytest.fixture(scope="module")
def host_settings(trees) -> dict:
    return trees[FUNCTION_APP]["variables"]["hostSettings"]["value"]


@pytest.fixture(scope="module")
def app_setting_names(service_settings, host_settings) -> set[str]:
    return set(service_settings) | set(host_settings)


def test_local_only_settings_are_known_to_the_code():
    assert LOCAL_ONLY <= set(all_setting_names())


def test_the_app_gets_both_objects_as_its_app_settings(trees):
    tree = trees[FUNCTION_APP]
    assert tree["variables"]["appSettings"]["value"] == {
        "function": {"type": "union", "parameters": {"arg_1": "serviceSettings", "arg_2": "hostSettings"}}}
    site = next(r for r in tree["resources"].values() if r["type"] == "Microsoft.Web/sites")
    loop = site["config"]["properties"]["siteConfig"]["appSettings"]
    assert loop["loop_type"]["detail"]["object_name"] == "appSettings"


def test_every_required_setting_is_set(app_setting_names):
    missing = set(required_app_settings()) - app_setting_names
    assert not missing, f"required settings missing from the Function App: {sorted(missing)}"


def test_every_setting_of_the_code_is_set_except_local_ones(app_setting_names):
    missing = set(all_setting_names()) - LOCAL_ONLY - app_setting_names
    assert not missing, f"settings of shared/settings.py missing from the Function App: {sorted(missing)}"


def test_no_local_only_setting_is_set_in_azure(app_setting_names):
    leaked = LOCAL_ONLY & app_setting_names
    assert not leaked, f"local-only settings must not be set in Azure: {sorted(leaked)}"


def test_every_service_setting_is_one_the_code_reads(service_settings):
    unknown = set(service_settings) - set(all_setting_names())
    assert not unknown, f"serviceSettings names the code does not read (typo?): {sorted(unknown)}"


def test_values_known_before_deployment_are_the_codes_defaults(main_tree, service_settings):
    """A literal or parameter default that the code's parser rejects, or that differs
    from the code's default, is drift: change both places, or neither."""
    problems = []
    for name, expr in service_settings.items():
        value = resolve(expr, main_tree)
        if isinstance(value, Unresolved):
            continue  # known at deployment (endpoint, subscription, identity...)
        var = SPEC[name]
        try:
            parsed = var.parse(str(value))
        except ValueError as exc:
            problems.append(f"{name}={value!r}: rejected by the code: {exc}")
            continue
        if var.default is not None and parsed != var.default:
            problems.append(f"{name}={value!r} but the code's default is {var.default!r}")
    assert not problems, "\n".join(problems)


def test_deployment_time_values_come_from_the_right_place(main_tree, service_settings):
    assert service_settings["AZURE_OPENAI_ENDPOINT"]["operator"]["operands"]["operand_1"] == "openAiAccess"
    assert service_settings["AZURE_CLIENT_ID"]["operator"]["operands"]["operand_1"] == "identity"
    assert service_settings["ARM_ENDPOINT"] == {"function": {"type": "environment", "property_name": "resourceManager"}}
    # The account, its resource group and subscription are the ones the roles are granted on.
    access = module_config(main_tree["modules"]["openAiAccess"])
    assert access["params"]["accountName"] == service_settings["AZURE_OPENAI_ACCOUNT"] == "openAiName"
    scope = access["scope"]["function"]["parameters"]
    assert scope["resource_group_name"] == service_settings["AZURE_RESOURCE_GROUP"] == "openAiResourceGroup"
    assert scope["subscription_id"] == service_settings["AZURE_SUBSCRIPTION_ID"] == "openAiSubscription"


def test_storage_connection_is_identity_based(host_settings, main_tree):
    expected = {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__blobServiceUri",
                "AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__tableServiceUri",
                "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId"}
    assert expected <= set(host_settings)
    assert host_settings["AzureWebJobsStorage__credential"] == "managedidentity"
    # No connection string (it would need a shared key, which the account refuses).
    assert "AzureWebJobsStorage" not in host_settings
    # The host and DefaultAzureCredential use the same user-assigned identity.
    assert host_settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    app = module_config(main_tree["modules"]["functionApp"])
    assert app["params"]["identityClientId"] == _output_of("identity", "clientId")


def test_no_setting_flex_consumption_rejects(app_setting_names):
    # The runtime is declared in functionAppConfig; these app settings make the deployment fail.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & app_setting_names


def _declared(main_tree, param: str) -> list:
    storage = module_config(main_tree["modules"]["storage"])
    return resolve(storage["params"][param], main_tree)


def test_every_container_the_code_uses_is_declared(main_tree):
    code = {v.default for v in SETTINGS_SPEC if v.name.endswith("_CONTAINER")}
    assert code == {"datasets", "reports", "results"}
    declared = set(x for x in _declared(main_tree, "containerNames") if isinstance(x, str))
    assert code <= declared, f"containers the code uses but infra does not declare: {sorted(code - declared)}"


def test_every_table_the_code_uses_is_declared(main_tree):
    code = {v.default for v in SETTINGS_SPEC if v.name.endswith("_TABLE")}
    assert code == {"Datasets", "Jobs", "Deployments", "DeploymentEvents", "IdempotencyKeys"}
    declared = set(_declared(main_tree, "tableNames"))
    assert code <= declared, f"tables the code uses but infra does not declare: {sorted(code - declared)}"


def test_deployment_package_and_dead_letter_containers_are_declared(main_tree):
    storage = module_config(main_tree["modules"]["storage"])["params"]["containerNames"]
    app = module_config(main_tree["modules"]["functionApp"])["params"]
    events = module_config(main_tree["modules"]["eventGrid"])["params"]
    assert app["deploymentContainerName"] in storage
    assert events["deadLetterContainerName"] in storage
