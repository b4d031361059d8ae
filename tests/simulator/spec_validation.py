"""Check simulator responses against the published Swagger 2.0 descriptions.

Swagger 2.0 schemas are JSON Schema draft 4 plus a few keywords (``readOnly``,
``discriminator``, ``x-ms-*``) that draft-4 validators ignore, so
``jsonschema.Draft4Validator`` with ``$ref`` resolution through ``referencing``
is enough. On top of the schema we report *undeclared* properties (a field
the definition does not name), because the definitions allow additional
properties and a misspelt field would otherwise pass; the few extras the
simulator sends on purpose are listed in ``ALLOWED_EXTRAS``.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any, Optional

import jsonschema
from openai.types.fine_tuning import ReinforcementHyperparameters
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint
from openai.types.fine_tuning.alpha import GraderValidateResponse
from openai.types.fine_tuning.reinforcement_method import Grader as RftGrader
from openai.types.graders.multi_grader import Graders as MultiSubGrader
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

# The specs, their loader and the common-types substitute are the simulator's (it validates request
# bodies against the same descriptions): one copy.
from devstack.simulator.request_schemas import (ARM, declared_properties, COMMON_TYPES, COMMON_TYPES_REF, DATA_PLANE, SPECS,  # noqa: F401
                                                Operation, SwaggerSpec)

# Response-only definitions that are not in the spec files at all, added to the common-types substitute.
RESPONSE_TYPES: dict[str, Any] = {
    # Not in the Cognitive Services description (ARM RPC "Azure-AsyncOperation" resource); written
    # from the RPC so the operation-status bodies are checked too.
    "OperationStatus": {
        "type": "object",
        "required": ["id", "name", "status"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["InProgress", "Succeeded", "Failed", "Canceled"]},
            "startTime": {"type": "string", "format": "date-time"},
            "endTime": {"type": "string", "format": "date-time"},
            "error": {"$ref": "#/definitions/ErrorDetail"},
        },
    },
    # Azure Monitor metrics are not in the spec files either: the shape azure-mgmt-monitor deserialises
    # as ``Response`` (required fields as its models require them).
    "MetricsResponse": {
        "type": "object",
        "required": ["timespan", "value"],
        "properties": {
            "cost": {"type": "integer", "minimum": 0},
            "timespan": {"type": "string"},
            "interval": {"type": "string"},
            "namespace": {"type": "string"},
            "resourceregion": {"type": "string"},
            "value": {"type": "array", "items": {"$ref": "#/definitions/Metric"}},
        },
    },
    "LocalizableString": {"type": "object", "required": ["value"],
                          "properties": {"value": {"type": "string"}, "localizedValue": {"type": "string"}}},
    "Metric": {
        "type": "object",
        "required": ["id", "type", "name", "unit", "timeseries"],
        "properties": {
            "id": {"type": "string"}, "type": {"type": "string"},
            "name": {"$ref": "#/definitions/LocalizableString"},
            "displayDescription": {"type": "string"}, "errorCode": {"type": "string"},
            "errorMessage": {"type": "string"}, "unit": {"type": "string"},
            "timeseries": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "metadatavalues": {"type": "array", "items": {
                        "type": "object", "properties": {"name": {"$ref": "#/definitions/LocalizableString"},
                                                         "value": {"type": "string"}}}},
                    "data": {"type": "array", "items": {
                        "type": "object", "required": ["timeStamp"],
                        "properties": {"timeStamp": {"type": "string", "format": "date-time"},
                                       "average": {"type": "number"}, "minimum": {"type": "number"},
                                       "maximum": {"type": "number"}, "total": {"type": "number"},
                                       "count": {"type": "number"}}}},
                }}},
        },
    },
}

# Values of extensible enums (x-ms-enum modelAsString) the simulator sends that the description does not
# list: ARM's conventional state of a resource being updated in place; the reinforcement method, which the
# data-plane description (2025-04-01-preview) predates and the openai SDK's Method.type lists.
ENUM_EXTRAS = {("arm", "DeploymentProperties", "provisioningState"): ["Updating"],
               ("data_plane", "FineTuningMethodType", None): ["reinforcement"]}

# Fields the simulator sends that a definition does not declare, on purpose.
ALLOWED_EXTRAS = {
    "has_more",                      # FileList: the openai SDK pages files with it
    "method.supervised", "method.dpo", "method.reinforcement",  # per-method hyperparameters, as OpenAI sends
}


class Conformance:
    """Validates responses; collects violations instead of raising (hooks run inside SDK calls)."""

    def __init__(self) -> None:
        common = {"definitions": {**COMMON_TYPES["definitions"], **RESPONSE_TYPES}}
        self.data_plane = SwaggerSpec(DATA_PLANE, prefix="/openai")
        self.arm = SwaggerSpec(ARM, extra={COMMON_TYPES_REF: common})
        for (which, definition, prop), values in ENUM_EXTRAS.items():
            schema = getattr(self, which).doc["definitions"][definition]
            enum = (schema["properties"][prop] if prop else schema)["enum"]
            enum.extend(v for v in values if v not in enum)
        self.common_uri = urllib.parse.urljoin(self.arm.uri, COMMON_TYPES_REF)
        self.violations: list[str] = []
        self.checked: list[tuple[str, str, int, str, str]] = []  # (method, path, status, schema, operationId)

    # -- schema plumbing

    def _validate(self, spec: SwaggerSpec, schema: dict, body: Any) -> list[str]:
        validator = jsonschema.Draft4Validator(schema, registry=spec.registry)
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                    for e in validator.iter_errors(body)]
        problems += [f"undeclared property {p}" for p in self._undeclared(spec, schema, body)
                     if not any(p == a or p.endswith("." + a) for a in ALLOWED_EXTRAS)]
        return problems

    def _undeclared(self, spec: SwaggerSpec, schema: dict, instance: Any, path: str = "",
                    resolver=None) -> list[str]:
        resolver = resolver or spec.registry.resolver(spec.uri)
        while "$ref" in schema:
            resolved = resolver.lookup(schema["$ref"])
            schema, resolver = resolved.contents, resolved.resolver
        props, additional = declared_properties(schema, resolver)
        out: list[str] = []
        if isinstance(instance, dict):
            if props and additional is None:
                out += [f"{path}{k}" for k in instance if k not in props]
            for key, value in instance.items():
                if key in props:
                    sub, res = props[key]
                    out += self._undeclared(spec, sub, value, f"{path}{key}.", res)
                elif isinstance(additional, dict):
                    out += self._undeclared(spec, additional, value, f"{path}{key}.", resolver)
        elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
            for value in instance:
                out += self._undeclared(spec, schema["items"], value, path, resolver)
        return out

    def schema_for(self, method: str, path: str, status: int) -> Optional[tuple[SwaggerSpec, dict, str, str]]:
        """(spec, schema, schema name, operationId) for a response, or None when no description covers it."""
        common = f"{self.common_uri}#/definitions/"
        if re.search(r"/providers/Microsoft\.Insights/metrics$", path, re.I):
            name = "MetricsResponse" if status == 200 else "ErrorResponse"
            return self.arm, {"$ref": common + name}, name, "Metrics_List"
        if re.search(r"/operationResults/[^/]+$", path, re.I):
            name = "OperationStatus" if status == 200 else "ErrorResponse"
            return self.arm, {"$ref": common + name}, name, "AsyncOperation_Get"
        for spec in (self.data_plane, self.arm):
            op = spec.find(method, path)
            if op is None:
                continue
            response = op.responses.get(str(status)) or (op.responses.get("default") if status >= 400 else None)
            if response is None:
                return spec, {"not": {}}, f"<status {status} not described>", op.operation_id
            schema = response.get("schema")
            if schema is None:
                return spec, {}, "(no body)", op.operation_id
            if schema.get("type") == "file":
                return spec, {"type": "file"}, "(binary)", op.operation_id
            ref = schema.get("$ref", "")
            if ref.startswith("../"):
                return spec, {"$ref": urllib.parse.urljoin(spec.uri, ref)}, ref.rsplit("/", 1)[-1], op.operation_id
            return (spec, spec.schema_ref(ref) if ref else schema, ref.rsplit("/", 1)[-1] or "inline",
                    op.operation_id)
        return None

    def check(self, method: str, url: str, status: int, content_type: str, body: bytes) -> list[str]:
        path = urllib.parse.urlsplit(url).path
        path = re.sub(r"/{2,}", "/", path)
        path = re.sub(r"^/accounts/[^/]+(?=/openai(/|$))", "", path)  # one account's data plane (accounts.py)
        sdk = [f"{method} {path} -> {status} [openai SDK]: {p}" for p in sdk_problems(path, status, body)]
        self.violations.extend(sdk)
        found = self.schema_for(method, path, status)
        if found is None:
            return sdk
        spec, schema, name, operation_id = found
        self.checked.append((method, path, status, name, operation_id))
        if schema == {"not": {}}:
            problems = [f"status {status} is not a response the description lists for {operation_id}"]
        elif schema == {"type": "file"}:
            problems = []  # binary content: nothing to validate
        elif not body:
            problems = [] if schema == {} or status in (202, 204) else [f"empty body, expected {name}"]
        elif schema == {}:
            problems = [f"unexpected body for {name}"]
        else:
            try:
                instance = json.loads(body)
            except ValueError:
                problems = [f"body is not JSON ({content_type})"]
            else:
                problems = self._validate(spec, schema, instance)
        tagged = [f"{method} {path} -> {status} [{name}]: {p}" for p in problems]
        self.violations.extend(tagged)
        return sdk + tagged

    def validate_definition(self, spec: SwaggerSpec, definition: str, body: Any) -> list[str]:
        return self._validate(spec, spec.schema_ref(f"#/definitions/{definition}"), body)

    # -- hooks

    def httpx_hook(self):
        def hook(response) -> None:
            response.read()
            self.check(response.request.method, str(response.request.url), response.status_code,
                       response.headers.get("content-type", ""), response.content)
        return hook

    def azure_hook(self):
        def hook(pipeline_response) -> None:
            http_response = pipeline_response.http_response
            self.check(http_response.request.method, http_response.request.url, http_response.status_code,
                       http_response.headers.get("content-type", ""), http_response.body() or b"")
        return hook


# --------------------------------------------------------------------------- what the description lacks
#
# Reinforcement fine-tuning, graders and the grader-validate call are newer than the data-plane description:
# those parts of an answer are checked against the openai SDK's own (pydantic) types, validated rather than
# merely constructed. Two documented differences from the SDK's types: a multigrader's "graders" is a map of
# names to graders (the SDK types one grader), and the endpoint grader (Azure preview) is not in the SDK.

_ADAPTERS: dict[Any, TypeAdapter] = {}


def _sdk(tp: Any, value: Any, where: str) -> list[str]:
    adapter = _ADAPTERS.setdefault(tp, TypeAdapter(tp))
    try:
        adapter.validate_python(value)
    except PydanticError as exc:
        return [f"{where}: {e['msg']} at {'.'.join(map(str, e['loc']))}" for e in exc.errors()[:5]]
    return []


def grader_problems(grader: Any, where: str) -> list[str]:
    if not isinstance(grader, dict):
        return [f"{where}: not an object"]
    if grader.get("type") == "multi":
        out = [f"{where}.{k}: not a string" for k in ("name", "calculate_output") if not isinstance(grader.get(k), str)]
        subs = grader.get("graders")
        if not isinstance(subs, dict) or not subs:
            return out + [f"{where}.graders: not a map of names to graders"]
        for key, sub in subs.items():
            out += _sdk(MultiSubGrader, sub, f"{where}.graders.{key}")
        return out
    if grader.get("type") == "endpoint":
        return [] if isinstance(grader.get("url"), str) else [f"{where}.url: not a string"]
    return _sdk(RftGrader, grader, where)


def _jobs_of(path: str, doc: Any) -> list[dict]:
    if not isinstance(doc, dict):
        return []
    if re.fullmatch(r"/openai/fine_tuning/jobs", path) and isinstance(doc.get("data"), list):
        return [j for j in doc["data"] if isinstance(j, dict)]
    if re.fullmatch(r"/openai/fine_tuning/jobs(/[^/]+(/(cancel|pause|resume))?)?", path):
        return [doc]
    return []


def sdk_problems(path: str, status: int, body: bytes) -> list[str]:
    if status >= 300 or not body:
        return []
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    out: list[str] = []
    for job in _jobs_of(path, doc):
        method = job.get("method") or {}
        if method.get("type") != "reinforcement":
            continue
        config = method.get("reinforcement")
        if not isinstance(config, dict):
            out.append("method.reinforcement: missing")
            continue
        out += grader_problems(config.get("grader"), "method.reinforcement.grader")
        if "hyperparameters" in config:
            out += _sdk(ReinforcementHyperparameters, config["hyperparameters"], "method.reinforcement.hyperparameters")
    if re.fullmatch(r"/openai(/v1)?/fine_tuning/alpha/graders/validate", path):
        out += _sdk(GraderValidateResponse, {k: v for k, v in doc.items() if k != "grader"}, "(body)")
        out += grader_problems(doc.get("grader"), "grader")
    if re.fullmatch(r"/openai/fine_tuning/jobs/[^/]+/checkpoints", path):
        for i, item in enumerate(doc.get("data") or []):
            out += _sdk(FineTuningJobCheckpoint, item, f"data[{i}]")
    return out
