"""The OpenAPI 3.1 document, generated from the operation table the router
dispatches on (:data:`shared.api.routes.OPERATIONS`) and the schemas the API
validates with (:data:`shared.api.schemas.COMPONENTS`)."""
from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from .http import JSON_MEDIA_TYPE, PROBLEM_BASE, PROBLEM_MEDIA_TYPE, PROBLEM_TYPES
from .auth import ROLE_NAMES, required_role
from .router import API_PREFIX

TITLE = "Fine-tuning autopilot for Azure OpenAI"
VERSION = "1.0.0"


def _response(op, status: int) -> dict[str, Any]:
    description, schema = op.responses[status]
    out: dict[str, Any] = {"description": description}
    if schema == "Problem":
        out["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    elif schema:
        out["content"] = {JSON_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    else:
        out["content"] = {JSON_MEDIA_TYPE: {"schema": {"type": "object"}}}
    headers = op.response_headers.get(status)
    if headers:
        out["headers"] = copy.deepcopy(headers)
    return out


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    from .routes import OPERATIONS
    from .schemas import COMPONENTS

    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        item = paths.setdefault(op.openapi_path, {})
        parameters = [{"name": name, "in": "path", "required": True, "schema": schema}
                      for name, schema in op.path_schemas.items()]
        parameters += copy.deepcopy(op.parameters)
        operation: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
        if op.description:
            operation["description"] = op.description
        if parameters:
            operation["parameters"] = parameters
        if op.request_schema:
            operation["requestBody"] = {"required": True, "content": {
                JSON_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{op.request_schema}"}}}}
        responses = {str(status): _response(op, status) for status in sorted(op.responses)}
        role = ROLE_NAMES[required_role(op.method)]
        operation["x-required-role"] = role
        responses.setdefault("401", {"description": "No identity this API accepts: no signed-in principal and "
                                                    "API_KEY_ROLE is none, or a principal header that cannot be read",
                                     "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
        responses.setdefault("403", {"description": f"The caller does not hold the {role} role (`required_role`, "
                                                    f"`held_role`)",
                                     "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
        responses["500"] = {"description": "Internal error",
                            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        if op.operation_id != "getOpenApi":
            responses.setdefault("405", {"description": "Method not allowed", "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
        operation["responses"] = dict(sorted(responses.items()))
        item[op.method.lower()] = operation
        for name in re.findall(r"\{([A-Za-z_]+)\}", op.openapi_path):
            if name not in op.path_schemas:
                raise AssertionError(f"{op.operation_id}: path parameter {name!r} has no schema")
    problem_types = "\n".join(f"- `{PROBLEM_BASE}{slug}` ({status}): {title}"
                              for slug, (status, title) in PROBLEM_TYPES.items())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE, "version": VERSION,
            "description": "Starts, lists, shows and cancels fine-tuning jobs on Azure OpenAI; shows datasets and "
                           "deployments. Every error is `application/problem+json` (RFC 9457) whose `detail` "
                           "names the field at fault.\n\nWho may do what: the function key is checked on every "
                           "route; then the caller's app role (App Service authentication with Entra ID; "
                           "`x-required-role` of each operation): `Reader` for every GET, `Operator` for every "
                           "other method. A request with the key and no signed-in principal has the role "
                           "API_KEY_ROLE names. A role too low answers 403, no identity at all 401.\n\n"
                           "Problem types:\n" + problem_types,
        },
        "servers": [{"url": API_PREFIX}],
        "security": [{"functionKeyHeader": []}, {"functionKeyQuery": []}],
        "tags": [{"name": "jobs"}, {"name": "datasets"}, {"name": "deployments"}, {"name": "meta"}],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(COMPONENTS),
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may modify it)."""
    return copy.deepcopy(_document())
