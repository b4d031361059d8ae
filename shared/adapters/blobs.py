"""The service's own blobs (reports, results): written whole, the container made on first use."""
from __future__ import annotations

import json
from typing import Any


class Blobs:
    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def put(self, container: str, name: str, data: bytes, content_type: str | None = None) -> str:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        service = self.ctx.clients.blob_service
        blob = service.get_blob_client(container, name)
        kwargs: dict[str, Any] = {"overwrite": True}
        if content_type:
            kwargs["content_settings"] = ContentSettings(content_type=content_type)
        try:
            blob.upload_blob(data, **kwargs)
        except ResourceNotFoundError:
            try:
                service.create_container(container)
            except ResourceExistsError:
                pass
            blob.upload_blob(data, **kwargs)
        return f"{container}/{name}"

    def put_json(self, container: str, name: str, value: Any) -> str:
        return self.put(container, name, json.dumps(value, indent=2, ensure_ascii=False).encode(),
                        "application/json")

    def client(self, container: str, name: str):
        return self.ctx.clients.blob_service.get_blob_client(container, name)
