"""Cheap detection of credentials pasted into training data (warnings only).

Two stages, so that clean text costs little more than a few ``memchr`` calls:

1. :func:`candidates` finds the offsets where a credential *might* start, by
   searching a whole block of lines for rare single bytes (``J`` of ``eyJ``,
   ``=`` of ``AccountKey=``, ``B`` of ``Bearer``, ...; a one-byte search runs at
   memory speed) and looking at the few bytes around each hit. A byte that turns
   out to be frequent in a block (``-`` in code, say) switches, for that block,
   to plain substring searches for its markers, so the cost stays bounded.
2. :func:`find_secret` runs the precise patterns on the lines with a candidate.

What is recognised (the shape, not the string's randomness): OpenAI-style
``sk-`` keys, ``Bearer`` tokens, JSON Web Tokens, AWS access key ids, GitHub
personal access tokens (``ghp_``, ``github_pat_``), PEM private keys, Azure
storage account keys and SAS signatures, and 32 hex digits after an ``api-key``,
``api_key``, ``API_KEY``, ``Api-Key`` or ``Subscription-Key`` label (Azure OpenAI
and Cognitive Services keys). A bare random string cannot be told from data and
is not flagged; lowercase ``bearer`` is not looked for.
"""
from __future__ import annotations

import re

__all__ = ["candidates", "find_secret", "scan_line"]

# Rare byte -> where to look first (-1: the byte before it, +1: the byte after), the bytes a
# marker has there, and (offset of the rare byte in the marker, marker) pairs. Each marker is
# anchored on its rarest byte in chat data ("_" and "-" are frequent in tool calls: tool_call_id,
# dates; they anchor only the lowercase markers that have no rarer byte), and a hit is first
# checked against its neighbour (one index, no call), so that most false hits cost a few
# operations.
_RARE: tuple[tuple[bytes, int, frozenset[int], tuple[tuple[int, bytes], ...]], ...] = (
    (b"J", -1, frozenset(b"y"), ((2, b"eyJ"),)),
    (b"=", -1, frozenset(b"yg"), ((3, b"Key="), (3, b"key="), (3, b"sig="))),
    (b"B", 1, frozenset(b"e"), ((0, b"Bearer"),)),
    (b"K", -1, frozenset(b"A _-"), ((1, b"AKIA"), (8, b"PRIVATE KEY"), (4, b"API_KEY"), (4, b"Api-Key"),
                                    (13, b"Subscription-Key"))),
    (b"_", -1, frozenset(b"ipb"), ((3, b"api_key"), (3, b"ghp_"), (6, b"github_pat_"))),
    (b"-", -1, frozenset(b"ki"), ((2, b"sk-"), (3, b"api-key"))),
)
# A hit costs a few Python operations (~0.5 us); searching the rest of the block for a byte's
# markers directly costs ~0.7 ns a byte per marker. Past this many bytes' worth of hits per
# marker, the markers are searched for instead (looked at every 256 hits).
_BYTES_PER_HIT = 700
_ROUND = 256

_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = tuple(
    (what, re.compile(rx)) for what, rx in (
        ("an API key (sk-...)", rb"(?<![A-Za-z0-9])sk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{20,}"),
        ("a bearer token", rb"Bearer\s+[A-Za-z0-9\-._~+/]{20,}=*"),
        ("a JSON Web Token", rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("an AWS access key id", rb"(?<![A-Z0-9])AKIA[0-9A-Z]{16}(?![A-Z0-9])"),
        ("a GitHub token", rb"ghp_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"),
        ("a private key", rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
        ("an Azure storage key or SAS signature",
         rb"(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{20,}={0,2}|[?&]sig=[A-Za-z0-9%+/]{20,}"),
        ("an API key (32 hex digits after an api-key label)",
         rb"(?:api[-_]key|API[-_]KEY|Api-Key|Subscription-Key)[\\\"'\s:=]{1,8}[0-9a-fA-F]{32}(?![0-9a-fA-F])"),
    )
)


def candidates(buf: bytes, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets in ``buf[start:end]`` where a credential might start (unsorted, may repeat): where
    one of the markers begins."""
    if end is None:
        end = len(buf)
    hits: list[int] = []
    find = buf.find
    startswith = buf.startswith
    for byte, rel, near, markers in _RARE:
        # A marker is longer than 2 bytes, so the neighbour looked at is always inside ``buf``
        # (a hit at position 0 looks at buf[-1]: harmless, the marker check rules it out).
        stop = end if rel < 0 else min(end, len(buf) - rel)
        i = find(byte, start, stop)
        seen = 0
        while i >= 0:
            for _ in range(_ROUND):
                if buf[i + rel] in near:
                    for off, marker in markers:
                        if i - off >= start and startswith(marker, i - off):
                            hits.append(i - off)
                            break
                i = find(byte, i + 1, stop)
                if i < 0:
                    break
            else:
                seen += _ROUND
                if seen * _BYTES_PER_HIT > (i - start) * len(markers):
                    # A frequent byte in this block: search the rest for the markers themselves.
                    for off, marker in markers:
                        j = find(marker, max(start, i - off), end)
                        while j >= 0:
                            hits.append(j)
                            j = find(marker, j + 1, end)
                    break
    return hits


def scan_line(line: bytes) -> str | None:
    """The precise stage only: what kind of credential ``line`` holds, or None."""
    for what, rx in _PATTERNS:
        if rx.search(line):
            return what
    return None


def find_secret(line: bytes) -> str | None:
    """What kind of credential ``line`` seems to hold (None when nothing matches)."""
    if not candidates(line):
        return None
    return scan_line(line)
