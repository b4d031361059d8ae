"""Checks HTTP answers against the OpenAPI document: the operation (by method and
path template), the status code it declares, the media type, the body's schema
(JSON Schema 2020-12, with ``jsonschema``) and declared headers that must be there."""
from __future__ import annotations

import json
import re
from typing import Any, Mapping
from urllib.parse import unquote

from jsonschema import Draft202012Validator

PREFIX = "/api"


class ConformanceError(AssertionError):
    pass


class OpenApiChecker:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.doc = document
        self.components = document["components"]
        self._routes: list[tuple[re.Pattern, str]] = []
        for template in document["paths"]:
            parts = []
            for seg in template.strip("/").split("/"):
                m = re.fullmatch(r"\{([A-Za-z_]+)\}", seg)
                # The dataset name may hold '/' (sent as is or as %2F).
                parts.append(("(.+)" if m.group(1) == "name" and template.startswith("/datasets") else "([^/]+)")
                             if m else re.escape(seg))
            self._routes.append((re.compile("/" + "/".join(parts)), template))
        # Literal templates before templated ones (as the router orders them).
        self._routes.sort(key=lambda r: r[1].count("{"))
        self.seen: set[tuple[str, str, int]] = set()

    def operation(self, method: str, raw_path: str) -> tuple[str, dict[str, Any]] | None:
        path = raw_path.split("?", 1)[0]
        if path.startswith(PREFIX):
            path = path[len(PREFIX):]
        for rx, template in self._routes:
            if rx.fullmatch(path):
                op = self.doc["paths"][template].get(method.lower())
                if op is not None:
                    return template, op
                return template, {}
        return None

    def validator(self, schema: Mapping[str, Any]) -> Draft202012Validator:
        return Draft202012Validator({**schema, "components": self.components})

    def check(self, method: str, raw_path: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
        found = self.operation(method, raw_path)
        if found is None:
            raise ConformanceError(f"{method} {raw_path}: no path of the document matches")
        template, op = found
        media = (headers.get("content-type") or "").split(";")[0].strip()
        if not op:
            # A method the path does not have: the API must still answer with a problem.
            if status != 405 or media != "application/problem+json":
                raise ConformanceError(f"{method} {raw_path}: undocumented method answered {status} {media}")
            self._check_body(self.components["schemas"]["Problem"], body, method, raw_path, status)
            return
        response = op["responses"].get(str(status)) or op["responses"].get("default")
        if response is None:
            raise ConformanceError(f"{method} {template}: status {status} is not documented "
                                   f"(documented: {', '.join(op['responses'])}); body {body[:300]!r}")
        content = response.get("content") or {}
        if content and media not in content:
            raise ConformanceError(f"{method} {template} {status}: media type {media!r} is not one of {list(content)}")
        for name, header in (response.get("headers") or {}).items():
            if header.get("required") and name.lower() not in {k.lower() for k in headers}:
                raise ConformanceError(f"{method} {template} {status}: header {name} is missing")
        if status == 201 and "location" not in {k.lower() for k in headers}:
            raise ConformanceError(f"{method} {template} 201: no Location header")
        if content:
            self._check_body(content[media]["schema"], body, method, raw_path, status)
        self.seen.add((method.upper(), template, status))

    def _check_body(self, schema, body: bytes, method: str, path: str, status: int) -> None:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ConformanceError(f"{method} {path} {status}: body is not JSON: {exc}") from None
        errors = sorted(self.validator(schema).iter_errors(data), key=lambda e: list(e.path))
        if errors:
            raise ConformanceError(f"{method} {unquote(path)} {status}: body does not match its schema: " +
                                   "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]))
