"""Offline token counting with the models' real encodings (cl100k_base, o200k_base).

No network access, ever: the merge ranks come from the files that the
``bpe-openai`` wheel ships (``bpe_openai/data/<name>.tiktoken.gz``), the split
pattern is the official one of ``tiktoken_ext.openai_public`` (copied below; a
test keeps the two equal).

Which tokenizer runs the algorithm:

- ``tiktoken`` when it is installed (the reference implementation: its Rust ``CoreBPE``
  built from the ranks, the split pattern and the special tokens, as
  ``tiktoken.Encoding`` builds it, without the Python wrapper's imports and rank copy).
  It costs about 51 MB of memory for o200k_base once built.
- otherwise bpe-openai's own Rust tokenizer. It gives the same tokens (checked
  on a fixed multilingual sample by ``tests/validation/test_tokens.py``) and is
  about twice as fast, but holds about 130 MB for o200k_base, which does not
  leave room for the validator's 150 MB budget; hence the preference.

Special-token text such as ``<|endoftext|>`` inside training data is counted as
ordinary text (``encode_ordinary``).

``count_chat_tokens`` follows OpenAI's published recipe for chat messages
(the cookbook's "How to count tokens with tiktoken"): 3 tokens per message, the
tokens of its string fields (role, content, name, tool_call_id; other keys are
ignored), 1 more for a ``name``, and 3 to prime the reply. It extends the recipe
to tool calls (function name + arguments + 3 per call), to content parts (text
parts counted, each image a flat ``IMAGE_TOKENS_ESTIMATE``) and to a ``tools``
list (its compact JSON). The service's own count may differ by a few tokens per
example; the image figure is an estimate (the real cost depends on its size).
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import marshal
import os
import sys
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import orjson

__all__ = [
    "ENCODING_NAMES",
    "IMAGE_TOKENS_ESTIMATE",
    "PAT_STR",
    "SPECIAL_TOKENS",
    "backend_name",
    "count_chat_tokens",
    "count_message_tokens",
    "count_tokens",
    "get_encoding",
    "load_mergeable_ranks",
    "pair_table",
    "release_encodings",
    "token_bound",
]

# The official split patterns (tiktoken_ext/openai_public.py, tiktoken 0.14).
PAT_STR: dict[str, str] = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
SPECIAL_TOKENS: dict[str, dict[str, int]] = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
ENCODING_NAMES = tuple(PAT_STR)

# Flat per-image figure used in counts (a 1024x1024 image at high detail on gpt-4o).
IMAGE_TOKENS_ESTIMATE = 765
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3
TOKENS_PER_TOOL_CALL = 3

_lock = threading.Lock()


def _check_name(name: str) -> None:
    if name not in PAT_STR:
        raise ValueError(f"unknown encoding {name!r}; known: {', '.join(ENCODING_NAMES)}")


def _rank_file(name: str) -> Path:
    # Located without importing bpe_openai: importing it builds both encodings' rank tables in
    # Python (about 1 s and 100 MB), which the validator's memory budget cannot afford.
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bpe-openai is not installed: it ships the encodings' rank files")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.tiktoken.gz"


def _cache_path(source: Path, kind: str = "marshal") -> Path | None:
    """Where what is derived from ``source`` (its parsed ranks, its pair table) is kept
    between processes: a folder of this user's own (mode 0700) in the temporary directory,
    named by the file's size and time."""
    try:
        import tempfile  # here, not at the top: a run that never counts does not pay for it

        folder = Path(tempfile.gettempdir()) / f"ft-autopilot-tokens-{os.getuid() if hasattr(os, 'getuid') else 0}"
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.stat()
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
            return None  # not ours alone: do not trust what is in it
        info = source.stat()
        return folder / f"{source.name}.{info.st_size}.{info.st_mtime_ns}.{kind}"
    except OSError:
        return None


def load_mergeable_ranks(name: str) -> dict[bytes, int]:
    """The BPE merge ranks of ``name``, read from the file bpe-openai ships (offline).
    Parsing it (base64, 200,000 lines) costs about 0.4 s, more than the rest of a small
    file's validation, so the parsed table is cached (``marshal``, about 0.05 s to load)."""
    _check_name(name)
    source = _rank_file(name)
    cache = _cache_path(source)
    if cache is not None:
        try:
            ranks = marshal.loads(cache.read_bytes())
            if type(ranks) is dict and len(ranks) > 1000:
                return ranks
        except (OSError, EOFError, ValueError, TypeError):
            pass
    ranks = _parse_ranks(source)
    _keep(cache, marshal.dumps(ranks))
    return ranks


def _keep(cache: Path | None, data: bytes) -> None:
    """Writes ``data`` to ``cache`` whole or not at all (another process may read it meanwhile);
    a cache that cannot be written is only a slower next start."""
    if cache is not None:
        try:
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, cache)
        except OSError:
            pass


def _parse_ranks(source: Path) -> dict[bytes, int]:
    import base64
    import gzip

    raw = source.read_bytes()
    ranks: dict[bytes, int] = {}
    b64 = base64.b64decode
    for line in gzip.decompress(raw).splitlines():
        if line:
            token, rank = line.split(b" ")
            ranks[b64(token)] = int(rank)
    return ranks


_pair_tables: dict[str, bytes] = {}
_splitters: dict[str, Any] = {}


def pair_table(name: str) -> bytes:
    """65,536 bytes, one per pair of bytes ``(a, b)`` at ``a * 256 + b``: 1 when the two bytes
    together are a token of ``name``. Derived from the ranks once and kept beside their cache
    (64 KB, read in microseconds: no encoding is built for it)."""
    table = _pair_tables.get(name)
    if table is not None:
        return table
    _check_name(name)
    cache = _cache_path(_rank_file(name), "pairs")
    if cache is not None:
        try:
            table = cache.read_bytes()
        except OSError:
            table = None
    if table is None or len(table) != 65536:
        built = bytearray(65536)
        for token in load_mergeable_ranks(name):
            if len(token) == 2:
                built[token[0] << 8 | token[1]] = 1
        table = bytes(built)
        _keep(cache, table)
    _pair_tables[name] = table
    return table


def _splitter(name: str):
    """The encoding's own split pattern (the pieces BPE runs on), compiled with ``regex``
    (the module tiktoken's reference implementation splits with)."""
    pattern = _splitters.get(name)
    if pattern is None:
        import regex

        pattern = _splitters[name] = regex.compile(PAT_STR[name])
    return pattern


def token_bound(text: str, encoding_name: str) -> int:
    """An upper bound of ``count_tokens(text, encoding_name)`` that needs no encoding built.

    BPE splits the text into pieces and merges, inside each piece, the adjacent pair of parts
    whose join is the lowest-ranked token, until no adjacent join is a token. So in the end
    two adjacent one-byte tokens are never a pair of bytes that is a token itself. In a piece
    of ``n`` bytes with ``m`` adjacent byte pairs that are not tokens, at most
    ``(T + m + 1) / 2`` of its ``T`` tokens have one byte and the others two or more, so
    ``n >= 2T - (T + m + 1) / 2``: ``T <= (2n + m + 1) / 3``, summed over the pieces. That is
    about 0.7 of the bytes for prose, against one token per byte without the pair table.
    Text with lone surrogates (counted as U+FFFD, as many bytes) is bounded by its bytes."""
    if not text:
        return 0
    try:
        whole = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))
    if whole < 3:
        return whole
    table = pair_table(encoding_name)
    bound = 0
    for piece in _splitter(encoding_name).findall(text):
        data = piece.encode("utf-8")
        n = len(data)
        if n < 3:
            bound += n - (n == 2 and table[data[0] << 8 | data[1]])
            continue
        bad = n - 1 - sum(table[a << 8 | b] for a, b in zip(data, data[1:]))
        bound += (2 * n + bad + 1) // 3
    return min(whole, bound)


class _BpeOpenAICounter:
    """bpe-openai's Rust tokenizer, wrapped to count without its length limits."""

    def __init__(self, name: str):
        import bpe_openai

        self.encoding = bpe_openai.get_encoding(name)
        self._backend = self.encoding._backend  # PyTokenizer: encode/count without limits

    def count(self, text: str) -> int:
        try:
            return self._backend.count(text)
        except UnicodeEncodeError:  # lone surrogates: count them as U+FFFD, like tiktoken
            return self._backend.count(text.encode("utf-8", "replace").decode("utf-8"))


MEMO_MAX_CHARS = 1024   # strings up to this long have their counts kept ...
MEMO_ENTRIES = 8192     # ... this many of them (at most about 8 MB of text, typically far less)


def _core_bpe_class():
    """tiktoken's Rust ``CoreBPE``, loaded from its extension module without running the
    package's ``__init__``: that imports the ``regex`` package and tiktoken's registry and
    Python wrapper (about 25 ms of a small file's wait), none of which counting needs.
    Falls back to the ordinary import; ImportError when tiktoken is not installed."""
    mod = sys.modules.get("tiktoken._tiktoken")
    if mod is None:
        try:
            spec = importlib.util.find_spec("tiktoken")  # a top-level name: found, not imported
            folder = Path(next(iter(spec.submodule_search_locations)))
            path = next(folder / f"_tiktoken{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES
                        if (folder / f"_tiktoken{suffix}").is_file())
            loader = importlib.machinery.ExtensionFileLoader("tiktoken._tiktoken", str(path))
            mod = importlib.util.module_from_spec(
                importlib.util.spec_from_file_location("tiktoken._tiktoken", path, loader=loader))
            loader.exec_module(mod)
            sys.modules["tiktoken._tiktoken"] = mod  # a later ``import tiktoken`` uses this one
        except (AttributeError, TypeError, StopIteration, OSError, ImportError):
            from tiktoken import _tiktoken as mod  # noqa: N813 (ImportError: not installed)
    return mod.CoreBPE


class _CoreEncoding:
    """The part of ``tiktoken.Encoding`` the service uses, over the Rust core alone (the
    Encoding would also keep a Python copy of the 200,000 ranks, 24 MB, only to be pickled)."""

    def __init__(self, name: str, core) -> None:
        self.name = name
        self._core = core

    def encode_ordinary(self, text: str) -> list[int]:
        try:
            return self._core.encode_ordinary(text)
        except UnicodeEncodeError:  # lone surrogates: replaced first, as tiktoken.Encoding does
            return self._core.encode_ordinary(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        return self._core.decode_bytes(tokens).decode("utf-8", errors=errors)

    def __repr__(self) -> str:
        return f"<Encoding {self.name!r} (tiktoken core)>"


class _TiktokenCounter:
    def __init__(self, name: str):
        core_bpe = _core_bpe_class()
        ranks = load_mergeable_ranks(name)
        self.encoding = _CoreEncoding(name, core_bpe(ranks, SPECIAL_TOKENS[name], PAT_STR[name]))
        del ranks  # the Rust core has its own copy
        self._encode = self.encoding.encode_ordinary
        self._memo: dict[str, int] = {}

    def count(self, text: str) -> int:
        # Roles, system messages and tool definitions repeat from example to example: their
        # counts are kept (short strings only, a bounded number), the rest is encoded.
        n = self._memo.get(text)
        if n is None:
            n = len(self._encode(text))
            if len(text) <= MEMO_MAX_CHARS and len(self._memo) < MEMO_ENTRIES:
                self._memo[text] = n
        return n


_counters: dict[str, Any] = {}


def _counter(name: str):
    c = _counters.get(name)
    if c is None:
        _check_name(name)
        with _lock:
            c = _counters.get(name)
            if c is None:
                try:
                    c = _TiktokenCounter(name)
                except ImportError:
                    c = _BpeOpenAICounter(name)
                _counters[name] = c
    return c


def release_encodings() -> None:
    """Drops the encodings built so far (about 51 MB for o200k_base, 30 MB for cl100k_base),
    for a long-lived process that counted and will not count again soon: the blob trigger
    after a validation, whose next steps (the upload, the import) would otherwise run with the
    encoding still held. The next count builds it again (about 0.2 s)."""
    with _lock:
        _counters.clear()


def backend_name(encoding_name: str) -> str:
    """Which implementation counts for ``encoding_name`` ("tiktoken" or "bpe-openai")."""
    return "tiktoken" if isinstance(_counter(encoding_name), _TiktokenCounter) else "bpe-openai"


def get_encoding(name: str):
    """A tiktoken-compatible encoding object (``encode``, ``encode_ordinary``, ``decode``),
    built lazily and cached; ``name`` is ``cl100k_base`` or ``o200k_base``."""
    return _counter(name).encoding


def count_tokens(text: str, encoding_name: str) -> int:
    """Number of tokens of ``text`` (special-token text counted as ordinary text)."""
    if not text:
        return 0
    return _counter(encoding_name).count(text)


def _content_tokens(content: Any, count) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return count(content) if content else 0
    n = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                n += count(part["text"])
            elif kind in ("image_url", "input_image", "image"):
                n += IMAGE_TOKENS_ESTIMATE
            elif isinstance(part.get("text"), str):
                n += count(part["text"])
    return n


def _call_tokens(call: Any, count) -> int:
    if not isinstance(call, Mapping):
        return 0
    fn = call.get("function", call)  # tool_calls[i].function, or a legacy function_call
    if not isinstance(fn, Mapping):
        return TOKENS_PER_TOOL_CALL
    n = TOKENS_PER_TOOL_CALL
    for key in ("name", "arguments"):
        value = fn.get(key)
        if isinstance(value, str) and value:
            n += count(value)
    return n


def count_message_tokens(message: Mapping[str, Any], encoding_name: str) -> int:
    """Tokens one chat message adds to an example, its per-message overhead included."""
    counter = _counter(encoding_name)
    count = counter.count
    n = TOKENS_PER_MESSAGE
    for key, value in message.items():
        if key == "content":
            n += _content_tokens(value, count)
        elif key == "tool_calls":
            if isinstance(value, list):
                for call in value:
                    n += _call_tokens(call, count)
        elif key == "function_call":
            n += _call_tokens(value, count)
        elif key in _STRING_FIELDS and isinstance(value, str) and value:
            n += count(value)
            if key == "name":
                n += TOKENS_PER_NAME
    return n


_STRING_FIELDS = frozenset(("role", "name", "tool_call_id"))


def count_chat_tokens(
    messages: Sequence[Mapping[str, Any]],
    encoding_name: str,
    *,
    tools: Iterable[Any] | None = None,
    functions: Iterable[Any] | None = None,
) -> int:
    """Tokens of a chat example: its messages (with OpenAI's per-message overhead),
    the reply priming, and the JSON of ``tools`` / legacy ``functions`` when given."""
    n = TOKENS_REPLY_PRIMING
    for message in messages:
        if isinstance(message, Mapping):
            n += count_message_tokens(message, encoding_name)
    for extra in (tools, functions):
        if extra:
            n += count_tokens(orjson.dumps(extra).decode("utf-8"), encoding_name)
    return n

