"""AZURE_OPENAI_ACCOUNTS: the pool, validated at start-up with the variable named; today's
single-account settings are a pool of one."""
from __future__ import annotations

import json

import pytest

from shared.settings import Settings, SettingsError

BASE_ENV = {"AZURE_OPENAI_ENDPOINT": "https://main.openai.azure.com", "AZURE_SUBSCRIPTION_ID": "sub-1",
            "AZURE_RESOURCE_GROUP": "rg-1", "AZURE_OPENAI_ACCOUNT": "aoai-main",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def settings(accounts=None) -> Settings:
    env = dict(BASE_ENV)
    if accounts is not None:
        env["AZURE_OPENAI_ACCOUNTS"] = accounts if isinstance(accounts, str) else json.dumps(accounts)
    return Settings.from_env(env)


def test_the_single_account_settings_are_a_pool_of_one():
    pool = settings().accounts
    assert len(pool) == 1
    (main,) = pool
    assert (main.name, main.endpoint, main.subscription, main.resource_group, main.default) == (
        "aoai-main", "https://main.openai.azure.com", "sub-1", "rg-1", True)
    assert main.region is None  # unknown: Azure decides what it trains
    assert main.resource_id == settings().account_resource_id


def test_added_accounts_follow_the_default_one_and_inherit_its_subscription_and_group():
    pool = settings([{"name": "aoai-eus2", "endpoint": "https://eus2.openai.azure.com/", "region": "East US 2",
                      "training_types": ["globalstandard"]},
                     {"name": "aoai-main", "region": "swedencentral"},
                     {"name": "aoai-other", "endpoint": "https://other.openai.azure.com", "region": "northcentralus",
                      "subscription": "sub-2", "resource_group": "rg-2"}]).accounts
    assert [a.name for a in pool] == ["aoai-main", "aoai-eus2", "aoai-other"]
    main, eus2, other = pool
    assert main.region == "swedencentral" and main.default
    assert (eus2.endpoint, eus2.region, eus2.subscription, eus2.resource_group, eus2.training_types) == (
        "https://eus2.openai.azure.com", "eastus2", "sub-1", "rg-1", ("GlobalStandard",))
    assert other.resource_id == "/subscriptions/sub-2/resourceGroups/rg-2/providers/Microsoft.CognitiveServices/" \
                                "accounts/aoai-other"


@pytest.mark.parametrize("value, message", [
    ("[{", "not valid JSON"),
    ('{"name": "x"}', "expected a JSON list"),
    ([{"name": "b", "endpoint": "https://b.openai.azure.com"}], r"entry 1 \(b\): region is required"),
    ([{"name": "b", "region": "eastus2"}], r"entry 1 \(b\): endpoint is required"),
    ([{"name": "b", "endpoint": "http://b", "region": "eastus2"}], "endpoint must be an https:// URL"),
    ([{"name": "b", "endpoint": "https://b.x", "region": "eastus2", "quota": 3}], r"unknown field\(s\) \['quota'\]"),
    ([{"name": "b", "endpoint": "https://b.x", "region": "eastus2", "training_types": ["Turbo"]}],
     "unknown training type 'Turbo'"),
    ([{"name": "b", "endpoint": "https://b.x", "region": "r"}, {"name": "B", "endpoint": "https://c.x",
                                                                  "region": "r"}], "listed twice"),
    ([{"name": "aoai-main", "endpoint": "https://elsewhere.openai.azure.com"}],
     "default account.*endpoint differs"),
    ([{"name": "b", "endpoint": "https://main.openai.azure.com", "region": "r"}], "its endpoint is another account's"),
    ([{"name": "-bad-", "endpoint": "https://b.x", "region": "r"}], "name must be an account name"),
])
def test_a_malformed_pool_stops_start_up_naming_the_variable_and_the_entry(value, message):
    with pytest.raises(SettingsError, match="AZURE_OPENAI_ACCOUNTS is malformed") as err:
        settings(value)
    assert __import__("re").search(message, str(err.value)), str(err.value)


def test_an_empty_setting_is_the_pool_of_one():
    assert len(settings("").accounts) == 1 and len(settings("[]").accounts) == 1
