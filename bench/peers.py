"""The validator beside the validators people could pick instead, whole processes on the same
files: what a user waits for from typing the command to the answer (interpreter start,
imports and the encoding's load included), and the peak memory.

Peers run as their authors published them, from a local checkout whose path is a setting
(their code is never copied into this project):

- ``BENCH_COPILOT_CHECKOUT`` (or ``--copilot``): a checkout of
  ``microsoft/GitHub-Copilot-for-Azure``; its fine-tuning skill's
  ``plugins/azure-skills/skills/microsoft-foundry/finetuning/scripts/validate/validate_sft.py FILE``
  (``plugin/skills/...`` in older checkouts).

- ``BENCH_COOKBOOK_CHECKOUT`` (or ``--cookbook``): a checkout of ``openai/openai-cookbook``;
  its ``examples/Chat_finetuning_data_prep.ipynb``, code cells run in order with its
  ``data_path`` set to the file (``bench.peer_run``). It needs numpy, and tiktoken's
  ``cl100k_base`` download, which is served offline from a cache the bench writes
  (``TIKTOKEN_CACHE_DIR``, the same file bpe-openai ships, checked against tiktoken's hash).

Without a checkout its rows are skipped, and the table says so; the bare ``orjson`` line
parse (the floor any validator pays) and this validator are always measured. Runs of the
same file alternate between the programs, so a burst of load hits them alike; the best of
``rounds`` is kept, with the CPU time (user + system) of the best-CPU run beside it. Each
program runs once first, uncounted, and bytecode is written (``PYTHONDONTWRITEBYTECODE`` is
taken out of the children's environment): what a user waits for from the second run on.
"""
from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
# Where the skill's validator lives (it moved once: the newest path first).
COPILOT_SCRIPTS = ("plugins/azure-skills/skills/microsoft-foundry/finetuning/scripts/validate/validate_sft.py",
                   "plugin/skills/microsoft-foundry/finetuning/scripts/validate/validate_sft.py")
COOKBOOK_NOTEBOOK = "examples/Chat_finetuning_data_prep.ipynb"
TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
MODEL = "gpt-4o-mini-2024-07-18"
# What issue 18 measured when it was filed (whole processes, medians of three interleaved runs,
# on the machine of that day), printed beside today's figures.
ISSUE_18 = {
    (64, "this validator"): "0.66 s, 66 MB", (64, "Copilot for Azure validate_sft.py"): "0.56 s, 12 MB",
    (64, "openai-cookbook data-prep notebook"): "6.9 s, 280 MB", (64, "orjson line parse"): "0.20 s",
    (256, "this validator"): "1.60 s, 70 MB", (256, "Copilot for Azure validate_sft.py"): "2.15 s, 15 MB",
    (256, "openai-cookbook data-prep notebook"): "27.9 s, 913 MB", (256, "orjson line parse"): "0.70 s",
}
SIZES_MB = (1, 64, 256)

__all__ = ["peers_section", "peer_rows", "SIZES_MB"]


def tiktoken_cache(folder: Path) -> Path:
    """A tiktoken download cache (``TIKTOKEN_CACHE_DIR``) holding cl100k_base and o200k_base,
    so a peer calling ``tiktoken.get_encoding`` runs offline: tiktoken names a cached file by the
    SHA-1 of its URL and checks its SHA-256; the files are bpe-openai's, decompressed."""
    import gzip
    import hashlib

    from shared.tokens import _rank_file

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("cl100k_base", "o200k_base"):
        target = folder / hashlib.sha1(TIKTOKEN_URL.format(name=name).encode()).hexdigest()
        if not target.exists():
            target.write_bytes(gzip.decompress(_rank_file(name).read_bytes()))
    return folder


def _programs(copilot: str | None, cookbook: str | None = None) -> tuple[dict[str, list[str]], dict[str, str]]:
    """name -> the command after ``python -m bench.peer_run OUT``; and the skipped ones, with why."""
    programs = {
        "orjson line parse": ["-m", "bench.child", "baseline"],
        "this validator": ["-m", "shared.validation", "{file}", "--model", MODEL],
        "this validator, --quick-estimate": ["-m", "shared.validation", "{file}", "--model", MODEL,
                                             "--quick-estimate"],
    }
    skipped: dict[str, str] = {}
    copilot = copilot or os.environ.get("BENCH_COPILOT_CHECKOUT")
    if not copilot:
        skipped["Copilot for Azure validate_sft.py"] = ("no checkout of microsoft/GitHub-Copilot-for-Azure: set "
                                                        "BENCH_COPILOT_CHECKOUT")
    else:
        found = next((Path(copilot) / p for p in COPILOT_SCRIPTS if (Path(copilot) / p).is_file()), None)
        if found is None:
            skipped["Copilot for Azure validate_sft.py"] = f"none of {', '.join(COPILOT_SCRIPTS)} is in {copilot}"
        else:
            programs["Copilot for Azure validate_sft.py"] = [str(found), "{file}"]
    cookbook = cookbook or os.environ.get("BENCH_COOKBOOK_CHECKOUT")
    name = "openai-cookbook data-prep notebook"
    if not cookbook:
        skipped[name] = "no checkout of openai/openai-cookbook: set BENCH_COOKBOOK_CHECKOUT"
    elif not (Path(cookbook) / COOKBOOK_NOTEBOOK).is_file():
        skipped[name] = f"{COOKBOOK_NOTEBOOK} is not in {cookbook}"
    elif importlib.util.find_spec("numpy") is None:
        skipped[name] = "the notebook imports numpy, which is not installed (pip install numpy)"
    else:
        programs[name] = ["--notebook", str(Path(cookbook) / COOKBOOK_NOTEBOOK), "{file}"]
    return programs, skipped


def _run(command: list[str], file: Path) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    args = [a.replace("{file}", str(file)) for a in command]
    if args[:2] == ["-m", "bench.child"]:
        args.append(str(file))
    # Bytecode is written and read as it is for a user (from the second run on): a shell with
    # PYTHONDONTWRITEBYTECODE set would make every run compile the programs' modules again.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["TIKTOKEN_CACHE_DIR"] = str(tiktoken_cache(ROOT / "bench-results" / "cache" / "tiktoken"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.peer_run", out, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800, env={**env, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        result = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        raise RuntimeError(f"{' '.join(args)} did not finish ({proc.returncode}):\n{proc.stderr[-2000:]}") from None
    finally:
        Path(out).unlink(missing_ok=True)
    return {"seconds": seconds, "cpu_seconds": cpu, **result}


def plain_chat(source: Path) -> Path:
    """The examples of ``source`` whose messages hold strings only (no tool calls, no weights,
    no null content), next to it: the format the cookbook notebook counts (it encodes every
    value of every message, and stops with a TypeError on anything else)."""
    import orjson

    target = source.with_name(source.name.replace("mix-", "plain-", 1))
    if target.exists():
        return target
    tmp = target.with_suffix(".tmp")
    with open(source, "rb") as src, open(tmp, "wb") as out:
        for line in src:
            ex = orjson.loads(line)
            if set(ex) == {"messages"} and all(type(v) is str for m in ex["messages"] for v in m.values()):
                out.write(line)
    tmp.replace(target)
    return target


def peers_section(cache: Path, dataset: Callable[..., Path], rounds: int, log: Callable[[str], None],
                  copilot: str | None = None, sizes: tuple[int, ...] = SIZES_MB,
                  cookbook: str | None = None) -> dict[str, Any]:
    programs, skipped = _programs(copilot, cookbook)
    out: dict[str, Any] = {"skipped": skipped, "files": {}}
    first = dataset(cache, "mix", min(sizes), log=log)
    for command in programs.values():  # a first run, not counted: bytecode cached, files in the page cache
        _run(command, first)
    for size in sizes:
        path = dataset(cache, "mix", size, log=log)
        runs: dict[str, list[dict]] = {name: [] for name in programs}
        for r in range(rounds):
            log(f"peers: {size} MB, round {r + 1}/{rounds}")
            for name, command in programs.items():
                runs[name].append(_run(command, path))
        out["files"][str(size)] = _summary(size, path, runs)
        notebook = "openai-cookbook data-prep notebook"
        if notebook in programs:  # again on the examples it can read, beside this validator
            plain = plain_chat(path)
            pair = {name: programs[name] for name in ("this validator", notebook)}
            runs = {name: [] for name in pair}
            for r in range(rounds):
                log(f"peers: {size} MB, plain chat, round {r + 1}/{rounds}")
                for name, command in pair.items():
                    runs[name].append(_run(command, plain))
            out["files"][f"{size}-plain"] = _summary(size, plain, runs, "plain chat (strings only)")
    return out


def _summary(size: int, path: Path, runs: dict[str, list[dict]], what: str = "mix") -> dict[str, Any]:
    best = {name: min(rs, key=lambda x: x["seconds"]) for name, rs in runs.items()}
    return {
        "size_mb": size, "what": what, "bytes": path.stat().st_size,
        "programs": {name: {"seconds": round(b["seconds"], 3), "peak_rss_mb": round(b["peak_rss_mb"] or 0, 1),
                            "cpu_seconds": round(min(x["cpu_seconds"] for x in runs[name]), 3),
                            "error": b.get("error"), "exit": b["exit"],
                            "all_seconds": [round(x["seconds"], 3) for x in runs[name]]}
                     for name, b in best.items()},
    }


def peer_rows(results: dict[str, Any], f: Callable[..., str]) -> list[list[str]]:
    rows: list[list[str]] = []
    for size, r in results.get("files", {}).items():
        progs = r["programs"]
        ours = progs["this validator"]["seconds"]
        floor = results["files"][str(r["size_mb"])]["programs"]["orjson line parse"]["seconds"]  # the mix's
        for name, p in progs.items():
            target = ""
            if name == "this validator":
                # A peer that stopped on an error did not finish the file: not a time to beat.
                others = [q["seconds"] for n, q in progs.items()
                          if not n.startswith(("this validator", "orjson")) and not q.get("error")]
                goals = []
                if others:
                    goals.append("faster than every peer: " + ("met" if ours < min(others) else "missed"))
                if r["size_mb"] >= 256 and r.get("what", "mix") == "mix":
                    goals.append(f"≤ 1.5× the bare parse: {'met' if ours <= 1.5 * floor else 'missed'}")
                goals.append(f"peak RSS < 100 MB: {'met' if p['peak_rss_mb'] < 100 else 'missed'}")
                target = "; ".join(goals)
            status = f"exit {p['exit']}" + (f" ({p['error']})" if p.get("error") else "")
            then = ISSUE_18.get((r["size_mb"], name)) if r.get("what", "mix") == "mix" else None
            if then:
                status = f"issue 18 measured {then}; " + status
            rows.append(["peers", f"{r['size_mb']} MB {r.get('what', 'mix')}, {name}", f"{f(p['seconds'])} s",
                         f"{p['seconds'] / floor:.2f}× the bare parse" if r.get("what", "mix") == "mix" else "",
                         f"{r['bytes'] / (1 << 20) / p['seconds']:.1f} MB/s", f"{f(p['peak_rss_mb'], 0)} MB",
                         f"{status}; whole process, best of {len(p['all_seconds'])}; "
                         f"CPU {f(p.get('cpu_seconds', 0))} s", target])
    for name, why in (results.get("skipped") or {}).items():
        rows.append(["peers", f"{name}: skipped", "", "", "", "", why, ""])
    return rows
