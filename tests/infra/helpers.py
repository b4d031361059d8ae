"""Reading values out of pycep trees (the JSON form of a Bicep file)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Unresolved:
    """An expression known only at deployment time (a module output, a function...)."""
    expr: Any


def module_config(module: dict) -> dict:
    """The body of a module declaration, whether or not it has an `if (...)` condition."""
    config = module["config"]
    if "condition" in config and "config" in config:
        return config["config"]
    return config


def resolve(value: Any, tree: dict, _depth: int = 0) -> Any:
    """Resolves a value of `tree` as far as the file itself allows: parameters to
    their defaults, variables to their values, `obj.key` accessors on those.

    pycep writes identifiers and string literals alike as plain strings; a string
    that names a parameter or variable of the file is taken as a reference (the
    reference checks in test_templates make sure no literal collides with one).
    """
    if _depth > 20:
        return Unresolved(value)
    params, variables = tree.get("parameters", {}), tree.get("variables", {})
    if isinstance(value, str):
        if value in params:
            default = params[value].get("default")
            return Unresolved(value) if default is None else resolve(default, tree, _depth + 1)
        if value in variables:
            return resolve(variables[value]["value"], tree, _depth + 1)
        if "${" in value:
            return Unresolved(value)
        return value
    if isinstance(value, list):
        return [resolve(v, tree, _depth + 1) for v in value]
    if isinstance(value, dict):
        operator = value.get("operator")
        if isinstance(operator, dict) and operator.get("type") == "property_accessor":
            base = resolve(operator["operands"]["operand_1"], tree, _depth + 1)
            key = operator["operands"]["operand_2"]
            if isinstance(base, dict) and isinstance(key, str) and key in base:
                return base[key]
            return Unresolved(value)
        if "operator" in value or "function" in value:
            return Unresolved(value)
        return {k: resolve(v, tree, _depth + 1) for k, v in value.items()}
    return value


def resources_of_type(trees: dict[str, dict], resource_type: str) -> list[tuple[str, str, dict]]:
    """(file, symbol, resource) for every declared (not `existing`) resource of a type."""
    found = []
    for path, tree in trees.items():
        for symbol, resource in tree.get("resources", {}).items():
            if resource["type"] == resource_type and not resource.get("existing"):
                found.append((path, symbol, resource))
    return found


def one_resource(trees: dict[str, dict], resource_type: str) -> tuple[str, dict]:
    found = resources_of_type(trees, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {[(p, s) for p, s, _ in found]}"
    path, _, resource = found[0]
    return path, resource


def config_of(resource: dict) -> dict:
    """The body of a resource declaration, with or without an `if (...)` condition."""
    config = resource["config"]
    if "condition" in config and "config" in config and isinstance(config["config"], dict):
        return config["config"]
    return config
