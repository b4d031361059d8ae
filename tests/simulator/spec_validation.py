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
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# The published API descriptions, given beside the checkout (read-only, present in CI too).
# SPECS_DIR overrides the location.
SPECS = Path(os.environ.get("SPECS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "specs" / "azure-openai")
if not SPECS.is_dir():
    raise RuntimeError(f"the published API descriptions are not at {SPECS}: the conformance tests need "
                       f"../shared/specs/azure-openai beside the checkout (or SPECS_DIR)")
DATA_PLANE = SPECS / "data-plane/AzureOpenAI/authoring/preview/2025-04-01-preview/azureopenai.json"
ARM = SPECS / "resource-manager/Microsoft.CognitiveServices/stable/2025-06-01/cognitiveservices.json"

# The ARM description refers to ../../../../../common-types/resource-management/v2/types.json, which is
# not in the spec files we have. This is a small local substitute for the definitions it uses, written
# from the ARM resource provider contract (common-types v2): Resource / ProxyResource (id, name, type,
# systemData, all read-only), systemData, and the ARM error envelope. ErrorDetail requires code and
# message here (the RPC requires both; common-types leaves them optional), so the check is stricter.
COMMON_TYPES: dict[str, Any] = {
    "definitions": {
        "Resource": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "readOnly": True},
                "name": {"type": "string", "readOnly": True},
                "type": {"type": "string", "readOnly": True},
                "systemData": {"$ref": "#/definitions/systemData"},
            },
        },
        "ProxyResource": {"type": "object", "allOf": [{"$ref": "#/definitions/Resource"}]},
        "AzureEntityResource": {"type": "object", "allOf": [{"$ref": "#/definitions/Resource"}],
                                "properties": {"etag": {"type": "string", "readOnly": True}}},
        "systemData": {
            "type": "object",
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
        # Not in the Cognitive Services description at all (ARM RPC "Azure-AsyncOperation" resource);
        # written from the RPC so the operation-status bodies are checked too.
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
}

# Fields the simulator sends that a definition does not declare, on purpose.
ALLOWED_EXTRAS = {
    "has_more",                      # FileList: the openai SDK pages files with it
    "method.supervised", "method.dpo", "method.reinforcement",  # per-method hyperparameters, as OpenAI sends
}


@dataclass
class Operation:
    spec: "SwaggerSpec"
    method: str
    template: str
    regex: re.Pattern
    responses: dict
    operation_id: str


class SwaggerSpec:
    def __init__(self, path: Path, prefix: str = "", extra: Optional[dict[str, dict]] = None) -> None:
        self.doc = json.loads(path.read_text())
        self.uri = path.resolve().as_uri()
        self.prefix = prefix
        registry = Registry().with_resource(self.uri, Resource(contents=self.doc, specification=DRAFT4))
        for relative, doc in (extra or {}).items():
            registry = registry.with_resource(urllib.parse.urljoin(self.uri, relative),
                                              Resource(contents=doc, specification=DRAFT4))
        self.registry = registry
        self.operations: list[Operation] = []
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(prefix + template)) + "$"
            for method, op in item.items():
                if method == "parameters":
                    continue
                self.operations.append(Operation(self, method.upper(), template, re.compile(pattern, re.I),
                                                 op.get("responses", {}), op.get("operationId", "")))

    def schema_ref(self, ref: str) -> dict:
        return {"$ref": urllib.parse.urljoin(self.uri, ref)}

    def find(self, method: str, path: str) -> Optional[Operation]:
        for op in self.operations:
            if op.method == method.upper() and op.regex.match(path):
                return op
        return None


class Conformance:
    """Validates responses; collects violations instead of raising (hooks run inside SDK calls)."""

    def __init__(self) -> None:
        common = "../../../../../common-types/resource-management/v2/types.json"
        self.data_plane = SwaggerSpec(DATA_PLANE, prefix="/openai")
        self.arm = SwaggerSpec(ARM, extra={common: COMMON_TYPES})
        self.common_uri = urllib.parse.urljoin(self.arm.uri, common)
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
        found = self.schema_for(method, path, status)
        if found is None:
            return []
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
        return tagged

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
