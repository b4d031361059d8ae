"""The templates parse, and refer only to things that exist: symbols of their own
file, module files, module parameters and module outputs; main.parameters.json
maps only parameters main.bicep declares."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .bicep_refs import analyse
from .conftest import INFRA, REPO
from .helpers import module_config

EXPECTED_FILES = {
    "infra/main.bicep",
    "infra/modules/identity.bicep",
    "infra/modules/monitoring.bicep",
    "infra/modules/storage.bicep",
    "infra/modules/storage-access.bicep",
    "infra/modules/openai.bicep",
    "infra/modules/openai-access.bicep",
    "infra/modules/functionapp.bicep",
    "infra/modules/eventgrid.bicep",
    "infra/modules/notifications.bicep",
}


def _modules(trees: dict[str, dict]):
    for path, tree in trees.items():
        for symbol, module in tree.get("modules", {}).items():
            yield path, symbol, module


def test_every_bicep_file_parses(trees):
    # The fixture fails on any file pycep (checkov's parser) cannot read.
    assert EXPECTED_FILES <= set(trees), f"missing templates: {sorted(EXPECTED_FILES - set(trees))}"


def test_every_module_is_used_by_main(trees):
    used = {(Path(path).parent / module["detail"]["path"]).as_posix()
            for path, _, module in _modules(trees)}
    unused = set(trees) - used - {"infra/main.bicep"}
    assert not unused, f"modules no template deploys: {sorted(unused)}"


def test_module_files_exist_and_are_local(trees):
    problems = []
    for path, symbol, module in _modules(trees):
        if module["type"] != "local":
            problems.append(f"{path}: module {symbol} is not a local file ({module['detail']})")
            continue
        target = (REPO / path).parent / module["detail"]["path"]
        if not target.is_file():
            problems.append(f"{path}: module {symbol} points at missing {module['detail']['path']}")
    assert not problems, "\n".join(problems)


def test_modules_get_exactly_the_parameters_they_declare(trees):
    problems = []
    for path, symbol, module in _modules(trees):
        target = (Path(path).parent / module["detail"]["path"]).as_posix()
        declared = trees[target].get("parameters", {})
        passed = module_config(module).get("params", {}) or {}
        for name in passed:
            if name not in declared:
                problems.append(f"{path}: module {symbol} passes '{name}', which {target} does not declare")
        for name, param in declared.items():
            if param.get("default") is None and name not in passed:
                problems.append(f"{path}: module {symbol} does not pass required '{name}' of {target}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", sorted(EXPECTED_FILES))
def test_every_reference_names_a_symbol_of_the_file(path):
    declared, refs = analyse((REPO / path).read_text(encoding="utf-8"))
    unknown = [f"{path}:{r.line}: '{r.name}'" for r in refs if r.name not in declared]
    assert not unknown, "references to undeclared parameters, variables, resources or modules:\n" + "\n".join(unknown)


@pytest.mark.parametrize("path", sorted(EXPECTED_FILES))
def test_every_parameter_and_variable_is_used(path):
    declared, refs = analyse((REPO / path).read_text(encoding="utf-8"))
    used = {r.name for r in refs}
    unused = [name for name, kind in declared.items() if kind in ("param", "var") and name not in used]
    assert not unused, f"{path}: declared but never used: {unused}"


def test_module_outputs_that_are_read_exist(trees):
    problems = []
    for path, tree in trees.items():
        modules = tree.get("modules", {})
        _, refs = analyse((REPO / path).read_text(encoding="utf-8"))
        for ref in refs:
            if ref.output is None or ref.name not in modules:
                continue
            target = (Path(path).parent / modules[ref.name]["detail"]["path"]).as_posix()
            if ref.output not in trees[target].get("outputs", {}):
                problems.append(f"{path}:{ref.line}: {ref.name}.outputs.{ref.output} is not an output of {target}")
    assert not problems, "\n".join(problems)


def test_no_string_literal_is_mistaken_for_a_symbol(trees):
    """pycep writes identifiers and literals alike; helpers.resolve() takes a string
    that names a parameter or variable as a reference to it. Guard that assumption:
    no quoted literal (outside @metadata decorators) equals the name of a parameter
    or variable of its file."""
    problems = []
    for path in trees:
        src = (REPO / path).read_text(encoding="utf-8")
        declared, _ = analyse(src)
        body = re.sub(r"@metadata\(\{.*?\}\)", "", src, flags=re.DOTALL)
        for literal in re.findall(r"'([A-Za-z_][A-Za-z0-9_]*)'", body):
            if declared.get(literal) in ("param", "var"):
                problems.append(f"{path}: literal '{literal}' has the name of a {declared[literal]}")
    assert not problems, "\n".join(problems)


def test_reference_check_catches_a_typo():
    src = (INFRA / "main.bicep").read_text(encoding="utf-8").replace(
        "storageAccountName: storage.outputs.name", "storageAccountName: storag.outputs.name", 1)
    declared, refs = analyse(src)
    assert [r.name for r in refs if r.name not in declared] == ["storag"]


def test_parameters_file_maps_only_declared_parameters(main_tree):
    doc = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    mapped = doc["parameters"]
    declared = main_tree["parameters"]
    assert not set(mapped) - set(declared), f"mapped but not declared: {sorted(set(mapped) - set(declared))}"
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(mapped), f"required parameters azd cannot fill: {sorted(required - set(mapped))}"
    for name, entry in mapped.items():
        # Plain ${VAR}: an unset or empty variable makes azd use the Bicep default,
        # so every default lives in one place (main.bicep).
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*\}", entry["value"]), \
            f"{name}: expected a plain azd placeholder ${{VAR}}, got {entry['value']!r}"


def test_parameters_file_reads_no_output_back(main_tree):
    """An output written to the azd environment under the name a parameter reads
    would feed one deployment's result into the next one's input."""
    doc = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    inputs = {entry["value"][2:-1] for entry in doc["parameters"].values()}
    echoed = (inputs & set(main_tree["outputs"])) - {"AZURE_LOCATION"}
    assert not echoed, f"outputs that are also read as parameters: {sorted(echoed)}"


API_VERSIONS = {
    "Microsoft.Web/": "2024-04-01",
    "Microsoft.Storage/": "2023-05-01",
    "Microsoft.CognitiveServices/": "2025-06-01",
    "Microsoft.EventGrid/": "2025-02-15",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
    "Microsoft.ManagedIdentity/": "2023-01-31",
    "Microsoft.OperationalInsights/": "2023-09-01",
    "Microsoft.Insights/components": "2020-02-02",
    # The newest version of diagnostic settings is still a preview one.
    "Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
    "Microsoft.Resources/resourceGroups": "2024-03-01",
}


def test_api_versions_are_the_chosen_ones(trees):
    problems = []
    for path, tree in trees.items():
        for symbol, resource in tree.get("resources", {}).items():
            prefix = next((p for p in API_VERSIONS if resource["type"].startswith(p)), None)
            if prefix is None:
                problems.append(f"{path}: {symbol} has type {resource['type']} with no chosen API version")
            elif resource["api_version"] != API_VERSIONS[prefix]:
                problems.append(f"{path}: {symbol} uses {resource['type']}@{resource['api_version']}, "
                                f"expected {API_VERSIONS[prefix]}")
    assert not problems, "\n".join(problems)
