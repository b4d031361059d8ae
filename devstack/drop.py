"""``python -m devstack drop FILE --model MODEL [--method M] [--grader G]``: puts a dataset
into the local stack's datasets container, as a person would in Azure with the portal
or the Azure CLI (which a newcomer may not have).

The blob is named ``<model>/<file name>`` (the folder names the base model, as intake
reads it) with ``method`` metadata when one is given; a grader (reinforcement) is put
beside it first as ``<file name>.grader.json``, so intake finds it when the data arrives.
The storage account is the one the running ``make run`` recorded in
``.devstack/stack.json``, else the one ``local.settings(.sample).json`` names.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Mapping

from .stack import STATE_DIR, base_values

__all__ = ["add_arguments", "drop", "DropError", "stack_values"]

STACK_FILE = STATE_DIR / "stack.json"
METHODS = ("supervised", "dpo", "reinforcement")


class DropError(Exception):
    """A drop that cannot be made, with what to do about it."""


def stack_values(stack_file: Path = STACK_FILE) -> dict[str, str]:
    """The settings of the running local stack, else the local settings file's."""
    values = base_values()
    try:
        values.update(json.loads(stack_file.read_text()))
    except (OSError, ValueError):
        pass
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the JSONL dataset to drop")
    parser.add_argument("--model", required=True, help="base model, e.g. gpt-4o-mini-2024-07-18 (the blob's folder)")
    parser.add_argument("--method", choices=METHODS, help="training method (default: the model's default)")
    parser.add_argument("--grader", type=Path, help="the grader (JSON) of a reinforcement dataset, dropped beside it")
    parser.add_argument("--name", help="blob name inside the model's folder (default: the file's name)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="the running stack's data folder, as given to `run --state-dir` (default .devstack)")


def drop(file: Path, model: str, method: str | None = None, grader: Path | None = None, name: str | None = None,
         values: Mapping[str, str] | None = None) -> list[str]:
    """Uploads the grader (if any), then the data; returns the blob names written."""
    from azure.core.exceptions import AzureError
    from azure.storage.blob import BlobServiceClient

    values = dict(values if values is not None else stack_values())
    if not file.is_file():
        raise DropError(f"{file}: no such file")
    if grader is not None and not grader.is_file():
        raise DropError(f"--grader {grader}: no such file")
    if grader is not None and method not in (None, "reinforcement"):
        raise DropError(f"--grader goes with --method reinforcement, not {method}")
    if "/" in model or not model.strip():
        raise DropError(f"--model {model!r}: a model name such as gpt-4o-mini-2024-07-18, without '/'")
    conn = values.get("AzureWebJobsStorage")
    if not conn or "devstoreaccount1" not in conn:
        raise DropError("no local storage account: start the stack with `make run` (or make local.settings.json "
                        "name Azurite's connection string as AzureWebJobsStorage)")
    container = values.get("DATASETS_CONTAINER") or "datasets"
    blob_name = f"{model}/{name or file.name}"
    written: list[str] = []
    url = "the local blob endpoint"
    try:
        service = BlobServiceClient.from_connection_string(conn, connection_timeout=5, retry_total=1)
        url = service.url
        box = service.get_container_client(container)
        if grader is not None:
            grader_name = blob_name + ".grader.json"
            with grader.open("rb") as fh:
                box.upload_blob(grader_name, fh, overwrite=True)
            written.append(grader_name)
        metadata = {"method": method} if method else {}
        with file.open("rb") as fh:
            box.upload_blob(blob_name, fh, overwrite=True, metadata=metadata)
        written.append(blob_name)
    except (AzureError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DropError(f"could not write to container {container!r} at {url}: {first} "
                        f"(is `make run` running?)") from None
    return written
