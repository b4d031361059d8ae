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

__all__ = ["DeploymentInfo", "Arm", "SERVING", "FAILED", "DELETING", "TERMINAL"]

# ARM provisioning states, each set declared once.
SERVING = "Succeeded"
FAILED = frozenset({"Failed", "Canceled", "Cancelled"})
DELETING = frozenset({"Deleting"})
TERMINAL = frozenset({SERVING}) | FAILED


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
                   modified_at=parse_time(getattr(system, "last_modified_at", None)))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DeploymentInfo":
        props = d.get("properties") or {}
        model = props.get("model") or {}
        sku = d.get("sku") or {}
        system = d.get("systemData") or {}
        return cls(name=d.get("name", ""), model=model.get("name"), model_version=model.get("version"),
                   sku=sku.get("name"), capacity=sku.get("capacity"),
                   provisioning_state=props.get("provisioningState"),
                   created_at=parse_time(system.get("createdAt")), modified_at=parse_time(system.get("lastModifiedAt")))


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

    def begin_create(self, name: str, model: str, sku: str, capacity: int) -> tuple[str | None, str | None]:
        """Starts the PUT (idempotent: the same name, model and SKU give the same deployment).
        Returns the provisioning state ARM answered and the operation's URL, without waiting."""
        from azure.mgmt.cognitiveservices.models import Deployment, DeploymentModel, DeploymentProperties, Sku

        if not is_valid_deployment_name(name):
            raise AzureError(ErrorKind.INVALID, "InvalidResourceName", f"invalid deployment name {name!r}")
        body = Deployment(sku=Sku(name=sku, capacity=int(capacity)),
                          properties=DeploymentProperties(model=DeploymentModel(format="OpenAI", name=model,
                                                                                version="1")))
        self.calls["arm"] += 1
        seen: dict[str, str] = {}

        def keep_operation_url(response) -> None:
            url = response.http_response.headers.get("Azure-AsyncOperation")
            if url:
                seen["operation"] = url

        try:
            poller = self.ctx.clients.cognitive.deployments.begin_create_or_update(
                self._rg, self._account, name, body, polling=False, raw_response_hook=keep_operation_url)
            result = poller.result()
        except Exception as exc:
            raise classify(exc) from exc
        state = getattr(getattr(result, "properties", None), "provisioning_state", None) if result is not None else None
        log.info("ARM PUT deployment %s (model %s, %s x%s): %s", name, model, sku, capacity, state or "accepted")
        return (str(state) if state else None), seen.get("operation")

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
        """The deployment, or None when ARM says it does not exist."""
        self.calls["arm"] += 1
        try:
            d = self.ctx.clients.cognitive.deployments.get(self._rg, self._account, name)
        except Exception as exc:
            err = classify(exc)
            if err.kind == ErrorKind.NOT_FOUND:
                return None
            raise err from exc
        return DeploymentInfo.from_sdk(d)

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
            url: str | None = (f"/subscriptions/{self.settings.subscription_id}/resourceGroups/{self._rg}/providers/"
                               f"Microsoft.CognitiveServices/accounts/{self._account}/deployments"
                               f"?api-version={client._config.api_version}")
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

