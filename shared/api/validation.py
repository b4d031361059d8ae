"""A small JSON Schema (2020-12 subset) validator for request bodies and parameters.

The request schemas of the OpenAPI document are the single source of truth: the
API validates bodies against them with this module (no runtime dependency on a
schema library), and the tests check the same schemas with ``jsonschema``.

Supported keywords: ``type`` (a name or a list), ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties`` (false or a schema),
``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``, ``minLength``/
``maxLength``, ``pattern``, ``items``/``minItems``/``maxItems``, ``oneOf``/``anyOf``
and ``$ref`` to ``#/components/schemas/<name>``. A schema that uses anything else
is refused when it is checked (:func:`check_supported`), so the two never disagree
silently.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["FieldError", "validate", "check_supported", "describe"]

_KEYWORDS = {"type", "enum", "const", "properties", "required", "additionalProperties", "minimum", "maximum",
             "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "items", "minItems",
             "maxItems", "oneOf", "anyOf", "$ref", "description", "title", "default", "examples", "format",
             "deprecated", "readOnly", "writeOnly"}
_REF_PREFIX = "#/components/schemas/"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``field`` is dotted (``hyperparameters.n_epochs``,
    ``items[2]``), ``pointer`` the JSON Pointer (RFC 6901) of the same place."""

    field: str
    pointer: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "pointer": self.pointer, "detail": f"{self.field or 'body'}: {self.message}"}


def _pointer(path: tuple[Any, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    actual = _type_of(value)
    if name == "number":
        return actual in ("integer", "number")
    if name == "integer":
        return actual == "integer" or (actual == "number" and math.isfinite(value) and float(value).is_integer())
    return actual == name


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


_ARTICLE = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
            "object": "an object", "array": "an array", "null": "null"}


def describe(schema: Mapping[str, Any], components: Mapping[str, Any] | None = None) -> str:
    """A short human description of what a schema accepts (used in error messages)."""
    schema = _resolve(schema, components)
    if "const" in schema:
        return _show(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(_show(v) for v in schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(describe(s, components) for s in schema[key])
    types = schema.get("type")
    if isinstance(types, list):
        return " or ".join(_ARTICLE.get(t, t) for t in types)
    text = _ARTICLE.get(types, "a value") if types else "a value"
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow = schema.get("exclusiveMinimum")
    if types in ("integer", "number"):
        if low is not None and high is not None:
            text += f" from {low} to {high}"
        elif xlow is not None and high is not None:
            text += f" greater than {xlow} and at most {high}"
        elif low is not None:
            text += f" of at least {low}"
        elif xlow is not None:
            text += f" greater than {xlow}"
    if types == "string" and "description" in schema and "pattern" in schema:
        text += f" ({schema['description']})"
    return text


def _resolve(schema: Mapping[str, Any], components: Mapping[str, Any] | None) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    if not ref.startswith(_REF_PREFIX) or components is None or ref[len(_REF_PREFIX):] not in components:
        raise ValueError(f"unresolvable $ref {ref!r}")
    return _resolve(components[ref[len(_REF_PREFIX):]], components)


def validate(value: Any, schema: Mapping[str, Any], components: Mapping[str, Any] | None = None,
             path: tuple[Any, ...] = ()) -> list[FieldError]:
    """All problems of ``value`` against ``schema`` (empty when it is valid)."""
    schema = _resolve(schema, components)
    errors: list[FieldError] = []

    def err(message: str, at: tuple[Any, ...] = path) -> list[FieldError]:
        return [FieldError(_dotted(at), _pointer(at), message)]

    for key in ("oneOf", "anyOf"):
        if key in schema:
            matches = [s for s in schema[key] if not validate(value, s, components, path)]
            if key == "oneOf" and len(matches) != 1 or key == "anyOf" and not matches:
                if not matches:
                    # One branch of the right type gives the most helpful message.
                    same_type = [s for s in schema[key] if _branch_type_matches(value, _resolve(s, components))]
                    if len(same_type) == 1 and _resolve(same_type[0], components).get("type") in ("object", "array"):
                        return validate(value, same_type[0], components, path)
                    return err(f"expected {describe(schema, components)}, got {_show(value)}")
                return err(f"matches more than one of: {describe(schema, components)}")
            return errors

    if "const" in schema and not _equal(value, schema["const"]):
        return err(f"expected {_show(schema['const'])}, got {_show(value)}")
    if "enum" in schema and not any(_equal(value, v) for v in schema["enum"]):
        return err(f"expected one of {', '.join(_show(v) for v in schema['enum'])}, got {_show(value)}")

    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is_type(value, t) for t in names):
            return err(f"expected {describe(schema, components)}, got {_type_of(value)} {_show(value)}")

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"] or "maximum" in schema and value > schema["maximum"] \
                or "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"] \
                or "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            return err(f"expected {describe(schema, components)}, got {_show(value)}")

    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return err(f"must be at least {schema['minLength']} characters long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return err(f"must be at most {schema['maxLength']} characters long, got {len(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            what = schema.get("description") or f"a string matching {schema['pattern']}"
            return err(f"expected {what}, got {_show(value)}")

    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return err(f"must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return err(f"must have at most {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += validate(item, schema["items"], components, path + (i,))

    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                errors += err("is required", path + (name,))
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                errors += validate(item, props[name], components, path + (name,))
            elif extra is False:
                known = ", ".join(props) or "none"
                errors += err(f"unknown field (known fields: {known})", path + (name,))
            elif isinstance(extra, Mapping):
                errors += validate(item, extra, components, path + (name,))
    return errors


def _branch_type_matches(value: Any, schema: Mapping[str, Any]) -> bool:
    t = schema.get("type")
    if t is None:
        return False
    return any(_is_type(value, x) for x in (t if isinstance(t, list) else [t]))


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1, 1 equals 1.0.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def check_supported(schema: Any, components: Mapping[str, Any] | None = None, where: str = "schema") -> None:
    """Raises ValueError when a schema uses a keyword this validator does not implement."""
    if not isinstance(schema, Mapping):
        raise ValueError(f"{where}: a schema must be an object")
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ValueError(f"{where}: unsupported keywords {sorted(unknown)}")
    if "$ref" in schema:
        _resolve(schema, components)
    for key in ("oneOf", "anyOf"):
        for i, sub in enumerate(schema.get(key, ())):
            check_supported(sub, components, f"{where}.{key}[{i}]")
    for name, sub in schema.get("properties", {}).items():
        check_supported(sub, components, f"{where}.properties.{name}")
    if isinstance(schema.get("additionalProperties"), Mapping):
        check_supported(schema["additionalProperties"], components, f"{where}.additionalProperties")
    if "items" in schema:
        check_supported(schema["items"], components, f"{where}.items")
