"""The streaming validator: one pass, constant memory, whatever the file's size."""
from __future__ import annotations

import hashlib
import os
import queue
import threading
from io import BytesIO
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator, Union

import orjson

from ..catalogue import ModelInfo, UnknownModelError, load_catalogue
from .codes import CODES, ERROR
from .dedupe import DigestTable
from .rules import (_PER_MESSAGE, Bad, Ctx, check_chat, check_completion, check_dpo, check_rft, count_example,
                    pair_bound, text_sizes, utf8_bound)
from ..tokens import TOKENS_REPLY_PRIMING as _REPLY_PRIMING
from .secrets import candidates, find_secret, scan_line

__all__ = ["MAX_ISSUES", "MAX_LINE_BYTES", "CHUNK_SIZE", "SUPPORTED_METHODS", "Issue", "ValidationReport",
           "validate", "validate_path"]

Source = Union[BinaryIO, Iterable[bytes], bytes, bytearray, memoryview]

MAX_ISSUES = 100  # errors (and warnings) listed in full; all are counted per code
CHUNK_SIZE = 1 << 20  # bytes read at a time from a file-like source
SAMPLE_TARGET = 256  # examples counted exactly for the token estimate (about; see _Run.set_sample_stride)
SAMPLE_BYTES_PER_EXAMPLE = 1024
# Lines longer than this are not read. The longest token of cl100k_base and o200k_base is 128
# bytes, so a line this long would need an average of 256 bytes per token to fit a 65,536-token
# context: no real example is both that long and within the limit.
MAX_LINE_BYTES = 16 << 20
SUPPORTED_METHODS = ("supervised", "dpo", "reinforcement")
_MAX_SYSTEM_VARIANTS = 1000  # distinct system messages tracked (digests), for the consistency warning

_BINARY_MAGIC = (
    (b"\xff\xfe\x00\x00", "the file is UTF-32 (little-endian byte order mark)"),
    (b"\x00\x00\xfe\xff", "the file is UTF-32 (big-endian byte order mark)"),
    (b"\xff\xfe", "the file is UTF-16 (little-endian byte order mark FF FE)"),
    (b"\xfe\xff", "the file is UTF-16 (big-endian byte order mark FE FF)"),
    (b"\x1f\x8b", "the file is gzip-compressed"),
    (b"PK\x03\x04", "the file is a ZIP archive (or an Office document)"),
    (b"%PDF", "the file is a PDF document"),
    (b"\xd0\xcf\x11\xe0", "the file is an old Office document"),
)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Issue:
    line: int | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message}


@dataclass
class ValidationReport:
    valid: bool
    model: str
    base_model: str | None
    method: str
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    error_counts: dict[str, int] = field(default_factory=dict)
    warning_counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "model": self.model,
            "base_model": self.base_model,
            "method": self.method,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
            "error_counts": dict(self.error_counts),
            "warning_counts": dict(self.warning_counts),
            "stats": dict(self.stats),
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def format_text(self, name: str | None = None) -> str:
        """The report for a person (what the CLI prints without --json)."""
        what = f"{name} " if name else ""
        head = "VALID" if self.valid else "INVALID"
        out = [f"{head}: {what}for {self.model} ({self.method})"]
        if self.base_model and self.base_model != self.model:
            out[0] += f", base model {self.base_model}"
        for title, issues, counts in (("errors", self.errors, self.error_counts),
                                      ("warnings", self.warnings, self.warning_counts)):
            total = sum(counts.values())
            if not total:
                continue
            summary = ", ".join(f"{c} {k}" for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
            out.append(f"{title} ({total}: {summary}):")
            out.extend(f"  {i.message}" for i in issues)
            if total > len(issues):
                out.append(f"  ... and {total - len(issues)} more")
        s = self.stats
        if s.get("examples") is not None:
            approx = "" if s.get("tokens_exact") else "~"
            out.append("stats:")
            out.append(f"  examples: {s['examples']} ({s.get('valid_examples', 0)} valid), "
                       f"duplicates: {s.get('duplicates', 0)}"
                       + ("" if s.get("format") == "rft" else
                          f", without system message: {s.get('examples_without_system_message', 0)}")
                       + (f", with images: {s['examples_with_images']:,}" if s.get("examples_with_images") else ""))
            if s.get("total_tokens") is not None:
                trained = "" if s.get("format") == "rft" else f", assistant {approx}{s['assistant_tokens']:,}"
                out.append(f"  tokens ({s.get('encoding')}{'' if s.get('tokens_exact') else ', estimated'}): "
                           f"total {approx}{s['total_tokens']:,}, max per example "
                           f"{approx}{s['max_tokens_per_example']:,} (limit {s['token_limit']:,}){trained}")
                if s.get("estimated_billable_tokens_per_epoch") is None:
                    out.append("  billed per training hour, not per token (reinforcement fine-tuning)")
                else:
                    out.append(f"  billable tokens per epoch: {approx}{s['estimated_billable_tokens_per_epoch']:,}; "
                               f"for the job: {approx}{s['estimated_billable_tokens']:,} over {s['assumed_epochs']} "
                               f"epochs ({s['epochs_assumption']})")
                how = s.get("token_estimate")
                if not s.get("tokens_exact") and how:
                    if how.get("method") == "sample" and how.get("relative_error_95") is not None:
                        out.append(f"  estimated from {how['sampled_examples']:,} of {how['estimated_examples']:,} "
                                   f"examples counted exactly: within ±{100 * how['relative_error_95']:.1f} % "
                                   f"(95 %)")
                    elif how.get("method") == "characters":
                        out.append("  estimated from characters / 4 (without --quick-estimate: a counted sample, "
                                   "within about 1 %)")
            if s.get("grader_item_fields") is not None:
                fields = ", ".join(s["grader_item_fields"]) or "none"
                out.append(f"  fields the grader reads (checked in every example): {fields}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format_text()


class _Collector:
    __slots__ = ("errors", "warnings", "error_counts", "warning_counts")

    def __init__(self) -> None:
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.error_counts: dict[str, int] = {}
        self.warning_counts: dict[str, int] = {}

    def error(self, line: int | None, code: str, message: str) -> None:
        assert code in CODES and CODES[code].severity == ERROR, code
        self.error_counts[code] = self.error_counts.get(code, 0) + 1
        if len(self.errors) < MAX_ISSUES:
            self.errors.append(Issue(line, code, f"line {line}: {message}" if line else message))

    def sort(self) -> None:
        """Issues in line order (file-level ones, without a line, first)."""
        key = lambda issue: issue.line or 0  # noqa: E731
        self.errors.sort(key=key)
        self.warnings.sort(key=key)

    def warning(self, line: int | None, code: str, message: str) -> None:
        assert code in CODES and CODES[code].severity != ERROR, code
        self.warning_counts[code] = self.warning_counts.get(code, 0) + 1
        if len(self.warnings) < MAX_ISSUES:
            self.warnings.append(Issue(line, code, f"line {line}: {message}" if line else message))


def _chunks(source: Source, chunk_size: int) -> Iterator[bytes]:
    """The source's bytes in pieces of at most ``chunk_size`` (a bigger piece, such as a blob
    download's first 32 MB range, is cut: each piece's lines are held at once)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield from _cut(source if isinstance(source, bytes) else bytes(source), chunk_size)
        return
    if isinstance(source, str):
        raise TypeError("validate() reads bytes: pass a binary file, an iterable of bytes chunks or bytes, "
                        "not str")
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            chunk = read(chunk_size)
            if not chunk:
                return
            if isinstance(chunk, str):
                raise TypeError("validate() reads bytes: open the file in binary mode ('rb')")
            yield from _cut(chunk, chunk_size)
    else:
        for chunk in source:
            if isinstance(chunk, str):
                raise TypeError("validate() reads bytes chunks, not str")
            if chunk:
                yield from _cut(bytes(chunk) if not isinstance(chunk, bytes) else chunk, chunk_size)


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def _prefetched(chunks: Iterator[bytes], max_bytes: int, depth: int = 2) -> Iterator[bytes]:
    """The same chunks, fetched by a helper thread up to ``depth`` ahead while the caller works
    on the previous ones: a download mostly waits on the network (and a hashing wrapper
    hashes), without the GIL, so it overlaps the validation instead of adding to it. It stops
    at the chunk that takes the total past ``max_bytes`` (where the validator stops reading).
    The source's exceptions are raised here; when the caller stops early, the helper stops
    after the chunk it is fetching, and is waited for, so the source is never read after
    validate() returns."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            total = 0
            for chunk in chunks:
                total += len(chunk)
                if not put(chunk) or total > max_bytes:
                    break
            put(_END)
        except BaseException as exc:  # handed to the caller's thread
            put(_Failure(exc))

    helper = threading.Thread(target=fetch, name="validation-prefetch", daemon=True)
    helper.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if type(item) is _Failure:
                raise item.exc
            yield item
    finally:
        stop.set()
        helper.join()


def _cut(chunk: bytes, size: int) -> Iterator[bytes]:
    if len(chunk) <= size:
        yield chunk
    else:
        for i in range(0, len(chunk), size):
            yield chunk[i:i + size]


class _Run:
    """The state of one validation pass."""

    def __init__(self, info: ModelInfo, method: str, exact_tokens: bool, out: _Collector,
                 item_paths: Iterable[tuple[str, ...]] = (), sample_tokens: bool = True):
        self.info = info
        self.ctx = Ctx(info, item_paths)
        self.method = method
        self.exact_tokens = exact_tokens
        self.out = out
        self.kind = "dpo" if method == "dpo" else "rft" if method == "reinforcement" else info.format
        self.check = {"dpo": check_dpo, "completion": check_completion, "chat": check_chat,
                      "rft": check_rft}[self.kind]
        # The estimate of the examples not counted exactly. With ``sample_tokens``, a systematic
        # sample of them (the first 16, then every ``sample_mask + 1``-th valid example, the stride
        # chosen from the file's size for about SAMPLE_TARGET examples) is counted exactly, and
        # tokens = ratio * characters + overheads, the ratio measured on the sample (a ratio
        # estimator, with its error bound). Without, the ratio is the sample's UTF-8 bytes per
        # character / 4 (no encoding loaded).
        self.sample_tokens = sample_tokens and not exact_tokens
        self.sample_mask = 0              # every example, unless the file's size sets a stride
        self.sample_chars = 0
        self.sample_bytes = 0
        self.s_n = 0                      # sampled examples, and the sums of the ratio estimator:
        self.s_x = self.s_y = 0           # x = characters, y = exact tokens - overheads
        self.s_xx = self.s_xy = self.s_yy = 0
        self.s_ax = self.s_ay = 0         # the same for the trainable assistant messages
        self.s_max = 0                    # the largest sampled example's tokens
        self.limit = info.max_tokens_per_example
        self.encoding = info.encoding
        self.lineno = 0
        self.examples = 0
        self.valid_examples = 0
        self.blank_start = 0  # first line of a run of blank lines not yet known to be trailing
        self.blank_count = 0
        self.dupes = DigestTable()
        self.duplicates = 0
        self.counted = 0  # valid examples counted exactly, and their tokens
        self.counted_tokens = 0
        self.counted_assistant = 0
        self.max_tokens = 0
        self.est_chars = self.est_over = 0  # the other valid examples: the estimate's terms
        self.est_achars = self.est_aover = 0
        self.max_est_key = -1  # the example that looks longest: (characters, overhead)
        self.max_est: tuple[int, int] = (0, 0)
        self.max_bound = 0  # the largest bound of an example's tokens (exact when counted)
        self.with_system = 0
        self.without_system_lines: list[int] = []
        self.without_system = 0
        self.system_first: int | None = None  # digest and line of the first system message
        self.system_first_line = 0
        self.system_last: str | None = None  # the previous example's system message
        self.system_variants: set[int] = set()  # digests of the system messages (up to 1000)
        self.system_differs_line = 0
        self.checks_system = not (info.format == "completion" and method != "dpo") and self.kind != "rft"
        self.image_examples = 0  # examples with images (at most max_image_examples_per_file)
        self.max_image_examples = load_catalogue().vision.max_image_examples_per_file

    # -- lines ----------------------------------------------------------------
    def lines(self, parts: list[bytes]) -> None:
        """Checks consecutive lines (without their newline; CRLF already made LF). This is the
        validator's innermost loop, run once per example: it keeps its state in local variables,
        inlines the duplicate table's probe and, for chat data, the common example's checks
        (``rules.check_chat``'s fast path, which it mirrors), and only adds up the cheap token
        estimate's terms (characters and overheads), turned into tokens once at the end."""
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        check, ctx, out = self.check, self.ctx, self.out
        limit, exact_tokens, checks_system, kind = self.limit, self.exact_tokens, self.checks_system, self.kind
        fast = kind == "chat" and not exact_tokens
        smask = self.sample_mask
        dupes = self.dupes
        keys, first_lines, mask, room = dupes.keys, dupes.lines, dupes.mask, dupes.room
        last_system = self.system_last
        n0 = n = self.lineno
        blanks = invalid = 0  # the other lines are examples, the other examples valid
        est_chars = est_over = est_achars = est_aover = est_nassist = 0  # examples not counted exactly
        max_key, max_est, max_bound = self.max_est_key, self.max_est, self.max_bound
        try:
            for line in parts:
                n += 1
                try:
                    obj = loads(line)
                except decode_error as exc:
                    self.lineno = n
                    if not line.strip():
                        if not self.blank_count:
                            self.blank_start = n
                        self.blank_count += 1
                        blanks += 1
                        continue
                    if self.blank_count:
                        self._flush_blank()
                    invalid += 1
                    self._unparsable(line, exc)
                    continue
                if self.blank_count:
                    self._flush_blank()
                if type(obj) is not dict:
                    invalid += 1
                    out.error(n, "not_an_object", f"the line is {_kind(obj)}, not a JSON object; each line "
                                                  f'must be one example such as {{"messages": [...]}}')
                    continue
                # Duplicates: the line's 64-bit digest in the open-addressing table (see dedupe.py).
                h = hash(line) or 1
                i = h & mask
                k = keys[i]
                while k:
                    if k == h:
                        self.duplicates += 1
                        out.warning(n, "duplicate_example", f"the example repeats line {first_lines[i]} exactly")
                        break
                    i = (i + 1) & mask
                    k = keys[i]
                else:
                    if room:
                        keys[i] = h
                        first_lines[i] = n
                        room -= 1
                    else:
                        dupes.room = room
                        dupes.add(h, n)  # grows the table (or notes that it is full)
                        keys, first_lines, mask, room = dupes.keys, dupes.lines, dupes.mask, dupes.room
                # The common chat example, checked here (rules.check_chat's fast path, inlined: a
                # call and its summary tuple cost as much as the checks): only "messages", each
                # {"role", "content"} with role system/user/assistant and non-empty text (an
                # assistant message may have an integer "weight" 0 or 1), ending with a trained
                # assistant message. Anything else, or any doubt, goes to check().
                if fast and len(obj) == 1:
                    msgs = obj.get("messages")  # None, a dict or a string fail the loop's checks
                    plain = False
                    chars = achars = nassist = 0
                    system = role = None
                    try:
                        for m in msgs:
                            c = m["content"]
                            if type(c) is not str:
                                break
                            lc = len(c)
                            if not lc:
                                break
                            role = m["role"]
                            if len(m) != 2:
                                if len(m) != 3 or role != "assistant":
                                    break
                                weight = m["weight"]
                                if type(weight) is not int:
                                    break
                                if weight == 0:
                                    chars += lc
                                    continue
                                if weight != 1:
                                    break
                            if role == "assistant":
                                nassist += 1
                                achars += lc
                            elif role == "user":
                                chars += lc
                            elif role == "system":
                                if system is None:
                                    system = c
                                chars += lc
                            else:
                                break
                        else:
                            plain = nassist and role == "assistant"
                    except (KeyError, TypeError):
                        pass
                    bound = len(line)
                    if plain and bound <= limit:  # no warning, no image, within the limit by its bytes
                        chars += achars
                        overhead = _REPLY_PRIMING + _PER_MESSAGE * len(msgs)
                        est_chars += chars
                        est_over += overhead
                        est_achars += achars
                        est_nassist += nassist
                        if chars + 4 * overhead > max_key:
                            max_key, max_est = chars + 4 * overhead, (chars, overhead)
                        if not n & smask or n < 16:  # calibration sample for the estimate
                            self._sample(obj, chars, overhead, achars, _PER_MESSAGE * nassist)
                        if bound > max_bound:
                            max_bound = bound
                        if system is None:
                            self.without_system += 1
                            if len(self.without_system_lines) < MAX_ISSUES:
                                self.without_system_lines.append(n)
                        elif system is not last_system and system != last_system:
                            last_system = system
                            self._system(n, system)
                        continue
                try:
                    chars, achars, overhead, aoverhead, system, notes, images = check(obj, ctx)
                except Bad as bad:
                    invalid += 1
                    out.error(n, bad.code, bad.message)
                    continue
                if notes:
                    for code, message in notes:
                        out.warning(n, code, message)
                if images:
                    self.image_examples += 1
                    if self.image_examples > self.max_image_examples:
                        invalid += 1
                        out.error(n, "too_many_image_examples",
                                  f"this is example {self.image_examples:,} with images; a file may have at most "
                                  f"{self.max_image_examples:,} examples with images: split the file")
                        continue
                # Tokens. A token is at least one byte, so the line's length (plus the flat figure of
                # its images, which are not text) bounds the example's tokens: exact counting, the
                # costly part, runs only when that bound (or, failing it, the UTF-8 bytes of the
                # example's strings plus its overheads, and then the bound from the pairs of bytes
                # that are tokens) exceeds the limit, or when asked for.
                bound = len(line) + images
                if bound > limit or exact_tokens:
                    tight = utf8_bound(kind, obj, overhead)
                    if tight is not None and tight < bound:
                        bound = tight
                    # The pair bound is about 2/3 of the text's bytes at best: tried only when that
                    # could bring the example under the limit (and not on images' base64 text).
                    if (bound > limit and not exact_tokens and not images and tight is not None
                            and 2 * (tight - overhead) // 3 + overhead <= limit):
                        tighter = pair_bound(kind, obj, overhead, self.encoding)
                        if tighter is not None and tighter < bound:
                            bound = tighter
                    if bound > limit or exact_tokens:
                        tokens, assistant = count_example(kind, obj, self.encoding)
                        if tokens > limit:
                            invalid += 1
                            out.error(n, "too_many_tokens", f"the example has {tokens:,} tokens "
                                                            f"({self.encoding}); {self.info.name} accepts at most "
                                                            f"{limit:,} per example: shorten or split it")
                            continue
                        self.counted += 1
                        self.counted_tokens += tokens
                        self.counted_assistant += assistant
                        if tokens > self.max_tokens:
                            self.max_tokens = tokens
                        bound = tokens
                    else:
                        est_chars += chars
                        est_over += overhead
                        est_achars += achars
                        est_aover += aoverhead
                        if chars + 4 * overhead > max_key:
                            max_key, max_est = chars + 4 * overhead, (chars, overhead)
                else:
                    est_chars += chars
                    est_over += overhead
                    est_achars += achars
                    est_aover += aoverhead
                    if chars + 4 * overhead > max_key:
                        max_key, max_est = chars + 4 * overhead, (chars, overhead)
                    if not n & smask or n < 16:  # calibration sample for the estimate
                        self._sample(obj, chars, overhead, achars, aoverhead)
                if bound > max_bound:
                    max_bound = bound
                if checks_system:
                    if system is None:
                        self.without_system += 1
                        if len(self.without_system_lines) < MAX_ISSUES:
                            self.without_system_lines.append(n)
                    elif system is not last_system and system != last_system:
                        last_system = system
                        self._system(n, system)
        finally:
            self.lineno = n
            dupes.room = room
            self.system_last = last_system
            examples = n - n0 - blanks
            self.examples += examples
            self.valid_examples += examples - invalid
            self.est_chars += est_chars
            self.est_over += est_over
            self.est_achars += est_achars
            self.est_aover += est_aover + _PER_MESSAGE * est_nassist
            self.max_est_key, self.max_est, self.max_bound = max_key, max_est, max_bound

    def set_sample_stride(self, size: int) -> None:
        """About SAMPLE_TARGET sampled examples in a file of ``size`` bytes, taken as one
        example per SAMPLE_BYTES_PER_EXAMPLE: a function of the size alone, so that the
        report does not depend on how the bytes were chunked."""
        stride = 1
        while stride * 2 * SAMPLE_TARGET * SAMPLE_BYTES_PER_EXAMPLE <= size:
            stride *= 2
        self.sample_mask = stride - 1

    def _sample(self, obj: dict, chars: int, overhead: int, achars: int, aoverhead: int) -> None:
        if not self.sample_tokens:
            c, b = text_sizes(obj)
            self.sample_chars += c
            self.sample_bytes += b
            return
        tokens, assistant = count_example(self.kind, obj, self.encoding)
        y = tokens - overhead
        self.s_n += 1
        self.s_x += chars
        self.s_y += y
        self.s_xx += chars * chars
        self.s_xy += chars * y
        self.s_yy += y * y
        self.s_ax += achars
        self.s_ay += assistant - aoverhead
        if tokens > self.s_max:
            self.s_max = tokens

    def _estimate(self) -> tuple[float, float, dict[str, Any] | None]:
        """(tokens per character, of the assistant's, the estimate's description)."""
        estimated = self.valid_examples - self.counted
        if not self.sample_tokens:
            ratio = self.sample_bytes / (4 * self.sample_chars) if self.sample_chars else 0.25
            return ratio, ratio, ({"method": "characters", "sampled_examples": 0, "estimated_examples": estimated,
                                   "relative_error_95": None} if estimated else None)
        if not self.s_n or not self.s_x:
            return 0.25, 0.25, None
        r = self.s_y / self.s_x
        ra = self.s_ay / self.s_ax if self.s_ax else r
        n, big_n = self.s_n, max(estimated, self.s_n)
        total = r * self.est_chars + self.est_over + self.counted_tokens
        if n > 1 and total > 0:
            # Var(T) = N^2 (1 - n/N) s_d^2 / n, d = y - r x (the ratio estimator's residuals)
            ss = max(0.0, self.s_yy - 2 * r * self.s_xy + r * r * self.s_xx)
            var = big_n * big_n * (1 - n / big_n) * (ss / (n - 1)) / n
            bound = round(1.96 * var ** 0.5 / total, 5)
        else:
            bound = 0.0 if n == big_n else None
        return r, ra, {"method": "sample", "sampled_examples": n, "estimated_examples": estimated,
                       "relative_error_95": bound}

    def secrets(self, line: bytes, n: int) -> None:
        what = find_secret(line)
        if what:
            self._secret(n, what)

    def secrets_in_block(self, buf: bytes, start: int, end: int, parts: list[bytes], first_line: int) -> None:
        """Looks for credentials in ``buf[start:end]``, whose lines are ``parts`` (numbered from
        ``first_line``)."""
        hits = candidates(buf, start, end)
        if not hits:
            return
        hits.sort()
        idx, pos, done = 0, start, -1
        for off in hits:
            idx += buf.count(b"\n", pos, off)
            pos = off
            if idx != done:
                done = idx
                what = scan_line(parts[idx])
                if what:
                    self._secret(first_line + idx, what)

    def _secret(self, n: int, what: str) -> None:
        self.out.warning(n, "possible_secret", f"the line seems to contain {what}; remove or redact "
                                               f"credentials before training")

    def _system(self, n: int, system: str) -> None:
        """An example whose system message differs from the previous example's."""
        digest = hash(system)
        if not self.system_first_line:
            self.system_first, self.system_first_line = digest, n
        elif digest != self.system_first and not self.system_differs_line:
            self.system_differs_line = n
        if len(self.system_variants) < _MAX_SYSTEM_VARIANTS:
            self.system_variants.add(digest)

    def _flush_blank(self) -> None:
        if self.blank_count:
            more = f" (and {self.blank_count - 1} more blank line(s) after it)" if self.blank_count > 1 else ""
            self.out.error(self.blank_start, "blank_line", f"the line is blank{more}; remove blank lines "
                                                           f"between examples")
            self.blank_count = 0

    def _unparsable(self, line: bytes, exc: Exception) -> None:
        n = self.lineno
        if b"\x00" in line:
            self.out.error(n, "not_utf8", "the line contains NUL bytes: the file looks UTF-16 encoded or "
                                          "binary; save it as UTF-8 text")
            return
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            bad = line[err.start]
            hint = ("the file looks Latin-1 / Windows-1252 encoded" if 0x80 <= bad <= 0xFF else "")
            self.out.error(n, "not_utf8", f"byte 0x{bad:02X} at byte {err.start + 1} of the line is not valid "
                                          f"UTF-8{'; ' + hint if hint else ''}; save the file as UTF-8")
            return
        text = str(exc)
        if line.startswith(_BOM):
            self.out.error(n, "invalid_json", "the line starts with a byte order mark: were several files "
                                              "concatenated? Remove it")
            return
        stripped = line.strip()
        if stripped in (b"{", b"[") or (stripped.startswith((b"{", b"[")) and "unexpected end" in text):
            hint = "; a JSON object seems to span several lines: JSON Lines needs one object per line"
        elif "unexpected content after document" in text:
            hint = "; there is more than one JSON value on the line: put one example per line"
        else:
            hint = ""
        self.out.error(n, "invalid_json", f"not valid JSON ({_clean_json_error(text)}){hint}")

    # -- the end ---------------------------------------------------------------
    def finish(self, limits) -> dict[str, Any]:
        out = self.out
        if self.examples < limits.min_examples:
            have = "the file has no examples" if not self.examples else f"the file has {self.examples} examples"
            out.error(None, "too_few_examples", f"{have}; fine-tuning needs at least {limits.min_examples} "
                                                f"(hundreds to thousands are recommended)")
        elif self.examples < limits.recommended_min_examples:
            out.warning(None, "few_examples", f"the file has {self.examples} examples; fewer than "
                                              f"{limits.recommended_min_examples} rarely change the model "
                                              f"(hundreds to thousands are recommended)")
        if self.kind == "rft":
            rft = load_catalogue().reinforcement
            if self.examples > rft.max_training_examples:
                out.error(None, "too_many_examples", f"the file has {self.examples:,} examples; a reinforcement "
                                                     f"fine-tuning training file may have at most "
                                                     f"{rft.max_training_examples:,} (a validation file "
                                                     f"{rft.max_validation_examples:,}): split it or keep the best "
                                                     f"ones")
        checks_system = self.checks_system
        # every valid example has a system message or is counted without one
        self.with_system = self.valid_examples - self.without_system if checks_system else 0
        if checks_system and self.valid_examples:
            if not self.with_system:
                out.warning(None, "no_system_message", "no example has a system message; include the system "
                                                       "message you will use in production in every example")
            elif self.without_system:
                for n in self.without_system_lines:
                    out.warning(n, "missing_system_message", f"the example has no system message, while "
                                                             f"{self.with_system} others have one")
                unlisted = self.without_system - len(self.without_system_lines)
                if unlisted:
                    out.warning_counts["missing_system_message"] += unlisted
            if len(self.system_variants) > 1 and self.system_differs_line:
                count = len(self.system_variants)
                more = "+" if count >= _MAX_SYSTEM_VARIANTS else ""
                out.warning(self.system_differs_line, "inconsistent_system_message",
                            f"the system message differs from the one on line {self.system_first_line}; the file "
                            f"has {count}{more} different system messages: the model learns best with the one "
                            f"you will use in production, the same in every example")
        ratio, aratio, how = self._estimate()
        estimated = round(self.est_chars * ratio) + self.est_over
        total = self.counted_tokens + estimated
        max_tokens = max(self.max_tokens, round(self.max_est[0] * ratio) + self.max_est[1] if self.max_est_key >= 0
                         else 0)
        counted = self.counted
        if how and how["method"] == "sample" and how["sampled_examples"] == how["estimated_examples"]:
            counted += self.s_n  # every example was in the sample: the figures are exact
            max_tokens = max(self.max_tokens, self.s_max)
        exact = counted == self.valid_examples
        return {
            "format": self.kind,
            "lines": self.lineno,
            "examples": self.examples,
            "valid_examples": self.valid_examples,
            "encoding": self.encoding,
            "token_limit": self.limit,
            "tokens_exact": exact,
            "exactly_counted_examples": counted,
            "total_tokens": total,
            "max_tokens_per_example": max_tokens,
            "max_tokens_per_example_bound": self.max_bound,
            "assistant_tokens": self.counted_assistant + round(self.est_achars * aratio) + self.est_aover,
            "token_estimate": how,
            "examples_without_system_message": self.without_system if checks_system else 0,
            "distinct_system_messages": len(self.system_variants),
            "duplicates": self.duplicates,
            "duplicate_check_complete": self.dupes.complete,
            "examples_with_images": self.image_examples,
            **({"item_fields_in_every_example": sorted(self.ctx.common_fields or ())} if self.kind == "rft" else {}),
            # reinforcement fine-tuning is billed per training hour
            "estimated_billable_tokens_per_epoch": None if self.kind == "rft" else total,
            **({} if self.kind == "rft" else _epochs_estimate(self.valid_examples, total)),
        }


# When a job leaves n_epochs out, the service chooses it from the training data. The
# assumption stated with the estimate is the rule OpenAI publishes for its default (the
# cookbook's data-preparation notebook): 3 epochs, raised so that training sees at least 100
# examples (at most 25 epochs), lowered so that it sees at most 25,000 (at least 1).
TARGET_EPOCHS, MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES, MAX_DEFAULT_EPOCHS = 3, 100, 25_000, 25
EPOCHS_ASSUMPTION = ("n_epochs left to the service: assumed 3, raised so that training sees at least 100 examples "
                     "(at most 25 epochs) or lowered so that it sees at most 25,000 (at least 1); a job that sets "
                     "n_epochs is billed for that many")


def default_epochs(examples: int) -> int:
    """The epochs the service is assumed to choose for a file of ``examples``."""
    if not examples:
        return TARGET_EPOCHS
    if examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // examples)
    if examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(1, MAX_TARGET_EXAMPLES // examples)
    return TARGET_EPOCHS


def _epochs_estimate(examples: int, per_epoch: int) -> dict[str, Any]:
    epochs = default_epochs(examples)
    return {"assumed_epochs": epochs, "estimated_billable_tokens": per_epoch * epochs,
            "epochs_assumption": EPOCHS_ASSUMPTION}


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _clean_json_error(text: str) -> str:
    # orjson: "unexpected character: line 1 column 17 (char 16)" -> "unexpected character at column 17"
    head, sep, tail = text.partition(": line 1 column ")
    if sep:
        col = tail.split(" ", 1)[0]
        return f"{head} at column {col}"
    return text


def _head_first(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The same bytes, the first chunk holding at least 4 of them (when the file has them), so
    that byte order marks and file signatures are seen whole."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 4:
            break
    if head:
        yield head
    yield from chunks


def _start_problem(head: bytes) -> str | None:
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            return what
    return None


def validate(source: Source, *, model: str, method: str = "supervised", size: int | None = None,
             exact_tokens: bool = False, sha256: bool = False, grader: Any = None, response_format: Any = None,
             chunk_size: int = CHUNK_SIZE, sample_tokens: bool = True) -> ValidationReport:
    """Validates a JSON Lines training file for fine-tuning ``model`` with ``method``.

    ``grader`` (reinforcement only): the job's grader configuration (a dict). It is checked
    (:func:`.graders.validate_grader`; its problems are the report's file-level errors and
    warnings, the field named first in the message) and every ``{{item.<field>}}`` it reads
    must be in every example (``missing_item_field`` on the example's line).
    ``response_format``: the job's response format, checked with the grader.

    ``source`` is a binary file-like object (``.read(n)``), an iterable of ``bytes``
    chunks split anywhere (e.g. a blob download's ``.chunks()``), or ``bytes``.
    ``size``, when known, lets an oversized file be rejected without reading it, and
    sets the token estimate's sample stride (without it, every example is in the sample:
    exact, and as slow as ``exact_tokens`` on a large stream).
    ``exact_tokens`` counts every example's tokens (otherwise only examples whose
    cheap upper bound exceeds the model's limit are counted, and the token figures
    of ``stats`` are estimates: ``tokens_exact`` says which). ``sha256`` adds the
    file's SHA-256 to ``stats`` (computed in the same pass). ``sample_tokens``
    (default) counts a sample of about SAMPLE_TARGET examples exactly for the estimate
    (``stats["token_estimate"]``: sample size and 95 % error bound); without it the
    estimate is characters / 4 and no encoding is loaded unless an example may reach
    the limit.
    """
    catalogue = load_catalogue()
    limits = catalogue.limits
    out = _Collector()
    try:
        info = catalogue.resolve(model)
    except UnknownModelError as exc:
        out.error(None, "unknown_model", str(exc))
        return _report(False, model, None, method, out, {})
    if not info.fine_tunable:
        out.error(None, "model_not_fine_tunable", f"{info.name} cannot be fine-tuned; fine-tunable models: "
                                                  f"{', '.join(catalogue.known_models(fine_tunable_only=True))}")
        return _report(False, model, info.name, method, out, {})
    if method not in SUPPORTED_METHODS or method not in info.methods:
        checkable = [m for m in info.methods if m in SUPPORTED_METHODS]
        if not checkable:
            why = (f"{info.name} is trained with {' and '.join(info.methods)} fine-tuning only; this validator "
                   f"checks {', '.join(SUPPORTED_METHODS)} datasets only")
        elif method not in SUPPORTED_METHODS:
            why = f"this validator checks {', '.join(SUPPORTED_METHODS)} datasets only, not {method!r}"
        elif checkable == ["reinforcement"]:
            why = (f"{info.name} is trained with reinforcement fine-tuning only (a grader scores the model's "
                   f"answers): validate with method reinforcement")
        else:
            why = f"{info.name} does not support {method!r} training; use {' or '.join(checkable)}"
        out.error(None, "method_not_supported", why)
        return _report(False, model, info.name, method, out, {})
    item_paths: list[tuple[str, ...]] = []
    grader_fields: list[str] | None = None
    if grader is not None or response_format is not None:
        if method != "reinforcement":
            out.warning(None, "grader_not_applicable", f"a grader (or response format) is used by reinforcement "
                                                       f"fine-tuning only; it was ignored for {method!r} data")
        else:
            from .graders import validate_grader, validate_response_format  # only when asked: a cold start's cost

            if grader is not None:
                checked = validate_grader(grader, response_format=response_format, catalogue=catalogue)
                issues = checked.issues
                item_paths = checked.item_paths
                grader_fields = sorted(checked.item_fields)
            else:
                issues = validate_response_format(response_format)
            for issue in issues:
                if issue.severity == ERROR:
                    out.error(None, issue.code, issue.message)
                else:
                    out.warning(None, issue.code, issue.message)
    if size is not None and size > limits.max_file_bytes:
        out.error(None, "file_too_large", f"the file is {size:,} bytes; files must be at most "
                                          f"{limits.max_file_bytes:,} bytes (512 MB): split it")
        return _report(False, model, info.name, method, out, {"bytes": size})

    run = _Run(info, method, exact_tokens, out, item_paths, sample_tokens)
    run.set_sample_stride(len(source) if size is None and isinstance(source, (bytes, bytearray, memoryview))
                          else size or 0)
    digest = hashlib.sha256() if sha256 else None
    total = 0
    pending: list[bytes] = []  # pieces of the current, unfinished line
    pending_len = 0
    skipping = False  # inside an over-long line: drop bytes until its end
    started = False
    bom = False
    stopped = False
    max_bytes = limits.max_file_bytes
    lines = run.lines
    size_hint = size or 0

    chunks = _chunks(source, chunk_size)
    if not isinstance(source, (bytes, bytearray, memoryview)) and getattr(source, "read", None) is None:
        # an iterable, such as a blob download: fetched while validating (never past the size limit)
        chunks = _prefetched(chunks, limits.max_file_bytes)
    for chunk in _head_first(chunks):
        total += len(chunk)
        if total > max_bytes:
            out.error(None, "file_too_large", f"the file is larger than {max_bytes:,} bytes (512 MB); the "
                                              f"validator stopped reading at that size: split the file")
            stopped = True
            break
        if digest is not None:
            digest.update(chunk)
        if not started:
            started = True
            problem = _start_problem(chunk)
            if problem:
                out.error(1, "not_utf8", f"{problem}; save the file as uncompressed UTF-8 JSON Lines")
                stopped = True
                break
            if chunk.startswith(_BOM):
                bom = True
                chunk = chunk[3:]
        if b"\r" in chunk:  # CRLF -> LF (a CR cannot occur raw inside a JSON string)
            chunk = chunk.replace(b"\r\n", b"\n")
        nl = chunk.find(b"\n")
        if nl < 0:
            if not skipping:
                pending.append(chunk)
                pending_len += len(chunk)
                if pending_len > MAX_LINE_BYTES:
                    _too_long(run)
                    pending, pending_len, skipping = [], 0, True
            continue
        # The line that ends at the chunk's first newline. Lines keep their "\n" (which orjson
        # skips as whitespace): BytesIO.readlines splits at memchr speed, bytes.split does not.
        if skipping:
            skipping = False
        elif pending:
            if pending_len + nl > MAX_LINE_BYTES:
                _too_long(run)
            else:
                pending.append(chunk[:nl + 1])
                first = b"".join(pending)
                if first[-2:] == b"\r\n":  # a CRLF split between two chunks
                    first = first[:-2] + b"\n"
                lines([first])
                run.secrets(first, run.lineno)
            pending, pending_len = [], 0
        else:
            first = chunk[:nl + 1]
            lines([first])
            run.secrets(first, run.lineno)
        # The lines that lie wholly inside the chunk, and the start of the next one.
        bio = BytesIO(chunk)
        bio.seek(nl + 1)
        parts = bio.readlines()
        if size_hint and parts:  # size the duplicate table for the whole file once
            run.dupes.reserve(int(size_hint / (len(chunk) / (len(parts) + 1)) * 1.1))
            size_hint = 0
        tail = parts.pop() if parts and parts[-1][-1:] != b"\n" else b""
        if parts:
            first_line = run.lineno + 1
            lines(parts)
            run.secrets_in_block(chunk, nl + 1, len(chunk) - len(tail), parts, first_line)
        if tail:
            if len(tail) > MAX_LINE_BYTES:
                _too_long(run)
                skipping = True
            else:
                pending, pending_len = [tail], len(tail)
    if not stopped:
        if not stopped and pending and not skipping:
            last = b"".join(pending)
            if last[-1:] == b"\r":
                last = last[:-1]
            last += b"\n"  # as every other line: the duplicate check compares whole lines
            lines([last])
            run.secrets(last, run.lineno)
    stats: dict[str, Any] = {"bytes": total, "utf8_bom": bom}
    if not stopped:
        stats.update(run.finish(limits))
        if grader_fields is not None:
            stats["grader_item_fields"] = grader_fields
        if digest is not None:
            stats["sha256"] = digest.hexdigest()
    out.sort()
    return _report(not out.error_counts, model, info.name, method, out, stats)


def _too_long(run: _Run) -> None:
    run.lineno += 1
    run.examples += 1
    run._flush_blank()
    run.out.error(run.lineno, "line_too_long", f"the line is longer than {MAX_LINE_BYTES:,} bytes "
                                               f"({MAX_LINE_BYTES >> 20} MiB) and was not read: no example that "
                                               f"long fits {run.info.name}'s {run.limit:,} tokens; shorten or "
                                               f"split it")


def _report(valid: bool, model: str, base: str | None, method: str, out: _Collector,
            stats: dict[str, Any]) -> ValidationReport:
    return ValidationReport(valid=valid, model=model, base_model=base, method=method, errors=out.errors,
                            warnings=out.warnings, error_counts=out.error_counts,
                            warning_counts=out.warning_counts, stats=stats)


def validate_path(path: str | os.PathLike[str], **kw: Any) -> ValidationReport:
    """Validates the file at ``path`` (its size is checked before it is read)."""
    size = os.path.getsize(path)
    kw.setdefault("size", size)
    with open(path, "rb") as fh:
        return validate(fh, **kw)
