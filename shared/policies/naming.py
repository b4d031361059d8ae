"""Deployment names: ARM's rule, and the deterministic name a job's deployment gets."""
from __future__ import annotations

import hashlib
import re

__all__ = ["ARM_NAME_RE", "is_valid_deployment_name", "deployment_name_for"]

ARM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def is_valid_deployment_name(name: str | None) -> bool:
    return bool(ARM_NAME_RE.fullmatch(name or ""))


def deployment_name_for(job_id: str, suffix: str | None = None, prefix: str = "ft") -> str:
    """A deterministic, ARM-valid deployment name for a job: ``ft-<suffix>-<job id>``.

    The job id keeps it unique; the suffix (sanitised, shortened) keeps it readable.
    Anything that would not fit is cut from the suffix, never from the id; an id
    that alone is too long is replaced by a hash of it. A repeated PUT after a crash
    or an overlapping tick therefore targets the same deployment.
    """
    ident = _UNSAFE_NAME_CHARS.sub("-", job_id.removeprefix("job-")).strip("-._") or "x"
    if len(ident) > 40:
        ident = hashlib.sha256(job_id.encode()).hexdigest()[:24]
    clean_suffix = _UNSAFE_NAME_CHARS.sub("-", suffix or "").strip("-._")
    room = 64 - len(prefix) - len(ident) - 2
    clean_suffix = clean_suffix[:max(0, room)].strip("-._")
    name = "-".join(p for p in (prefix, clean_suffix, ident) if p)
    assert is_valid_deployment_name(name), name
    return name
