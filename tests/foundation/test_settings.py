"""Settings are read once, typed, and a bad configuration names the variable at fault."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.settings import SETTINGS_SPEC, Settings, SettingsError, all_setting_names

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "AZURE_OPENAI_ENDPOINT": "https://aoai.example.com/",
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_RESOURCE_GROUP": "rg",
    "AZURE_OPENAI_ACCOUNT": "acct",
    "AzureWebJobsStorage__accountName": "mystorage",
}


def test_minimal_identity_based_configuration():
    s = Settings.from_env(BASE)
    assert s.openai_endpoint == "https://aoai.example.com"
    assert s.openai_api_version == "2025-04-01-preview"
    assert s.storage.uses_identity
    assert s.storage.blob_service_uri == "https://mystorage.blob.core.windows.net"
    assert s.storage.table_service_uri == "https://mystorage.table.core.windows.net"
    assert s.monitor_schedule == "0 */2 * * * *"
    assert s.keeper_margin_hours == 48.0
    assert s.account_resource_id == ("/subscriptions/sub/resourceGroups/rg/providers/"
                                     "Microsoft.CognitiveServices/accounts/acct")
    assert s.openai_api_key is None and s.local_arm_token is None  # nothing local in Azure


def test_connection_string_for_the_emulator():
    env = {k: v for k, v in BASE.items() if not k.startswith("AzureWebJobs")}
    env["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    assert Settings.from_env(env).storage.connection_string == "UseDevelopmentStorage=true"


@pytest.mark.parametrize("missing", ["AZURE_OPENAI_ENDPOINT", "AZURE_SUBSCRIPTION_ID",
                                     "AZURE_RESOURCE_GROUP", "AZURE_OPENAI_ACCOUNT"])
def test_missing_required_variable_is_named(missing):
    env = dict(BASE)
    del env[missing]
    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(env)


def test_missing_storage_is_named():
    env = {k: v for k, v in BASE.items() if not k.startswith("AzureWebJobs")}
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        Settings.from_env(env)


@pytest.mark.parametrize("name, value", [
    ("AZURE_OPENAI_ENDPOINT", "http://insecure.example.com"),
    ("KEEPER_MARGIN_HOURS", "two days"),
    ("KEEPER_ADOPT_EXISTING", "maybe"),
    ("DEFAULT_DEPLOYMENT_CAPACITY", "0"),
    ("MONITOR_SCHEDULE", "*/2 * * * *x"),
    ("MONITOR_SCHEDULE", "0 */2 * *"),
    ("DATASETS_CONTAINER", "Bad_Container"),
    ("JOBS_TABLE", "jobs-table"),
    ("DEFAULT_KEEP_ALIVE", "forever"),
    ("DEFAULT_DEPLOYMENT_SKU", "Free"),
    ("UPLOAD_IMPORT_THRESHOLD_BYTES", "1e9"),
])
def test_malformed_variable_is_named(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**BASE, name: value})


def test_all_problems_reported_at_once():
    with pytest.raises(SettingsError) as exc:
        Settings.from_env({"KEEPER_MARGIN_HOURS": "x"})
    text = str(exc.value)
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_SUBSCRIPTION_ID", "KEEPER_MARGIN_HOURS", "AzureWebJobsStorage"):
        assert name in text


def test_sample_local_settings_name_every_variable_and_parse():
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert set(all_setting_names()) <= set(values), "local.settings.sample.json misses a setting"
    assert Settings.from_env(values).storage.connection_string.startswith("DefaultEndpointsProtocol=http;")


def test_readme_documents_every_variable():
    readme = (ROOT / "README.md").read_text()
    undocumented = [v.name for v in SETTINGS_SPEC if f"`{v.name}`" not in readme]
    assert not undocumented, f"README's configuration table misses {undocumented}"
