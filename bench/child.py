"""What runs in a fresh child process, so that its peak resident memory (``ru_maxrss``)
belongs to one scenario alone. Each mode prints one JSON object as its last line.

    python -m bench.child baseline FILE
    python -m bench.child validate FILE --model MODEL [--exact-tokens]
    python -m bench.child intake BLOB_NAME          (the stack's environment in os.environ)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _status(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    """Peak resident memory of this process, in MiB. ``ru_maxrss`` would do, but Linux carries
    the pre-exec high-water mark over ``execve``: a child of a big parent reports the parent's
    size at fork time. ``VmHWM`` is the peak of this program's own memory map."""
    hwm = _status("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    return _status("VmRSS") or 0.0


def baseline(path: str) -> dict:
    """Read each line and parse it with orjson: the floor any validator pays."""
    import orjson

    loads = orjson.loads
    n = 0
    wall, cpu = time.perf_counter(), time.process_time()
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
            n += 1
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, "lines": n,
            "peak_rss_mb": _rss_mb()}


def validate(path: str, model: str, exact_tokens: bool, quick_estimate: bool = False) -> dict:
    import shared.tokens as tokens
    from shared.validation import validate_path

    # How long loading an encoding takes (it happens inside the run, when an example needs counting).
    loads: dict[str, float] = {}
    for cls_name in ("_TiktokenCounter", "_BpeOpenAICounter"):
        cls = getattr(tokens, cls_name, None)
        if cls is None:
            continue
        original = cls.__init__

        def timed_init(self, name, _original=original):
            t = time.perf_counter()
            _original(self, name)
            loads[name] = loads.get(name, 0.0) + time.perf_counter() - t

        cls.__init__ = timed_init
    wall, cpu = time.perf_counter(), time.process_time()
    report = validate_path(path, model=model, exact_tokens=exact_tokens, sample_tokens=not quick_estimate)
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    s = report.stats
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "valid": report.valid,
            "error_counts": report.error_counts, "warning_counts": report.warning_counts,
            "examples": s.get("examples"), "bytes": s.get("bytes"), "total_tokens": s.get("total_tokens"),
            "assistant_tokens": s.get("assistant_tokens"), "tokens_exact": s.get("tokens_exact"),
            "exactly_counted_examples": s.get("exactly_counted_examples"), "token_estimate": s.get("token_estimate"),
            "encodings_loaded": {k: round(v, 3) for k, v in loads.items()}, "peak_rss_mb": _rss_mb()}


def intake(blob_name: str) -> dict:
    """The blob trigger end to end, as the host runs it: the real ``function_app`` loaded by
    the local runner, one blob event, ``functions/intake.py`` -> ``shared.intake``.
    Phases are timed by wrapping the domain's methods (the code is not changed)."""
    from bench.stack import StorageCounter, count_storage_requests

    t_import = time.perf_counter()
    from devstack.runner import LocalRunner, load_app

    import shared.intake as intake_mod

    conn = os.environ["AzureWebJobsStorage"]
    ports = {k: int(v.rsplit(":", 1)[1].split("/")[0]) for k, v in
             (kv.split("=", 1) for kv in conn.split(";") if kv.startswith(("BlobEndpoint", "TableEndpoint")))}
    counter = StorageCounter(table_port=ports["TableEndpoint"], blob_port=ports["BlobEndpoint"])
    count_storage_requests(counter, float(os.environ.get("BENCH_BLOB_GET_LATENCY_MS") or 0) / 1000)
    phases: dict[str, float] = {}
    peaks: dict[str, float] = {}

    def timed(name: str, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
                peaks[name] = _rss_mb()  # the process's peak so far, when this phase ended
        return wrapper

    import dataclasses

    import shared.machines.dataset as dataset_mod

    # The dataset life cycle's steps: validation (download + validator + SHA-256), the report,
    # the upload request, and the time from the upload until the file is processed.
    machine = dataset_mod.DATASET
    spec = machine.table[dataset_mod.DatasetState.VALIDATING]
    machine.table[spec.state] = dataclasses.replace(spec, handler=timed("validate", spec.handler))
    dataset_mod.WriteReport.run = timed("write_report", dataset_mod.WriteReport.run)
    dataset_mod.Upload._send = timed("upload_request", dataset_mod.Upload._send)
    real_follow = intake_mod.Intake._follow

    def follow(self, engine, clock, row):
        start = time.perf_counter()
        try:
            return real_follow(self, engine, clock, row)
        finally:
            spent = time.perf_counter() - start
            phases["wait_processed"] = max(0.0, spent - sum(phases.get(k, 0.0) for k in
                                                            ("validate", "write_report", "upload_request")))

    intake_mod.Intake._follow = follow
    runner = LocalRunner(load_app(), env=dict(os.environ), host_json=ROOT / "host.json", enable_timers=False,
                         enable_blobs=False)
    imports = time.perf_counter() - t_import
    rss_before = _current_rss_mb()
    t = time.perf_counter()
    done = runner.poll_blobs_once()
    total = time.perf_counter() - t
    from shared.context import get_context

    ctx = get_context()
    rows = [r.data for r in ctx.repos.dataset_versions(blob_name)]
    row = rows[-1] if rows else {}
    return {"invoked": done, "seconds": total, "phases": {k: round(v, 3) for k, v in phases.items()},
            "status": row.get("status"), "file_id": row.get("file_id"), "upload_path": row.get("upload_path"),
            "examples": row.get("examples"), "import_seconds": round(imports, 3), "rss_before_mb": rss_before,
            "peak_rss_mb": _rss_mb(), "peak_rss_by_phase_end_mb": {k: round(v, 1) for k, v in peaks.items()},
            "storage_requests": counter.snapshot()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.child")
    p.add_argument("mode", choices=("baseline", "validate", "intake"))
    p.add_argument("target")
    p.add_argument("--model")
    p.add_argument("--exact-tokens", action="store_true")
    p.add_argument("--quick-estimate", action="store_true")
    args = p.parse_args(argv)
    if args.mode == "baseline":
        out = baseline(args.target)
    elif args.mode == "validate":
        out = validate(args.target, args.model, args.exact_tokens, args.quick_estimate)
    else:
        out = intake(args.target)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
