"""JSON schemas built from the installed ``openai`` SDK's request types (its TypedDicts).

The published Azure description (``2025-04-01-preview``) predates reinforcement fine-tuning
and graders; the SDK's own parameter types are the most precise description of those bodies
we have. :func:`schema_of` turns a typing annotation into a JSON schema (draft 4, plus the
simulator's ``x-sim-discriminated`` keyword) the same way every time:

* a ``TypedDict`` is an object; its keys marked ``Required[...]`` are required; other keys
  are allowed (as with the Swagger descriptions, no ``additionalProperties: false``);
* ``Literal`` is an ``enum``; ``str``/``int``/``float``/``bool`` the JSON types (``float``
  is any number, ``int`` an integer, ``bool`` never a number);
* ``Iterable``/``Sequence``/``List``/``SequenceNotStr`` are arrays, ``Dict``/``Mapping``
  objects with ``additionalProperties``;
* ``Optional[X]`` allows ``null``;
* a ``Union`` whose object members are TypedDicts each with a ``type: Literal[...]`` key is
  *discriminated*: the object is checked against the member its ``type`` names (an unknown
  ``type`` is refused naming the field), not against all of them at once.
"""
from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any, Mapping

import typing_extensions as te
from jsonschema.exceptions import ValidationError

__all__ = ["schema_of", "discriminated", "discriminated_keyword", "DISCRIMINATED"]

DISCRIMINATED = "x-sim-discriminated"

_ARRAYS = {list, tuple, set, frozenset, collections.abc.Iterable, collections.abc.Sequence,
           collections.abc.Collection, collections.abc.MutableSequence}
_MAPS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}
_WRAPPERS = {typing.NotRequired, te.NotRequired, te.ReadOnly}


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(annotation without Required/NotRequired/Annotated, whether Required was said)."""
    required = False
    while True:
        origin = typing.get_origin(tp)
        if origin in (typing.Required, te.Required):
            required = True
            tp = typing.get_args(tp)[0]
        elif origin in _WRAPPERS:
            tp = typing.get_args(tp)[0]
        elif origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        else:
            return tp, required


def _literal_type(values: tuple) -> list[str]:
    kinds = []
    for v in values:
        kind = ("boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else
                "number" if isinstance(v, float) else "string" if isinstance(v, str) else "null")
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def _type_key(member: Any) -> Any:
    """The single ``type`` literal of a TypedDict member, or None."""
    if not te.is_typeddict(member):
        return None
    hints = typing.get_type_hints(member, include_extras=True)
    if "type" not in hints:
        return None
    tp, _ = _unwrap(hints["type"])
    if typing.get_origin(tp) in (typing.Literal, te.Literal) and len(typing.get_args(tp)) == 1:
        return typing.get_args(tp)[0]
    return None


def discriminated(mapping: Mapping[str, dict], property_name: str = "type") -> dict:
    """An object checked against the schema its ``property_name`` value names."""
    return {"type": "object", "required": [property_name],
            DISCRIMINATED: {"property": property_name, "mapping": dict(mapping)}}


def _typed_dict(tp: Any, seen: frozenset) -> dict:
    if tp in seen:  # the SDK's request types are not recursive; be safe anyway
        return {"type": "object"}
    seen = seen | {tp}
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, hint in typing.get_type_hints(tp, include_extras=True).items():
        inner, is_required = _unwrap(hint)
        props[name] = _schema(inner, seen)
        if is_required or name in getattr(tp, "__required_keys__", frozenset()):
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _schema(tp: Any, seen: frozenset) -> dict:
    tp, _ = _unwrap(tp)
    if tp is Any or tp is object:
        return {}
    if tp is type(None):
        return {"type": "null"}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if te.is_typeddict(tp):
        return _typed_dict(tp, seen)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Literal, te.Literal):
        return {"type": _literal_type(args) if len(_literal_type(args)) > 1 else _literal_type(args)[0],
                "enum": list(args)}
    if origin is typing.Union or isinstance(tp, types.UnionType):
        members = [a for a in args if a is not type(None)]
        nullable = len(members) != len(args)
        tagged = {m: _type_key(m) for m in members}
        objects = [m for m in members if tagged[m] is not None]
        others = [m for m in members if tagged[m] is None]
        parts = [_schema(m, seen) for m in others]
        if len(objects) > 1:
            parts.append(discriminated({tagged[m]: _schema(m, seen) for m in objects}))
        else:
            parts += [_schema(m, seen) for m in objects]
        if nullable:
            parts.append({"type": "null"})
        return parts[0] if len(parts) == 1 else {"anyOf": parts}
    if origin in _MAPS:
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": _schema(value, seen)}
    if origin in _ARRAYS or (isinstance(origin, type) and issubclass(origin, collections.abc.Iterable)
                             and origin not in (str, bytes)):
        return {"type": "array", "items": _schema(args[0], seen) if args else {}}
    if getattr(tp, "__name__", "") == "SequenceNotStr" or getattr(origin, "__name__", "") == "SequenceNotStr":
        return {"type": "array", "items": _schema(args[0], seen) if args else {}}
    raise TypeError(f"no JSON schema for the annotation {tp!r}")


def schema_of(tp: Any) -> dict:
    """The JSON schema of a typing annotation (a TypedDict, a Union of them, ...)."""
    return _schema(tp, frozenset())


def discriminated_keyword(validator, value, instance, schema):
    """``x-sim-discriminated``: descend into the schema the discriminator value names."""
    if not isinstance(instance, dict):
        return
    prop = value["property"]
    if prop not in instance:
        return  # "required" reports it
    given = instance[prop]
    target = value["mapping"].get(given) if isinstance(given, str) else None
    if target is None:
        names = list(value["mapping"])
        yield ValidationError(f"{given!r} is not one of {names}", validator="enum", validator_value=names,
                              instance=given, path=[prop])
        return
    yield from validator.descend(instance, target)
