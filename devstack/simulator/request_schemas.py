"""Request bodies checked against the published API descriptions.

The simulator looks up the operation of a request by method and path template in
the Swagger 2.0 documents it follows (authoring data plane ``2025-04-01-preview``
under ``/openai``, ARM ``Microsoft.CognitiveServices`` ``2025-06-01``), takes the
schema of its ``body`` parameter (or its ``formData`` parameters), and validates
the body with ``jsonschema`` (draft 4, which Swagger 2.0 schemas are, ``$ref``
resolved through ``referencing``). A body the description refuses raises
:class:`BodyRefused` naming the offending field; the route layer answers it with
the surface's 400.

Swagger 2.0 read for a *request* (each point is how the description is meant to be
read, not a relaxation of it):

* ``readOnly`` properties are ignored in a request (the server computes them), unless
  the schema lists them as required (the data plane's shared ``Purpose`` definition is
  marked read-only but is required in ``FileImport``).
* ``discriminator``: an object is validated against the definition its discriminator
  value names: ``x-ms-discriminator-value``, else the definition's name, else (this
  description omits the value on its method types) the definition's name without the
  suffix it shares with its base, case-insensitively (``dpo`` -> ``DpoMethodRequest``).
  An unknown value is validated against the declared type.
* ``x-ms-enum`` with ``modelAsString: true`` is an extensible enum: other strings are
  allowed (AutoRest: "no validation will happen").
* ``x-nullable: true`` allows ``null``; anywhere else ``null`` is a wrong type.
* ``format`` ``int32`` / ``int64`` bound integers; other formats are not checked.
* No ``additionalProperties`` means other properties are allowed.

The same loader serves the tests' response conformance (``tests/simulator/spec_validation.py``).
"""
from __future__ import annotations

import copy
import json
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import jsonschema
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = ["SPECS", "DATA_PLANE", "ARM", "COMMON_TYPES_REF", "COMMON_TYPES", "SwaggerSpec", "Operation",
           "RequestSchemas", "BodyRefused", "specs_dir"]


def specs_dir() -> Path:
    """The published API descriptions: ``$SPECS_DIR``, else ``shared/specs/azure-openai`` beside the checkout."""
    return Path(os.environ.get("SPECS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "specs" / "azure-openai")


SPECS = specs_dir()
DATA_PLANE = SPECS / "data-plane/AzureOpenAI/authoring/preview/2025-04-01-preview/azureopenai.json"
ARM = SPECS / "resource-manager/Microsoft.CognitiveServices/stable/2025-06-01/cognitiveservices.json"

# The ARM description refers to ../../../../../common-types/resource-management/v2/types.json, which is
# not in the spec files we have. This is a small local substitute for the definitions it uses, written
# from the ARM resource provider contract (common-types v2): Resource / ProxyResource (id, name, type,
# systemData, all read-only), systemData, and the ARM error envelope. ErrorDetail requires code and
# message here (the RPC requires both; common-types leaves them optional), so the check is stricter.
COMMON_TYPES_REF = "../../../../../common-types/resource-management/v2/types.json"
COMMON_TYPES: dict[str, Any] = {
    "definitions": {
        "Resource": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "readOnly": True},
                "name": {"type": "string", "readOnly": True},
                "type": {"type": "string", "readOnly": True},
                "systemData": {"$ref": "#/definitions/systemData", "readOnly": True},
            },
        },
        "ProxyResource": {"type": "object", "allOf": [{"$ref": "#/definitions/Resource"}]},
        "AzureEntityResource": {"type": "object", "allOf": [{"$ref": "#/definitions/Resource"}],
                                "properties": {"etag": {"type": "string", "readOnly": True}}},
        "systemData": {
            "type": "object",
            "readOnly": True,
            "properties": {
                "createdBy": {"type": "string"},
                "createdByType": {"type": "string", "enum": ["User", "Application", "ManagedIdentity", "Key"]},
                "createdAt": {"type": "string", "format": "date-time"},
                "lastModifiedBy": {"type": "string"},
                "lastModifiedByType": {"type": "string",
                                       "enum": ["User", "Application", "ManagedIdentity", "Key"]},
                "lastModifiedAt": {"type": "string", "format": "date-time"},
            },
        },
        "ErrorAdditionalInfo": {"type": "object", "properties": {"type": {"type": "string"}, "info": {}}},
        "ErrorDetail": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "target": {"type": "string"},
                "details": {"type": "array", "items": {"$ref": "#/definitions/ErrorDetail"}},
                "additionalInfo": {"type": "array", "items": {"$ref": "#/definitions/ErrorAdditionalInfo"}},
            },
        },
        "ErrorResponse": {"type": "object", "required": ["error"],
                          "properties": {"error": {"$ref": "#/definitions/ErrorDetail"}}},
    }
}


# --------------------------------------------------------------------------- loading


@dataclass
class Operation:
    spec: "SwaggerSpec"
    method: str
    template: str
    regex: re.Pattern
    responses: dict
    operation_id: str
    parameters: list = field(default_factory=list)  # resolved where local (#/parameters/...)

    @property
    def body_parameter(self) -> Optional[dict]:
        return next((p for p in self.parameters if p.get("in") == "body"), None)

    @property
    def form_parameters(self) -> list[dict]:
        return [p for p in self.parameters if p.get("in") == "formData"]


class SwaggerSpec:
    """One Swagger 2.0 document: its operations by method and path, and a ``$ref`` registry."""

    def __init__(self, path: Path, prefix: str = "", extra: Optional[Mapping[str, dict]] = None) -> None:
        if not path.is_file():
            raise RuntimeError(f"the published API description {path} is missing: the simulator and its tests need "
                               f"../shared/specs/azure-openai beside the checkout (or SPECS_DIR)")
        self.path = path
        self.doc = json.loads(path.read_text())
        self.uri = path.resolve().as_uri()
        self.prefix = prefix
        self.extra: dict[str, dict] = {urllib.parse.urljoin(self.uri, rel): doc for rel, doc in (extra or {}).items()}
        registry = Registry().with_resource(self.uri, Resource(contents=self.doc, specification=DRAFT4))
        for uri, doc in self.extra.items():
            registry = registry.with_resource(uri, Resource(contents=doc, specification=DRAFT4))
        self.registry = registry
        self.operations: list[Operation] = []
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(prefix + template)) + "$"
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method == "parameters":
                    continue
                params = [self._parameter(p) for p in [*shared, *op.get("parameters", [])]]
                self.operations.append(Operation(self, method.upper(), template, re.compile(pattern, re.I),
                                                 op.get("responses", {}), op.get("operationId", ""), params))
        # Literal segments before templated ones (``/files/import`` before ``/files/{file-id}``).
        self.operations.sort(key=lambda o: o.template.count("{"))

    def _parameter(self, p: dict) -> dict:
        ref = p.get("$ref", "")
        if ref.startswith("#/parameters/"):
            return self.doc.get("parameters", {}).get(ref.rsplit("/", 1)[-1], p)
        return p  # common-types parameters (path and query ones only) stay unresolved

    def schema_ref(self, ref: str) -> dict:
        return {"$ref": urllib.parse.urljoin(self.uri, ref)}

    def find(self, method: str, path: str) -> Optional[Operation]:
        for op in self.operations:
            if op.method == method.upper() and op.regex.match(path):
                return op
        return None


# --------------------------------------------------------------------------- the request view of a document


def _local_definition(ref: Any) -> Optional[str]:
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        return ref[len("#/definitions/"):]
    return None


def _common_suffix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


class _RequestView:
    """A copy of a document rewritten for validating requests (see the module docstring); ``inline``
    schemas (operation bodies, forms) are added as definitions under their keys."""

    def __init__(self, doc: dict, inline: Optional[Mapping[str, dict]] = None) -> None:
        self.source = doc
        self.doc = copy.deepcopy(doc)
        self.defs: dict[str, dict] = self.doc.setdefault("definitions", {})
        self._hierarchies()
        for name in list(self.defs):
            self.defs[name] = self.walk(self.defs[name], top=True)
        for key, schema in (inline or {}).items():
            self.defs[key] = self.walk(copy.deepcopy(schema))

    # -- polymorphism
    def _hierarchies(self) -> None:
        parents = {name: [d for d in (_local_definition(x.get("$ref")) for x in s.get("allOf", [])
                                      if isinstance(x, dict)) if d in self.defs]
                   for name, s in self.defs.items() if isinstance(s, dict)}

        def root_of(name: str, seen: frozenset = frozenset()) -> Optional[str]:
            if name in seen or name not in self.defs:
                return None
            if "discriminator" in self.defs[name]:
                return name
            for parent in parents.get(name, []):
                found = root_of(parent, seen | {name})
                if found:
                    return found
            return None

        self.root: dict[str, str] = {}
        self.values: dict[str, dict[str, str]] = {}
        self.aliases: dict[str, dict[str, str]] = {}
        for name in self.defs:
            root = root_of(name)
            if root is None:
                continue
            self.root[name] = root
            value = self.defs[name].get("x-ms-discriminator-value", name)
            self.values.setdefault(root, {})[value] = name
            if name != root and "x-ms-discriminator-value" not in self.defs[name]:
                cut = _common_suffix(name, root)
                if 0 < cut < len(name):
                    self.aliases.setdefault(root, {})[name[:-cut].lower()] = name

    def _polymorphic(self, ref: str, target: str) -> dict:
        root = self.root[target]
        return {"x-sim-polymorphic": {"ref": ref, "property": self.defs[root]["discriminator"],
                                      "values": {v: f"#/definitions/{n}" for v, n in self.values.get(root, {}).items()},
                                      "aliases": {v: f"#/definitions/{n}" for v, n in
                                                  self.aliases.get(root, {}).items()}}}

    # -- read-only
    def _read_only(self, schema: Any) -> bool:
        if not isinstance(schema, dict):
            return False
        if schema.get("readOnly") is True:
            return True
        target = _local_definition(schema.get("$ref"))
        return bool(target and isinstance(self.source.get("definitions", {}).get(target), dict)
                    and self.source["definitions"][target].get("readOnly") is True)

    # -- the rewrite
    def walk(self, node: Any, top: bool = False, inherit: bool = False) -> Any:
        if not isinstance(node, dict):
            return node
        nullable = node.get("x-nullable") is True
        if "$ref" in node:
            target = _local_definition(node["$ref"])
            out: dict = {"$ref": node["$ref"]}
            if not inherit and target in self.root:
                out = self._polymorphic(node["$ref"], target)
            return {"anyOf": [{"type": "null"}, out]} if nullable else out
        node = dict(node)
        if "enum" in node and (node.get("x-ms-enum") or {}).get("modelAsString") is True:
            del node["enum"]
        if nullable and "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            node["type"] = [*types, "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        required = set(node.get("required") or [])
        if isinstance(node.get("properties"), dict):
            node["properties"] = {
                name: ({} if self._read_only(sub) and name not in required else self.walk(sub))
                for name, sub in node["properties"].items()}
        if isinstance(node.get("additionalProperties"), dict):
            node["additionalProperties"] = self.walk(node["additionalProperties"])
        if isinstance(node.get("items"), dict):
            node["items"] = self.walk(node["items"])
        elif isinstance(node.get("items"), list):
            node["items"] = [self.walk(x) for x in node["items"]]
        if isinstance(node.get("allOf"), list):
            node["allOf"] = [self.walk(x, inherit=top) for x in node["allOf"]]
        for key in ("anyOf", "oneOf"):
            if isinstance(node.get(key), list):
                node[key] = [self.walk(x) for x in node[key]]
        if isinstance(node.get("not"), dict):
            node["not"] = self.walk(node["not"])
        return node


def _polymorphic_keyword(validator, value, instance, schema):
    target = value["ref"]
    if isinstance(instance, dict) and isinstance(instance.get(value["property"]), str):
        given = instance[value["property"]]
        target = value["values"].get(given) or value["aliases"].get(given.lower()) or target
    yield from validator.descend(instance, {"$ref": target})


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("int32")
def _int32(value: Any) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -2**31 <= value < 2**31


@_FORMATS.checks("int64")
def _int64(value: Any) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -2**63 <= value < 2**63


_RequestValidator = jsonschema.validators.extend(jsonschema.Draft4Validator,
                                                 {"x-sim-polymorphic": _polymorphic_keyword})


# --------------------------------------------------------------------------- refusals


class BodyRefused(ValueError):
    """A request body the operation's published schema refuses."""

    def __init__(self, field_path: str, message: str, operation_id: str, problems: list[str]) -> None:
        super().__init__(message)
        self.field = field_path
        self.message = message
        self.operation_id = operation_id
        self.problems = problems


def _field(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _alternative(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "a valid value"
    if "enum" in schema:
        return " or ".join(json.dumps(v) for v in schema["enum"])
    declared = schema.get("type")
    articles = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
                "null": "null", "array": "an array", "object": "an object"}
    if isinstance(declared, str):
        return articles.get(declared, declared)
    if isinstance(declared, list):
        return " or ".join(articles.get(t, t) for t in declared)
    return "a valid value"


def _describe(error: ValidationError) -> tuple[str, str]:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next((p for p in error.validator_value if p not in error.instance), None)
        if missing is not None:
            name = _field([*path, missing])
            return name, f"'{name}' is required"
    name = _field(path) or "(body)"
    if error.validator == "type":
        return name, f"'{name}' must be of type {' or '.join(error.validator_value) if isinstance(error.validator_value, list) else error.validator_value}, got {json.dumps(error.instance)[:80]}"
    if error.validator == "format":
        bits = {"int32": "a 32-bit integer", "int64": "a 64-bit integer"}.get(error.validator_value, error.validator_value)
        return name, f"'{name}' must be {bits}, got {json.dumps(error.instance)[:80]}"
    if error.validator == "enum":
        return name, f"'{name}' must be one of {', '.join(map(str, error.validator_value))}, got {json.dumps(error.instance)[:80]}"
    if error.validator in ("anyOf", "oneOf") and isinstance(error.validator_value, list):
        return name, f"'{name}' must be {' or '.join(dict.fromkeys(map(_alternative, error.validator_value)))}, got {json.dumps(error.instance)[:80]}"
    return name, f"'{name}': {error.message}"


# --------------------------------------------------------------------------- the simulator's entry


def _form_schema(params: list[dict]) -> dict:
    keys = ("type", "format", "enum", "x-ms-enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
            "items", "x-nullable")
    return {"type": "object",
            "required": [p["name"] for p in params if p.get("required") and p.get("type") != "file"],
            "properties": {p["name"]: {k: p[k] for k in keys if k in p} for p in params if p.get("type") != "file"}}


class RequestSchemas:
    """Validates request bodies (JSON and multipart forms) against both descriptions."""

    def __init__(self) -> None:
        self.data_plane = SwaggerSpec(DATA_PLANE, prefix="/openai")
        self.arm = SwaggerSpec(ARM, extra={COMMON_TYPES_REF: COMMON_TYPES})
        self._keys: dict[int, str] = {}
        self._validators: dict[int, Any] = {}
        for spec in (self.data_plane, self.arm):
            inline: dict[str, dict] = {}
            for i, op in enumerate(spec.operations):
                if op.body_parameter is not None:
                    inline[f"x-sim-request-{i}"] = op.body_parameter.get("schema") or {}
                elif op.form_parameters:
                    inline[f"x-sim-request-{i}"] = _form_schema(op.form_parameters)
                else:
                    continue
                self._keys[id(op)] = f"x-sim-request-{i}"
            registry = Registry().with_resource(spec.uri, Resource(contents=_RequestView(spec.doc, inline).doc,
                                                                   specification=DRAFT4))
            for uri, doc in spec.extra.items():
                registry = registry.with_resource(uri, Resource(contents=_RequestView(doc).doc,
                                                                specification=DRAFT4))
            for op in spec.operations:
                if id(op) in self._keys:
                    self._validators[id(op)] = _RequestValidator(
                        {"$ref": f"{spec.uri}#/definitions/{self._keys[id(op)]}"}, registry=registry,
                        format_checker=_FORMATS)

    def operation(self, method: str, path: str) -> Optional[Operation]:
        for spec in (self.data_plane, self.arm):
            op = spec.find(method, path)
            if op is not None:
                return op
        return None

    def _refuse(self, op: Operation, errors: list[ValidationError]) -> None:
        _refuse_errors(op.operation_id, errors)

    def check_json(self, method: str, path: str, body: Any) -> Optional[Operation]:
        """Raises :class:`BodyRefused` when ``body`` does not match the operation's body schema (and,
        for what the description predates, the SDK-derived schema: see :data:`SDK_CHECKS`).
        Returns the operation (None when no description covers the request)."""
        op = self.operation(method, path)
        if op is not None and op.body_parameter is not None:
            self._refuse(op, list(self._validators[id(op)].iter_errors(body)))
        for check_method, pattern, operation_id, check in SDK_CHECKS:
            if check_method == method.upper() and pattern.match(path):
                _refuse_errors(operation_id, check(body))
        return op

    def check_form(self, method: str, path: str, fields: Mapping[str, Any],
                   files: Iterable[str]) -> Optional[Operation]:
        """A multipart form: ``fields`` (name -> text value), ``files`` (names of the file parts)."""
        op = self.operation(method, path)
        if op is None or not op.form_parameters:
            return op
        files = set(files)
        for p in op.form_parameters:
            if p.get("type") == "file" and p.get("required") and p["name"] not in files:
                message = f"'{p['name']}' is required (a file part of the multipart form)"
                raise BodyRefused(p["name"], message, op.operation_id, [message])
        values: dict[str, Any] = {}
        for p in op.form_parameters:
            if p.get("type") == "file" or p["name"] not in fields:
                continue
            value = fields[p["name"]]
            if isinstance(value, str) and p.get("type") in ("integer", "number", "boolean"):
                value = _form_scalar(value, p["type"])
            values[p["name"]] = value
        self._refuse(op, list(self._validators[id(op)].iter_errors(values)))
        return op

    # -- what a typed resource provider keeps of a body

    def writable(self, method: str, path: str, body: Any) -> Any:
        """``body`` without what the body schema marks read-only and without undeclared properties
        (what a resource provider's typed model keeps of a PUT)."""
        op = self.operation(method, path)
        param = op.body_parameter if op is not None else None
        if param is None:
            return body
        spec = op.spec
        return _prune(param.get("schema") or {}, body, spec.registry.resolver(spec.uri))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "?")


def _admits(schema: Any, value: Any) -> bool:
    """Whether a branch's declared ``type`` (if any) admits the value's JSON type."""
    declared = schema.get("type") if isinstance(schema, dict) else None
    if declared is None:
        return True
    types = declared if isinstance(declared, list) else [declared]
    kind = _json_type(value)
    return kind in types or (kind == "integer" and "number" in types)


def _scalar(schema: Any) -> bool:
    declared = schema.get("type") if isinstance(schema, dict) else None
    types = declared if isinstance(declared, list) else [declared]
    return isinstance(schema, dict) and ("enum" in schema or (declared is not None and all(
        t in ("string", "integer", "number", "boolean", "null") for t in types)))


def pick_error(errors: list) -> ValidationError:
    """The error to report: jsonschema's most relevant one; inside an ``anyOf``/``oneOf``, the most
    relevant error of the branch of the value's JSON type that it came nearest to (fewest errors),
    unless no branch is of its type or all are scalars: then the alternatives are described
    (``'x' must be "auto" or an integer``, see :func:`_describe`)."""
    best = max(errors, key=relevance)
    while best.validator in ("anyOf", "oneOf") and best.context and isinstance(best.validator_value, list):
        branches = best.validator_value
        fitting = [i for i, b in enumerate(branches) if _admits(b, best.instance)]
        if all(_scalar(b) for b in branches) or not fitting:
            break
        by_branch: dict[int, list] = {}
        for e in best.context:
            if e.relative_schema_path and e.relative_schema_path[0] in fitting:
                by_branch.setdefault(e.relative_schema_path[0], []).append(e)
        if not by_branch:
            break
        closest = min(by_branch, key=lambda i: (len(by_branch[i]), i))  # the branch it came nearest to
        best = max(by_branch[closest], key=relevance)
    return best


def _refuse_errors(operation_id: str, errors: list) -> None:
    """Raise BodyRefused naming the field of the error :func:`pick_error` reports first."""
    if not errors:
        return
    first = pick_error(errors)
    ancestors = set()
    parent = first.parent
    while parent is not None:  # the anyOf that holds the reported error says the same, less precisely
        ancestors.add(id(parent))
        parent = parent.parent
    errors = [first, *[e for e in errors if e is not first and id(e) not in ancestors]]
    described = [_describe(e) for e in errors]
    field_path = described[0][0]
    problems = list(dict.fromkeys(m for _, m in described))  # one problem once (inherited rules repeat)
    text = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
    raise BodyRefused(field_path, text, operation_id, problems)


def _rft_method(body: Any) -> list:
    """A job whose ``method.type`` is "reinforcement": ``method`` against the SDK-derived RFT schema
    (the published description's method types are supervised and dpo only)."""
    from .graders import RFT_BODY_SCHEMA, check_body

    method = body.get("method") if isinstance(body, dict) else None
    if isinstance(method, dict) and method.get("type") == "reinforcement":
        return check_body(RFT_BODY_SCHEMA, body)
    return []


def _grader_body(body: Any) -> list:
    from .graders import VALIDATE_BODY_SCHEMA, check_body

    return check_body(VALIDATE_BODY_SCHEMA, body)


# Bodies the published description predates, checked against schemas built from the openai SDK's
# request types (graders.py): (method, path, an operation name for messages, check -> errors).
SDK_CHECKS = [
    ("POST", re.compile(r"^/openai/fine_tuning/jobs$"), "FineTuning_Create", _rft_method),
    ("POST", re.compile(r"^/openai(/v1)?/fine_tuning/alpha/graders/validate$"), "FineTuning_ValidateGrader",
     _grader_body),
]


def _form_scalar(text: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
    except ValueError:
        pass
    return text


def declared_properties(schema: dict, resolver) -> tuple[dict[str, tuple[dict, Any]], Any]:
    """The properties an object schema declares, its own and its ``allOf`` members' ($refs
    followed), each with the resolver of where it was declared; and its additionalProperties."""
    props: dict[str, tuple[dict, Any]] = {}
    additional = schema.get("additionalProperties")
    stack = [(schema, resolver)]
    while stack:
        current, res = stack.pop()
        while "$ref" in current:
            resolved = res.lookup(current["$ref"])
            current, res = resolved.contents, resolved.resolver
        for name, sub in current.get("properties", {}).items():
            props.setdefault(name, (sub, res))
        stack.extend((member, res) for member in current.get("allOf", []))
    return props, additional


def _prune(schema: dict, instance: Any, resolver) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver = resolved.contents, resolved.resolver
    if not isinstance(schema, dict):
        return instance
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_prune(schema["items"], x, resolver) for x in instance]
    if not isinstance(instance, dict):
        return instance
    props, additional = declared_properties(schema, resolver)
    if not props and not isinstance(additional, dict):
        return instance  # a free-form object
    out: dict[str, Any] = {}
    for key, value in instance.items():
        if key in props:
            sub, res = props[key]
            target = sub
            read_only = sub.get("readOnly") is True
            if not read_only and "$ref" in sub:
                target_contents = res.lookup(sub["$ref"]).contents
                read_only = isinstance(target_contents, dict) and target_contents.get("readOnly") is True
            if read_only:
                continue
            out[key] = _prune(target, value, res)
        elif isinstance(additional, dict):
            out[key] = _prune(additional, value, resolver)
    return out
