"""No key, SAS signature or bearer token is ever written to logs, reports, results or
tables: a full run (intake with an upload and a SAS import, a job, the monitor
deploying it, the keeper redeploying and pinging it) with every logger at DEBUG, then
a scan of everything it wrote."""
from __future__ import annotations

import logging
import re

from devstack.azurite import ACCOUNT_KEY
from shared.context import get_context
from shared.settings import get_settings

from .pipeline import run_pipeline


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name}: {record.getMessage()}")
        except Exception as exc:  # a record that cannot be formatted is a finding too
            self.lines.append(f"{record.name}: unformattable {exc!r}")
        if record.exc_info and record.exc_info[1] is not None:
            self.lines.append(repr(record.exc_info[1]))


def test_a_full_run_writes_no_secret_anywhere(runner, app_env, admin, monkeypatch):
    monkeypatch.setenv("UPLOAD_IMPORT_THRESHOLD_BYTES", "4000")  # the validation set goes by SAS import
    get_settings.cache_clear()
    get_context.cache_clear()
    handler = _Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = {}
    for name in list(logging.root.manager.loggerDict) + ["openai", "httpx", "httpx2", "httpcore", "azure", "urllib3"]:
        logger = logging.getLogger(name)
        quiet[name] = logger.level
        if logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)
    try:
        out = run_pipeline(get_context, runner, admin, app_env, "secrets")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
    ctx = get_context()
    assert ctx.repos.get_deployment(out.deployment)["pings"] == 1
    assert any("import" in r["path"] for r in admin.requests(method="POST", path_regex=r"^/openai/files/import$"))

    secrets = {"API key": app_env["AZURE_OPENAI_API_KEY"], "ARM token": app_env["LOCAL_ARM_TOKEN"],
               "storage account key": ACCOUNT_KEY}
    patterns = {"SAS signature": re.compile(r"sig=[A-Za-z0-9%+/=]{10,}"),
                "bearer token": re.compile(r"Bearer\s+(?!\*|REDACTED)[A-Za-z0-9._~+/=-]{6,}", re.I)}

    def findings(where: str, text: str) -> list[str]:
        found = [f"{where}: {what}" for what, value in secrets.items() if value and value in text]
        found += [f"{where}: {what} ({m.group()[:12]}…)" for what, rx in patterns.items() for m in rx.finditer(text)]
        return found

    written: dict[str, str] = {}
    assert len(handler.lines) > 100  # DEBUG really was captured
    written["logs"] = "\n".join(handler.lines)
    blobs = ctx.clients.blob_service
    for container in (ctx.settings.reports_container, ctx.settings.results_container):
        for b in blobs.get_container_client(container).list_blobs():
            written[f"{container}/{b.name}"] = blobs.get_blob_client(container, b.name).download_blob().readall().decode(
                "utf-8", "replace")
    assert any(k.endswith(".report.json") for k in written) and any(k.endswith("results.csv") for k in written)
    for table in ctx.settings.table_names + ("RunnerBlobReceipts",):
        rows = list(ctx.clients.table_service.get_table_client(table).list_entities())
        written[f"table {table}"] = "\n".join(repr(dict(r)) for r in rows)
    assert written["table Deployments" + ctx.settings.deployments_table.removeprefix("Deployments")]

    leaks = [f for where, text in written.items() for f in findings(where, text)]
    assert leaks == []
