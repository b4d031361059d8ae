"""Validator throughput and memory against a bare baseline (not a test: run it by hand).

    .venv/bin/python -m tests.validation.bench [--size-mb 50] [--rounds 5] [--model gpt-4o-mini-2024-07-18]

Generates a chat dataset of the given size (once, in a temporary folder), then
times, alternately, the baseline (read each line, ``orjson.loads`` it, check
its length against the limit and count it) and ``validate_path`` on the same
file; prints the best time of each, their ratio, throughput, and the peak RSS
of the validator in a fresh process.

Recorded on the development VM (2 shared vCPUs, CPython 3.11.7; wall-clock
ratios there swing by +-20% with the other jobs' load, so the instruction
counts, measured with valgrind on 10 MB and 5 MB files, are the steadier figure):

| file | baseline | validator | ratio (wall) | ratio (instructions) | peak RSS |
|---|---|---|---|---|---|
| chat, 50 MB, 1.4 KB lines | 0.16-0.19 s | 0.33-0.37 s | 1.8-2.1 | 1.86 | 27 MB |
| chat, 510 MB, 3 lines over 64 KB (o200k loaded) | 2.1-2.5 s | 5.0 s | 2.05 | - | 111 MB |
| short chat lines (225 B) | | | 3.3 | 2.61 | 29 MB |
| tool calling (844 B lines) | | | 4.9 | 3.31 | 27 MB |
| long chat lines (8 KB) | | | 1.4 | - | 26 MB |
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
WORDS = ("the quick brown fox jumps over lazy dog customer order refund policy account please thank you "
         "help support ticket shipping delivery price invoice address change cancel return warranty").split()
ACCENTED = ("café", "naïve", "données", "Straße", "señor", "日本語")


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) if rng.random() > 0.03 else rng.choice(ACCENTED) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def generate(path: Path, size_mb: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    target = size_mb * 1024 * 1024
    system = {"role": "system", "content": "You are Contoso's support assistant. Answer briefly and politely."}
    size = 0
    with open(path, "wb") as fh:
        while size < target:
            messages = [system]
            for _ in range(rng.randint(1, 3)):
                messages.append({"role": "user", "content": " ".join(
                    sentence(rng, rng.randint(5, 25)) for _ in range(rng.randint(1, 4)))})
                messages.append({"role": "assistant", "content": " ".join(
                    sentence(rng, rng.randint(5, 25)) for _ in range(rng.randint(1, 6)))})
            line = orjson.dumps({"messages": messages}) + b"\n"
            fh.write(line)
            size += len(line)


def baseline(path: Path, limit: int) -> int:
    n = too_long = 0
    with open(path, "rb") as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
            if len(line) > limit:
                too_long += 1
    return n


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size-mb", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--model", default="gpt-4o-mini-2024-07-18")
    p.add_argument("--path", help="an existing file to use instead of a generated one")
    args = p.parse_args()

    from shared.catalogue import load_catalogue
    from shared.validation import validate_path

    limit = load_catalogue().resolve(args.model).max_tokens_per_example
    tmp = tempfile.TemporaryDirectory()
    path = Path(args.path) if args.path else Path(tmp.name) / f"chat-{args.size_mb}mb.jsonl"
    if not args.path:
        generate(path, args.size_mb)
    size = path.stat().st_size
    base_times, val_times = [], []
    report = None
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        baseline(path, limit)
        base_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        report = validate_path(path, model=args.model)
        val_times.append(time.perf_counter() - t0)
    child = (f"import json, resource; from shared.validation import validate_path; "
             f"r = validate_path({str(path)!r}, model={args.model!r}); "
             f"print(json.dumps({{'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
             f"'valid': r.valid}}))")
    rss = json.loads(subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True,
                                    check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout)
    b, v = min(base_times), min(val_times)
    print(json.dumps({
        "file_mb": round(size / 2**20, 1), "examples": report.stats["examples"] if report else None,
        "mean_line_bytes": round(size / report.stats["examples"]) if report else None,
        "baseline_s": round(b, 3), "validator_s": round(v, 3), "ratio": round(v / b, 2),
        "validator_mb_per_s": round(size / 2**20 / v, 1), "peak_rss_mb": round(rss["rss_mb"], 1),
        "valid": rss["valid"],
    }))


if __name__ == "__main__":
    main()
