"""Memory stays bounded: the duplicate table has a fixed ceiling, and a large stream stays under 150 MB."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from shared.validation.dedupe import DigestTable

ROOT = Path(__file__).resolve().parents[2]


def test_digest_table_finds_repeats_with_their_first_line():
    t = DigestTable(initial_slots=8)
    for i in range(1, 1001):
        assert t.add(hash(f"example {i}"), i) == 0
    assert t.add(hash("example 17"), 2000) == 17
    assert len(t) == 1000 and t.complete


def test_digest_table_memory_has_a_ceiling():
    t = DigestTable(initial_slots=8, max_slots=1 << 10)
    for i in range(1, 5000):
        t.add(hash(("e", i)), i)
    assert t.slots == 1 << 10 and t.nbytes == (1 << 10) * 12
    assert len(t) == (1 << 10) * 3 // 4
    assert not t.complete
    assert t.add(hash(("e", 5)), 9999) == 5  # tracked examples are still recognised
    default = DigestTable()
    assert default._max_slots * 12 == 24 * 1024 * 1024  # the documented 24 MiB bound


def test_reserve_sizes_the_table_once_within_the_bound():
    t = DigestTable(initial_slots=8, max_slots=1 << 12)
    t.add(hash("a"), 1)
    t.reserve(1000)
    assert t.slots == 2048 and len(t) == 1 and t.add(hash("a"), 5) == 1
    t.reserve(10**9)
    assert t.slots == 1 << 12  # never past the ceiling


def test_peak_memory_on_a_large_stream_with_the_tokenizer_loaded():
    """~96 MB streamed through the validator, with long examples that force the o200k tokenizer
    to load: peak RSS stays under 150 MB (the file is never held in memory)."""
    child = textwrap.dedent("""
        import json, resource, orjson
        from shared.validation import validate

        def source():
            system = {"role": "system", "content": "You are a helpful assistant."}
            long = orjson.dumps({"messages": [system, {"role": "user", "content": "Summarise."},
                                 {"role": "assistant", "content": "lorem ipsum dolor " * 4000}]}) + b"\\n"
            block = []
            for i in range(120_000):
                block.append(orjson.dumps({"messages": [system,
                    {"role": "user", "content": f"Question {i}: " + "how do I reset my password? " * 20},
                    {"role": "assistant", "content": f"Answer {i}: " + "open settings, then security. " * 10}]}))
                if len(block) == 1000:
                    yield b"\\n".join(block) + b"\\n"
                    block = []
                if i % 40_000 == 0:
                    yield long
            yield b"\\n".join(block) + b"\\n"

        report = validate(source(), model="gpt-4o-mini-2024-07-18")
        print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "valid": report.valid, "bytes": report.stats["bytes"],
                          "counted": report.stats["exactly_counted_examples"]}))
    """)
    out = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["valid"] and result["counted"] == 3 and result["bytes"] > 90 * 1024 * 1024
    print(result)
    assert result["rss_mb"] < 150, result
