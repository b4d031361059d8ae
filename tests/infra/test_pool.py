"""The pool of Azure OpenAI accounts in Bicep: every added account gets the roles the main one
gets, in its own resource group and subscription, and the app reads the same list."""
from __future__ import annotations

import json

from shared.policies.accounts import build_pool, parse_accounts

from .helpers import module_config


def _accessor(expr) -> tuple:
    ops = expr["operator"]["operands"]
    return ops["operand_1"], ops["operand_2"]


def test_every_added_account_gets_the_main_accounts_roles(main_tree):
    pool = main_tree["modules"]["openAiAccessPool"]
    main = main_tree["modules"]["openAiAccess"]
    assert pool["detail"]["path"] == main["detail"]["path"] == "modules/openai-access.bicep"
    loop = pool["config"]["loop_type"]["detail"]
    assert loop["array_name"] == "extraOpenAiAccounts"
    item = loop["item_name"]
    params, main_params = module_config(pool)["params"], module_config(main)["params"]
    assert _accessor(params["accountName"]) == (item, "name")
    # The same principals as on the main account: the app's identity, and whoever ran azd.
    for key in ("appPrincipalId", "userPrincipalId", "userPrincipalType"):
        assert params[key] == main_params[key], key


def test_an_added_account_is_in_its_own_group_and_subscription_else_the_main_accounts(main_tree):
    scope = module_config(main_tree["modules"]["openAiAccessPool"])["scope"]["function"]
    assert scope["type"] == "resource_group"
    for param, field, fallback in (("subscription_id", "subscription", "openAiSubscription"),
                                   ("resource_group_name", "resource_group", "openAiResourceGroup")):
        cond = scope["parameters"][param]["operator"]["operands"]
        assert cond["condition"]["function"]["parameters"]["item_to_find"] == field
        assert _accessor(cond["true_value"])[1] == field
        assert cond["false_value"] == fallback


def test_the_app_reads_the_list_the_roles_were_granted_for(main_tree):
    settings = main_tree["variables"]["serviceSettings"]["value"]
    assert settings["AZURE_OPENAI_ACCOUNTS"] == "openAiAccounts"
    parsed = main_tree["variables"]["extraOpenAiAccounts"]["value"]["operator"]["operands"]
    assert parsed["false_value"]["function"] == {"type": "json", "parameters": {"arg_1": "openAiAccounts"}}
    assert main_tree["parameters"]["openAiAccounts"]["default"] == ""


def test_the_field_names_bicep_reads_are_the_apps():
    """Bicep reads name, subscription and resource_group of each entry: the app's own names."""
    text = json.dumps([{"name": "aoai-eus2", "endpoint": "https://aoai-eus2.openai.azure.com",
                        "subscription": "sub-2", "resource_group": "rg-2", "region": "eastus2"}])
    pool = build_pool(parse_accounts(text), endpoint="https://main.openai.azure.com", subscription="sub-1",
                      resource_group="rg-1", account="aoai-main")
    assert [(a.name, a.subscription, a.resource_group) for a in pool] == [
        ("aoai-main", "sub-1", "rg-1"), ("aoai-eus2", "sub-2", "rg-2")]
