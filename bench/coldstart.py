"""Cold start: import time of ``function_app`` and of each trigger module, measured with
``python -X importtime`` in fresh processes (the best of N runs, after one run that may
write the ``__pycache__`` files), and what each trigger imports on its first invocation
(the domain modules, imported lazily so that start-up does not pay for them)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODULES = ("function_app", "functions.intake", "functions.jobs_api", "functions.monitor", "functions.keeper")
# What each trigger module imports when it is first invoked (inside the function body).
FIRST_CALL = {"functions.intake": ("shared.context", "shared.intake", "shared.validation"),
              "functions.jobs_api": ("shared.api",),
              "functions.monitor": ("shared.context", "shared.monitor"),
              "functions.keeper": ("shared.context", "shared.keeper")}
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( +)(\S+)\s*$")


def _top_level(modules: tuple[str, ...], runs: int) -> dict[str, float]:
    """Best-of-``runs`` cumulative import seconds of each module of ``import a, b, c`` (each
    counts only what the ones before it had not imported yet)."""
    best: dict[str, float] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(runs + 1):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import " + ", ".join(modules)], cwd=ROOT,
                              env=env, capture_output=True, text=True, check=True)
        for line in proc.stderr.splitlines():
            m = _LINE.match(line)
            if m and len(m.group(3)) == 1 and m.group(4) in modules:
                seconds = int(m.group(2)) / 1e6
                best[m.group(4)] = min(best.get(m.group(4), seconds), seconds)
    return best


def measure(runs: int = 5) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for module in MODULES:
        out[module] = {"seconds": round(_top_level((module,), runs).get(module, 0.0), 4)}
    for module, first in FIRST_CALL.items():
        times = _top_level((module, *first), runs)
        out[module]["first_call_imports"] = ", ".join(first)
        out[module]["first_call_seconds"] = round(sum(times.get(m, 0.0) for m in first), 4)
    return out
