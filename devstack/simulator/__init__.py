"""Local simulator of the Azure services the project calls: the Azure OpenAI
authoring API (files, fine-tuning jobs), inference on deployments, ARM
deployments and Azure Monitor metrics. See README.md in this folder.

Test and stack code use :class:`SimulatorProcess` (a subprocess) and its
:class:`AdminClient`; :class:`StaticTokenCredential` feeds the mgmt SDKs.
"""
from __future__ import annotations

from typing import Any

__all__ = ["SimulatorProcess", "AdminClient", "StaticTokenCredential"]


def __getattr__(name: str) -> Any:  # lazy: the server process needs neither
    if name in ("SimulatorProcess", "AdminClient"):
        from . import process

        return getattr(process, name)
    if name == "StaticTokenCredential":
        from .credentials import StaticTokenCredential

        return StaticTokenCredential
    raise AttributeError(name)
