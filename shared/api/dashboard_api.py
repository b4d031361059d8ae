"""The API operations the dashboard (``shared/dashboard``) reads that the other views do
not give: a job's ``results.csv`` as rows, a job's status timeline, and what each code of
a validation report means and how to fix it. They are ordinary operations of the table in
:mod:`shared.api.routes` (documented in the OpenAPI document, same function-key auth):
anything else can read them too.

Nothing here imports :mod:`shared.api.routes` (which imports this module)."""
from __future__ import annotations

import csv
import io
import logging
import re
from typing import Any, Mapping

from ..state.repos import Repositories, utc_iso
from ..state.tables import Row
from . import schemas
from .http import ApiError, Request, Response, json_response
from .validation import FieldError

log = logging.getLogger(__name__)

# A results.csv has one row per training step; a long job has tens of thousands. Above this
# many rows the answer keeps every n-th row (and always the last), which a curve does not miss.
RESULTS_MAX_ROWS = 5000
RESULTS_MAX_BYTES = 64 * 1024 * 1024


def _job_id(params: Mapping[str, str]) -> str:
    value = params.get("id", "")
    if not re.fullmatch(schemas.JOB_ID_PATTERN, value):
        message = f"expected a job id (job-... or Azure OpenAI's ftjob-...), got {value[:80]!r}"
        raise ApiError("invalid-parameter", f"id: {message}", errors=[FieldError("id", "", message)])
    return value


def _job_row(ctx, job_id: str) -> Row:
    """The job's row by this service's id or by Azure OpenAI's ``ftjob-`` id."""
    repos: Repositories = ctx.repos
    row = repos.find_job_by_any_id(job_id)
    if row is None:
        raise ApiError("job-not-found", f"id: no job {job_id!r}")
    return row


def _time(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return utc_iso(float(value))
    return str(value)


def _cell(value: str | None) -> float | int | str | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):  # NaN / inf are not JSON
        return None
    return int(number) if number.is_integer() and re.fullmatch(r"-?[0-9]+", text) else number


def parse_results(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    """A ``results.csv`` as its columns (trimmed, lower-case, in file order) and one object
    per row: numbers as numbers, empty cells as null (validation columns are empty on steps
    without a validation run)."""
    text = data.decode("utf-8-sig", "replace")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None) or []
    columns = [c.strip().lower() for c in header]
    rows = []
    for raw in reader:
        if not any(cell.strip() for cell in raw):
            continue
        rows.append({name: _cell(raw[i] if i < len(raw) else None) for i, name in enumerate(columns) if name})
    return [c for c in columns if c], rows


def _sample(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], int]:
    if len(rows) <= limit:
        return rows, 1
    every = -(-len(rows) // limit)
    kept = rows[::every]
    if kept[-1] is not rows[-1]:
        kept.append(rows[-1])
    return kept, every


def get_job_results(ctx_factory, request: Request, params) -> Response:
    job_id = _job_id(params)
    ctx = ctx_factory()
    row = _job_row(ctx, job_id)
    blob_name = row.get("results_blob")
    out: dict[str, Any] = {"id": row.get("id") or row.row_key, "status": row.get("status"),
                           "method": row.get("method"), "results_blob": blob_name, "columns": [], "rows": [],
                           "row_count": 0, "every": 1}
    if not blob_name or "/" not in str(blob_name):
        out["note"] = "no results yet: the monitor stores results.csv when the job has succeeded"
        return json_response(out)
    from azure.core.exceptions import ResourceNotFoundError

    container, _, path = str(blob_name).partition("/")
    blob = ctx.clients.blob_service.get_blob_client(container, path)
    try:
        data = blob.download_blob(offset=0, length=RESULTS_MAX_BYTES).readall()
    except ResourceNotFoundError:
        out["note"] = f"the results blob {blob_name} is missing"
        return json_response(out)
    columns, rows = parse_results(data)
    kept, every = _sample(rows, RESULTS_MAX_ROWS)
    out.update({"columns": columns, "rows": kept, "row_count": len(rows), "every": every})
    return json_response(out)


def get_job_history(ctx_factory, request: Request, params) -> Response:
    job_id = _job_id(params)
    row = _job_row(ctx_factory(), job_id)
    history = []
    for h in row.get("status_history") or []:
        if isinstance(h, Mapping) and h.get("status"):
            history.append({"status": str(h["status"]), "at": _time(h.get("at")),
                            "why": h.get("why") if isinstance(h.get("why"), str) else None,
                            "by": h.get("by") if isinstance(h.get("by"), str) else None})
    return json_response({"id": row.get("id") or row.row_key, "status": row.get("status"),
                          "status_changed_at": _time(row.get("status_changed_at")),
                          "status_history": history})


def get_validation_codes(ctx_factory, request: Request, params) -> Response:
    from ..validation.codes import CODES

    return json_response({"codes": {code: {"severity": info.severity, "meaning": info.meaning, "fix": info.fix}
                                    for code, info in CODES.items()}})


__all__ = ["get_job_results", "get_job_history", "get_validation_codes", "parse_results", "RESULTS_MAX_ROWS"]
