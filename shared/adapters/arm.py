"""ARM deployments of one Azure OpenAI account (Microsoft.CognitiveServices).

Nothing here waits for a long-running operation: a create or a delete is started
with ``polling=False`` and its outcome is read later (:meth:`Arm.get`), by a later
step of the deployment life cycle. Every failure is raised as an
:class:`~shared.core.errors.AzureError`.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.clock import parse_time
from ..core.errors import AzureError, ErrorKind, classify, kind_for
from ..policies.naming import is_valid_deployment_name

log = logging.getLogger(__name__)

__all__ = ["DeploymentInfo", "Arm", "SERVING", "FAILED", "DELETING", "TERMINAL", "OWNER_TAG", "OWNER",
           "deployment_body"]

# ARM provisioning states, each set declared once.
SERVING = "Succeeded"
FAILED = frozenset({"Failed", "Canceled", "Cancelled"})
DELETING = frozenset({"Deleting"})
TERMINAL = frozenset({SERVING}) | FAILED
# The tag that marks a deployment this service created (and the job it was made for).
OWNER_TAG, OWNER = "managed-by", "ft-autopilot"
JOB_TAG = "ft-autopilot-job"
# The deployment properties a PUT may set (Microsoft.CognitiveServices 2025-06-01
# DeploymentProperties without its read-only ones): what a faithful re-creation sends again.
WRITABLE_PROPERTIES = ("model", "scaleSettings", "raiPolicyName", "versionUpgradeOption", "capacitySettings",
                       "parentDeploymentName")


def deployment_body(model: str, sku: str, capacity: int, *, job_id: str | None = None,
                    snapshot: dict[str, Any] | None = None, source: str | None = None) -> dict[str, Any]:
    """The PUT body of a deployment: from a snapshot of it as ARM returned it (every
    writable property, tags, SKU) with the model set, else a new one with this service's
    tags. Either way the owner tag is there."""
    if snapshot:
        body = {"sku": dict(snapshot.get("sku") or {"name": sku, "capacity": int(capacity)}),
                "tags": dict(snapshot.get("tags") or {}),
                "properties": {k: v for k, v in (snapshot.get("properties") or {}).items()
                               if k in WRITABLE_PROPERTIES}}
    else:
        body = {"sku": {"name": sku, "capacity": int(capacity)}, "tags": {}, "properties": {}}
    model_props = dict(body["properties"].get("model") or {})
    if model_props.get("name") != model:
        model_props = {"format": model_props.get("format") or "OpenAI", "name": model, "version": "1"}
    model_props.setdefault("format", "OpenAI")
    model_props.setdefault("version", "1")
    if source:  # trained in another account of the pool: ARM deploys it from there
        model_props["source"] = source
    body["properties"]["model"] = model_props
    body["tags"][OWNER_TAG] = OWNER
    if job_id:
        body["tags"][JOB_TAG] = job_id
    return body


@dataclass
class DeploymentInfo:
    """One ARM deployment as read."""

    name: str
    model: str | None
    sku: str | None
    capacity: int | None
    provisioning_state: str | None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    model_version: str | None = None
    tags: dict[str, str] | None = None
    raw: dict[str, Any] | None = None           # as ARM answered it

    @property
    def ours(self) -> bool:
        """Created by this service (tagged as such)."""
        return (self.tags or {}).get(OWNER_TAG) == OWNER

    @property
    def job_id(self) -> str | None:
        return (self.tags or {}).get(JOB_TAG)

    @property
    def snapshot(self) -> dict[str, Any] | None:
        """What a faithful re-creation needs: SKU, tags and the writable properties."""
        if not self.raw:
            return None
        props = self.raw.get("properties") or {}
        return {"sku": self.raw.get("sku"), "tags": self.raw.get("tags") or {},
                "properties": {k: v for k, v in props.items() if k in WRITABLE_PROPERTIES}}

    @property
    def fine_tuned(self) -> bool:
        return bool(self.model) and (".ft-" in self.model or self.model.startswith("ft:"))

    @property
    def serving(self) -> bool:
        return self.provisioning_state == SERVING

    @property
    def failed(self) -> bool:
        return self.provisioning_state in FAILED

    @property
    def deleting(self) -> bool:
        return self.provisioning_state in DELETING

    @classmethod
    def from_sdk(cls, d: Any) -> "DeploymentInfo":
        props = getattr(d, "properties", None)
        model = getattr(props, "model", None) if props is not None else None
        sku = getattr(d, "sku", None)
        system = getattr(d, "system_data", None)
        return cls(name=d.name, model=getattr(model, "name", None), model_version=getattr(model, "version", None),
                   sku=getattr(sku, "name", None), capacity=getattr(sku, "capacity", None),
                   provisioning_state=str(getattr(props, "provisioning_state", None) or "") or None,
                   created_at=parse_time(getattr(system, "created_at", None)),
                   modified_at=parse_time(getattr(system, "last_modified_at", None)),
                   tags=dict(getattr(d, "tags", None) or {}), raw=d.serialize(keep_readonly=True))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DeploymentInfo":
        props = d.get("properties") or {}
        model = props.get("model") or {}
        sku = d.get("sku") or {}
        system = d.get("systemData") or {}
        return cls(name=d.get("name", ""), model=model.get("name"), model_version=model.get("version"),
                   sku=sku.get("name"), capacity=sku.get("capacity"),
                   provisioning_state=props.get("provisioningState"),
                   created_at=parse_time(system.get("createdAt")), modified_at=parse_time(system.get("lastModifiedAt")),
                   tags=dict(d.get("tags") or {}), raw=d)


class Arm:
    """The account's deployments through ARM. ``calls`` counts requests (key ``arm``)."""

    def __init__(self, ctx, calls: Counter | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.calls: Counter[str] = calls if calls is not None else Counter()

    @property
    def _rg(self) -> str:
        return self.settings.resource_group

    @property
    def _account(self) -> str:
        return self.settings.openai_account

    def _url(self, name: str | None = None) -> str:
        client = self.ctx.clients.cognitive
        base = (f"/subscriptions/{self.settings.subscription_id}/resourceGroups/{self._rg}/providers/"
                f"Microsoft.CognitiveServices/accounts/{self._account}/deployments")
        return f"{base}/{name}?api-version={client._config.api_version}" if name else \
            f"{base}?api-version={client._config.api_version}"

    def _send(self, method: str, url: str, body: Any = None):
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        request = HttpRequest(method, url, json=body) if body is not None else HttpRequest(method, url)
        response = self.ctx.clients.cognitive._send_request(request)  # the client's documented raw entry
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        return response

    def put(self, name: str, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """Starts the PUT of the whole deployment (create-or-update; the same body gives the
        same deployment) and returns the provisioning state ARM answered and the URL of the
        operation, without waiting."""
        if not is_valid_deployment_name(name):
            raise AzureError(ErrorKind.INVALID, "InvalidResourceName", f"invalid deployment name {name!r}")
        self.calls["arm"] += 1
        try:
            response = self._send("PUT", self._url(name), body)
            answer = response.json() if response.text() else {}
        except Exception as exc:
            raise classify(exc).doing(f"deploying {name}") from exc
        state = (answer.get("properties") or {}).get("provisioningState")
        model = ((body.get("properties") or {}).get("model") or {}).get("name")
        sku = body.get("sku") or {}
        log.info("ARM PUT deployment %s (model %s, %s x%s): %s", name, model, sku.get("name"), sku.get("capacity"),
                 state or "accepted")
        return state, response.headers.get("Azure-AsyncOperation")

    def begin_create(self, name: str, model: str, sku: str, capacity: int, *, job_id: str | None = None,
                     snapshot: dict[str, Any] | None = None, source: str | None = None) -> tuple[str | None, str | None]:
        """:meth:`put` of :func:`deployment_body` (a new deployment, or a faithful re-creation);
        ``source``: the resource id of the account that trained the model, when it is another."""
        return self.put(name, deployment_body(model, sku, capacity, job_id=job_id, snapshot=snapshot, source=source))

    def operation_error(self, url: str | None) -> AzureError | None:
        """The error of a finished long-running operation (the Azure-AsyncOperation URL a
        PUT answered), or None when it did not fail or cannot be read. A deployment whose
        provisioning failed says why only there."""
        if not url:
            return None
        from azure.core.rest import HttpRequest

        self.calls["arm"] += 1
        try:
            response = self.ctx.clients.cognitive._send_request(HttpRequest("GET", url))
            if response.status_code != 200:
                return None
            body = response.json()
        except Exception as exc:  # best effort: the caller records "Failed" without a reason
            log.info("could not read operation %s: %s", url, exc)
            return None
        if str(body.get("status", "")).lower() != "failed":
            return None
        err = body.get("error") or {}
        code, message = err.get("code"), err.get("message") or "the deployment's provisioning failed"
        return AzureError(kind_for(400, code, message), code, message, None)

    def get(self, name: str) -> DeploymentInfo | None:
        """The deployment as ARM returns it (every property), or None when it does not exist."""
        self.calls["arm"] += 1
        try:
            response = self._send("GET", self._url(name))
        except Exception as exc:
            err = classify(exc)
            if err.kind == ErrorKind.NOT_FOUND:
                return None
            raise err.doing(f"reading deployment {name}") from exc
        return DeploymentInfo.from_json(response.json())

    def begin_delete(self, name: str) -> None:
        """Starts the DELETE without waiting; deleting what does not exist is not an error."""
        self.calls["arm"] += 1
        try:
            self.ctx.clients.cognitive.deployments.begin_delete(self._rg, self._account, name,
                                                                polling=False).result()
        except Exception as exc:
            err = classify(exc)
            if err.kind == ErrorKind.NOT_FOUND:
                return
            raise err from exc
        log.info("ARM DELETE deployment %s started", name)

    def list(self, use_sdk_models: bool = False) -> list[DeploymentInfo]:
        """Every deployment of the account (one ARM call per page). The keeper calls it
        every tick, so by default the pages are read as JSON through the client's
        pipeline (the SDK's model deserialisation costs more than the call);
        ``use_sdk_models=True`` iterates ``deployments.list`` instead (same request)."""
        client = self.ctx.clients.cognitive
        self.calls["arm"] += 1
        try:
            if use_sdk_models:
                out: list[DeploymentInfo] = []
                for i, page in enumerate(client.deployments.list(self._rg, self._account).by_page()):
                    if i:
                        self.calls["arm"] += 1
                    out.extend(DeploymentInfo.from_sdk(d) for d in page)
                return out
            from azure.core.exceptions import HttpResponseError
            from azure.core.rest import HttpRequest

            out = []
            url: str | None = self._url()
            pages = 0
            while url:
                if pages:
                    self.calls["arm"] += 1
                response = client._send_request(HttpRequest("GET", url))  # the client's documented raw entry
                if response.status_code != 200:
                    raise HttpResponseError(response=response)
                body = response.json()
                out.extend(DeploymentInfo.from_json(d) for d in body.get("value") or [])
                url = body.get("nextLink")
                pages += 1
            return out
        except Exception as exc:
            raise classify(exc) from exc

