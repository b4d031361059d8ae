"""The validator streams: any chunking gives the same report, size limits hold without reading everything."""
from __future__ import annotations

import io
import random

import pytest

from shared.validation import MAX_LINE_BYTES, validate, validate_path

from .builders import CHAT_MODEL, SYSTEM, codes_at, dataset, dumps, run


def mixed_file() -> bytes:
    """Non-ASCII text, CRLF, a BOM, errors and warnings: everything chunking could break."""
    examples = [dumps({"messages": [SYSTEM, {"role": "user", "content": f"Grüße {i} – 日本語 🙂"},
                                    {"role": "assistant", "content": f"Danke {i}!"}]}) for i in range(60)]
    examples[4] = b'{"messages": ['
    examples[9] = examples[3]
    examples[20] = dumps({"messages": [SYSTEM, {"role": "user", "content": "x"},
                                       {"role": "assistant", "content": "y", "weight": 2}]})
    examples[30] = "{\"messages\": [{\"role\": \"user\", \"content\": \"café\"}]}".encode("latin-1")
    examples[40] = dumps({"messages": [SYSTEM, {"role": "user", "content": "sk-proj-" + "a1" * 20},
                                       {"role": "assistant", "content": "ok"}]})
    return b"\xef\xbb\xbf" + b"\r\n".join(examples) + b"\r\n\r\n"


def chunked(data: bytes, sizes) -> list[bytes]:
    out, i = [], 0
    for n in sizes:
        if i >= len(data):
            break
        out.append(data[i:i + n])
        i += n
    if i < len(data):
        out.append(data[i:])
    return out


def test_same_report_whatever_the_chunk_boundaries():
    data = mixed_file()
    reference = validate(data, model=CHAT_MODEL).to_dict()
    assert codes_at(validate(data, model=CHAT_MODEL)) == [(5, "invalid_json"), (21, "invalid_weight"),
                                                          (31, "not_utf8")]
    assert reference["warning_counts"] == {"duplicate_example": 1, "possible_secret": 1}
    rng = random.Random(1234)
    for attempt in range(30):
        sizes = [rng.choice((1, 2, 3, 5, 7, 64, 333, 4096)) for _ in range(len(data))]
        assert validate(chunked(data, sizes), model=CHAT_MODEL).to_dict() == reference, attempt
    assert validate(chunked(data, [1] * len(data)), model=CHAT_MODEL).to_dict() == reference


def test_every_split_point_inside_multibyte_characters_and_the_bom():
    data = mixed_file()
    reference = validate(data, model=CHAT_MODEL).to_dict()
    for at in [1, 2, 3, 4] + [i for i in range(len(data)) if data[i] >= 0x80][:200]:
        assert validate([data[:at], data[at:]], model=CHAT_MODEL).to_dict() == reference, at


def test_file_like_objects_and_chunk_iterables_agree(tmp_path):
    data = mixed_file()
    path = tmp_path / "train.jsonl"
    path.write_bytes(data)
    reference = validate(data, model=CHAT_MODEL).to_dict()   # bytes: their size is known
    # The token estimate's sample is chosen from the file's size, so a stream is given it, as intake does.
    assert validate(io.BytesIO(data), model=CHAT_MODEL, chunk_size=7, size=len(data)).to_dict() == reference
    assert validate(iter([data]), model=CHAT_MODEL, size=len(data)).to_dict() == reference
    assert validate_path(path, model=CHAT_MODEL).to_dict() == reference
    assert validate(iter([data]), model=CHAT_MODEL).to_dict() == reference  # small: the sample is the whole file


def test_a_blob_downloader_chunks_method_can_be_passed():
    class Downloader:  # the shape of azure.storage.blob's StorageStreamDownloader
        def __init__(self, data):
            self.data = data

        def chunks(self):
            for i in range(0, len(self.data), 1000):
                yield self.data[i:i + 1000]

    data = dataset(n=60)
    assert validate(Downloader(data).chunks(), model=CHAT_MODEL).valid


def test_a_size_over_512_mb_is_rejected_without_reading():
    class Unreadable(io.RawIOBase):
        def read(self, n=-1):
            raise AssertionError("the content must not be read")

    report = validate(Unreadable(), model=CHAT_MODEL, size=512 * 1024 * 1024 + 1)
    assert codes_at(report) == [(None, "file_too_large")]
    assert report.stats == {"bytes": 512 * 1024 * 1024 + 1}
    assert validate(io.BytesIO(dataset(n=60)), model=CHAT_MODEL, size=512 * 1024 * 1024).valid


def test_a_stream_that_grows_past_512_mb_is_stopped():
    block = b"x" * (1 << 20)  # one long line, never parsed: cheap to stream
    seen = []

    def source():
        for i in range(600):
            seen.append(i)
            yield block

    report = validate(source(), model=CHAT_MODEL)
    assert (None, "file_too_large") in codes_at(report)
    assert len(seen) == 513  # stopped at the first chunk past the limit


def test_an_over_long_line_is_skipped_and_the_rest_checked():
    huge = b'{"messages": [{"role": "user", "content": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}]}'
    data = dataset(n=12, replace={3: huge, 7: b"{"})
    report = validate(chunked(data, [1 << 20] * 40), model=CHAT_MODEL)
    assert codes_at(report) == [(3, "line_too_long"), (7, "invalid_json")]
    assert report.stats["examples"] == 12


def test_an_over_long_last_line_without_newline():
    data = dataset(n=12) + b"x" * (MAX_LINE_BYTES + 1)
    assert codes_at(validate(chunked(data, [1 << 20] * 40), model=CHAT_MODEL)) == [(13, "line_too_long")]


def test_str_input_is_refused_with_a_clear_message():
    with pytest.raises(TypeError, match="bytes"):
        validate(dataset().decode(), model=CHAT_MODEL)
    with pytest.raises(TypeError, match="binary"):
        validate(io.StringIO(dataset().decode()), model=CHAT_MODEL)


def test_sha256_is_computed_in_the_same_pass():
    import hashlib

    data = mixed_file()
    report = validate(chunked(data, [100] * 1000), model=CHAT_MODEL, sha256=True)
    assert report.stats["sha256"] == hashlib.sha256(data).hexdigest()
    assert report.stats["bytes"] == len(data)


def test_report_is_json_serialisable_with_the_documented_keys():
    import json

    d = run(mixed_file()).to_dict()
    assert list(d) == ["valid", "model", "base_model", "method", "errors", "warnings", "error_counts",
                       "warning_counts", "stats"]
    assert json.loads(json.dumps(d)) == d
    assert all(set(i) == {"line", "code", "message"} for i in d["errors"] + d["warnings"])
    for key in ("examples", "total_tokens", "max_tokens_per_example", "assistant_tokens",
                "examples_without_system_message", "duplicates", "estimated_billable_tokens_per_epoch",
                "tokens_exact"):
        assert key in d["stats"]
