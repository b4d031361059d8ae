"""azure.yaml, the outputs of main.bicep and the postdeploy hook agree with each
other and with the code; the hook is run against a stand-in `az`."""
from __future__ import annotations

import ast
import json
import os
import re
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from .conftest import INFRA, REPO
from .helpers import module_config

HOOK = INFRA / "hooks" / "postdeploy.sh"


def test_azure_yaml_deploys_the_repo_to_the_tagged_function_app(azure_yaml, main_tree, trees):
    assert azure_yaml["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (service_name, service), = azure_yaml["services"].items()
    assert service == {"project": ".", "language": "python", "host": "function"}
    # azd finds the app by its azd-service-name tag.
    app = module_config(main_tree["modules"]["functionApp"])
    assert main_tree["variables"][app["params"]["serviceName"]]["value"] == service_name
    site = next(r for r in trees["infra/modules/functionapp.bicep"]["resources"].values()
                if r["type"] == "Microsoft.Web/sites")
    assert site["config"]["tags"]["function"]["parameters"]["arg_2"] == {"'azd-service-name'": "serviceName"}


def test_azure_yaml_runs_the_postdeploy_hook(azure_yaml):
    hook = azure_yaml["hooks"]["postdeploy"]["posix"]
    assert hook["shell"] == "sh"
    assert (REPO / hook["run"]).resolve() == HOOK
    assert HOOK.stat().st_mode & stat.S_IXUSR, "the hook must be executable"
    assert hook.get("continueOnError") is False  # a blob trigger with no events is a broken deployment


def test_the_package_carries_the_dashboards_chart_library_and_no_other_npm_package(azure_yaml):
    """The dashboard serves Chart.js from node_modules: azd installs it before packaging, and
    .funcignore lets exactly that package into the deployment (Azurite stays out)."""
    hook = azure_yaml["hooks"]["prepackage"]["posix"]
    assert hook["run"].split()[:2] == ["npm", "ci"] and hook.get("continueOnError") is False
    ignore = [line.strip() for line in (REPO / ".funcignore").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#")]
    assert "node_modules/*" in ignore and "!node_modules/chart.js/" in ignore
    assert "node_modules" not in ignore  # a bare entry would exclude the folder, exceptions and all
    import json

    deps = json.loads((REPO / "package.json").read_text(encoding="utf-8"))
    assert set(deps["dependencies"]) == {"chart.js"}


def test_every_azd_value_the_hook_reads_is_an_output(main_tree):
    src = HOOK.read_text(encoding="utf-8")
    required = re.search(r"^for name in (.*?); do$", src, re.M | re.S).group(1).replace("\\\n", " ").split()
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", src))
    assigned = set(re.findall(r"^\s*([A-Z][A-Z0-9_]*)=", src, re.M))
    external = (used | set(required)) - assigned - {"POSTDEPLOY_KEY_ATTEMPTS", "POSTDEPLOY_RETRY_SECONDS"}
    assert set(required) == external, "the hook must check every azd value it uses before using it"
    missing = external - set(main_tree["outputs"])
    assert not missing, f"the hook reads values main.bicep does not output: {sorted(missing)}"


def test_the_hook_names_the_codes_event_grid_blob_trigger():
    """The webhook addresses Host.Functions.<name>: it must be the blob trigger of
    the code, and that trigger must take its events from Event Grid."""
    hook_name = re.search(r'^FUNCTION_NAME="(\w+)"', HOOK.read_text(encoding="utf-8"), re.M).group(1)
    triggers = {}
    for path in sorted((REPO / "functions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "blob_trigger":
                    kwargs = {k.arg: ast.unparse(k.value) for k in deco.keywords}
                    triggers[node.name] = kwargs
    assert hook_name in triggers, f"no blob trigger named {hook_name!r} in functions/ (found {sorted(triggers)})"
    assert triggers[hook_name].get("source", "").endswith("EVENT_GRID")
    assert triggers[hook_name].get("path", "").startswith("'%DATASETS_CONTAINER%/")


# --- the hook, run with a stand-in az -------------------------------------------------

HOOK_ENV = {
    "AZURE_RESOURCE_GROUP": "rg-test",
    "AZURE_FUNCTION_APP_NAME": "func-abc",
    "AZURE_FUNCTION_APP_HOST": "func-abc.azurewebsites.net",
    "EVENTGRID_SYSTEM_TOPIC_ID": "/subscriptions/sub/resourceGroups/rg-test/providers/Microsoft.EventGrid/systemTopics/evgt-abc",
    "AZURE_STORAGE_ACCOUNT_ID": "/subscriptions/sub/resourceGroups/rg-test/providers/Microsoft.Storage/storageAccounts/stabc",
    "DATASETS_CONTAINER": "datasets",
    "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
}
SECRET = "s3cr3t-blobs-extension-key"

FAKE_AZ = textwrap.dedent("""\
    #!/bin/sh
    # Stand-in for the Azure CLI: records calls, answers `functionapp keys list`
    # with an empty key for the first $EMPTY_KEYS calls, and saves `rest` bodies.
    echo "$*" >> "$LOG_DIR/calls"
    case "$1 $2" in
      "functionapp keys")
        n=$(cat "$LOG_DIR/key-calls" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$LOG_DIR/key-calls"
        if [ "$n" -gt "${EMPTY_KEYS:-0}" ]; then echo "$FAKE_KEY"; fi ;;
      "rest --method")
        while [ $# -gt 0 ]; do
          case "$1" in
            --body) cp "${2#@}" "$LOG_DIR/body.json"; ls -l "${2#@}" | cut -c1-10 > "$LOG_DIR/body-mode" ;;
            --url) echo "$2" > "$LOG_DIR/url" ;;
          esac
          shift
        done ;;
    esac
    """)


@pytest.fixture
def run_hook(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ)
    az.chmod(0o755)

    def run(env_overrides: dict | None = None, empty_keys: int = 0):
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG_DIR": str(tmp_path), "FAKE_KEY": SECRET,
               "EMPTY_KEYS": str(empty_keys), "POSTDEPLOY_KEY_ATTEMPTS": "3",
               "POSTDEPLOY_RETRY_SECONDS": "0", "HOME": str(tmp_path), **HOOK_ENV}
        for key, value in (env_overrides or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return subprocess.run(["sh", str(HOOK)], env=env, capture_output=True, text=True, timeout=30)

    return run


def test_hook_subscribes_intake_to_blob_created_in_the_datasets_container(run_hook, tmp_path):
    proc = run_hook()
    assert proc.returncode == 0, proc.stderr
    url = (tmp_path / "url").read_text().strip()
    assert url == (HOOK_ENV["EVENTGRID_SYSTEM_TOPIC_ID"]
                   + "/eventSubscriptions/intake-blob-created?api-version=2025-02-15")
    props = json.loads((tmp_path / "body.json").read_text())["properties"]
    assert props["destination"] == {"endpointType": "WebHook", "properties": {
        "endpointUrl": f"https://func-abc.azurewebsites.net/runtime/webhooks/blobs"
                       f"?functionName=Host.Functions.intake&code={SECRET}",
        "maxEventsPerBatch": 1, "preferredBatchSizeInKilobytes": 64}}
    assert props["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert props["filter"]["subjectBeginsWith"] == "/blobServices/default/containers/datasets/"
    assert props["eventDeliverySchema"] == "EventGridSchema"
    dead_letter = props["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    assert dead_letter["deadLetterDestination"]["properties"] == {
        "resourceId": HOOK_ENV["AZURE_STORAGE_ACCOUNT_ID"], "blobContainerName": "eventgrid-deadletter"}


def test_hook_keeps_the_key_secret(run_hook, tmp_path):
    proc = run_hook()
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    calls = (tmp_path / "calls").read_text()
    assert SECRET not in calls, "the key must not be on a command line"
    assert (tmp_path / "body-mode").read_text().strip() == "-rw-------"


def test_hook_waits_for_the_system_key(run_hook, tmp_path):
    proc = run_hook(empty_keys=2)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "key-calls").read_text().strip() == "3"
    assert "waiting for the blobs_extension key" in proc.stdout


def test_hook_fails_clearly_when_the_key_never_appears(run_hook, tmp_path):
    proc = run_hook(empty_keys=99)
    assert proc.returncode != 0
    assert "no blobs_extension system key" in proc.stderr
    assert not (tmp_path / "body.json").exists()


def test_hook_fails_clearly_without_the_azd_outputs(run_hook):
    proc = run_hook({"EVENTGRID_SYSTEM_TOPIC_ID": None, "DATASETS_CONTAINER": ""})
    assert proc.returncode != 0
    assert "EVENTGRID_SYSTEM_TOPIC_ID" in proc.stderr and "DATASETS_CONTAINER" in proc.stderr


def test_hook_reads_the_azd_environment_when_run_by_hand(run_hook, tmp_path):
    azd = tmp_path / "bin" / "azd"
    lines = "\n".join(f'{k}="{v}"' for k, v in HOOK_ENV.items())
    azd.write_text(f"#!/bin/sh\ncat <<'EOF'\n{lines}\nEOF\n")
    azd.chmod(0o755)
    proc = run_hook({k: None for k in HOOK_ENV})
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "body.json").read_text())["properties"]["filter"]["subjectBeginsWith"] \
        == "/blobServices/default/containers/datasets/"


def test_hook_is_posix_sh():
    proc = subprocess.run(["sh", "-n", str(HOOK)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert HOOK.read_text().startswith("#!/bin/sh\n")
    assert "[[" not in HOOK.read_text(), "bash-only test syntax in a POSIX sh script"
