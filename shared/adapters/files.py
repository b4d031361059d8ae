"""Training files at Azure OpenAI: upload (multipart), import from a URL, read the
processing status, find a file by its name. Sends are never retried by the SDK: a
re-sent POST whose first answer was lost would create a second file; the dataset
life cycle looks the file up by its hash-derived name before sending again."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO

from ..core.errors import classify

log = logging.getLogger(__name__)

__all__ = ["OpenAIFiles", "FileStatus", "USABLE", "FAILED"]

FAILED = frozenset({"error", "deleted", "deleting"})
USABLE = frozenset({"processed"})


@dataclass
class FileStatus:
    id: str
    status: str
    reason: str = ""

    @property
    def processed(self) -> bool:
        return self.status in USABLE

    @property
    def failed(self) -> bool:
        return self.status in FAILED


class OpenAIFiles:
    def __init__(self, ctx, calls: Counter | None = None) -> None:
        self.ctx = ctx
        self.calls: Counter[str] = calls if calls is not None else Counter()

    def _call(self, fn):
        self.calls["openai"] += 1
        try:
            return fn()
        except Exception as exc:
            raise classify(exc) from exc

    def upload(self, filename: str, reader: BinaryIO) -> str:
        client = self.ctx.clients.openai.with_options(max_retries=0)
        return self._call(lambda: client.files.create(file=(filename, reader, "application/jsonl"),
                                                      purpose="fine-tune").id)

    def import_url(self, filename: str, url: str) -> str:
        from openai.types import FileObject

        client = self.ctx.clients.openai.with_options(max_retries=0)
        return self._call(lambda: client.post("/files/import", cast_to=FileObject,
                                              body={"purpose": "fine-tune", "filename": filename,
                                                    "content_url": url}).id)

    def status(self, file_id: str) -> FileStatus:
        f = self._call(lambda: self.ctx.clients.openai.files.retrieve(file_id))
        reason = ""
        if f.status in FAILED:
            reason = str(getattr(f, "status_details", None) or getattr(f, "error", None) or f"file {f.status}")
        return FileStatus(f.id, str(f.status), reason)

    def delete(self, file_id: str) -> bool:
        """Deletes the file; False when Azure OpenAI does not know it (already gone)."""
        from ..core.errors import ErrorKind

        try:
            self._call(lambda: self.ctx.clients.openai.files.delete(file_id))
        except Exception as exc:
            err = classify(exc)
            if err.kind == ErrorKind.NOT_FOUND:
                return False
            raise err from exc
        log.info("Deleted file %s at Azure OpenAI", file_id)
        return True

    def find(self, filename: str) -> str | None:
        """The id of a usable (not failed) file already at Azure OpenAI under this name."""
        def scan() -> str | None:
            for f in self.ctx.clients.openai.files.list(purpose="fine-tune"):
                if f.filename == filename and f.status not in FAILED:
                    return f.id
            return None

        return self._call(scan)


