"""The service's own basic checks of a fine-tuning file.

Only what the real service refuses at file processing: size, UTF-8 (a BOM is
accepted), JSON Lines of objects in one known example shape, and the minimum
number of examples. Deeper rules (token limits, weights, roles) are the
project's validator's job, not the simulator's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

__all__ = ["FileCheck", "check_fine_tune_file"]

_BOM = b"\xef\xbb\xbf"
_CHAT_ROLES = {"system", "user", "assistant", "tool", "function", "developer"}


@dataclass
class FileCheck:
    ok: bool
    details: Optional[str] = None
    format: Optional[str] = None  # "chat" | "completion" | "preference"
    examples: int = 0
    tokens: int = 0  # rough estimate: characters / 4
    # The first chat example whose last message is not a user message: [line, role]
    # (reinforcement fine-tuning needs the final message to be the user's).
    final_not_user: Optional[list] = None


def _shape(obj: dict) -> Optional[str]:
    if "input" in obj and "preferred_output" in obj and "non_preferred_output" in obj:
        return "preference"
    if isinstance(obj.get("messages"), list):
        return "chat"
    if isinstance(obj.get("prompt"), str) and isinstance(obj.get("completion"), str):
        return "completion"
    return None


def check_fine_tune_file(data: bytes, *, max_bytes: int, min_examples: int) -> FileCheck:
    if len(data) > max_bytes:
        return FileCheck(False, f"The file is {len(data)} bytes; the maximum file size is "
                                f"{max_bytes} bytes ({max_bytes // (1024 * 1024)} MB).")
    body = data[len(_BOM):] if data.startswith(_BOM) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return FileCheck(False, f"The file is not UTF-8 encoded: invalid byte at offset {exc.start}.")
    fmt: Optional[str] = None
    examples = 0
    chars = 0
    final_not_user: Optional[list] = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            return FileCheck(False, f"Invalid JSONL: line {number} is not valid JSON.")
        if not isinstance(obj, dict):
            return FileCheck(False, f"Invalid JSONL: line {number} is not a JSON object.")
        shape = _shape(obj)
        if shape is None:
            return FileCheck(False, f"Line {number}: an example needs 'messages' (chat), 'prompt' and "
                                    "'completion' (completion), or 'input', 'preferred_output' and "
                                    "'non_preferred_output' (preference).")
        if fmt is None:
            fmt = shape
        elif shape != fmt:
            return FileCheck(False, f"Line {number}: a {shape} example in a file of {fmt} examples.")
        if shape == "chat":
            for message in obj["messages"]:
                if not isinstance(message, dict) or message.get("role") not in _CHAT_ROLES:
                    return FileCheck(False, f"Line {number}: every message needs a role among "
                                            f"{', '.join(sorted(_CHAT_ROLES))}.")
            last = obj["messages"][-1]["role"] if obj["messages"] else None
            if final_not_user is None and last != "user":
                final_not_user = [number, last]
        examples += 1
        chars += len(line)
    if examples < min_examples:
        return FileCheck(False, f"The file has {examples} example(s), but a fine-tuning file must have at "
                                f"least {min_examples} examples.", fmt, examples)
    return FileCheck(True, None, fmt, examples, max(1, chars // 4), final_not_user)


def sniff_format(data: bytes) -> Optional[str]:
    """The example shape of the first parsable line, or None."""
    body = data[len(_BOM):] if data.startswith(_BOM) else data
    for line in body.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            try:
                obj = json.loads(line)
            except ValueError:
                return None
            return _shape(obj) if isinstance(obj, dict) else None
    return None
