"""``python -m bench.peer_run OUT.json (SCRIPT | -m MODULE) ARGS...``: runs a validator as a
user would run it — a published script by its path, or a module — in this process, its
output discarded, then writes the process's peak memory (``VmHWM``) and exit status to
OUT.json. The parent times the whole process (interpreter start and imports included).
The script's code is run unchanged (``runpy``), from where its authors put it."""
from __future__ import annotations

import json
import os
import runpy
import sys


def _hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main() -> None:
    out, target, *rest = sys.argv[1:]
    status = 0
    devnull = open(os.devnull, "w")
    real_stdout = sys.stdout
    sys.stdout = devnull  # the report is the peer's; only its cost is measured
    try:
        if target == "-m":
            module, *args = rest
            sys.argv = [module, *args]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            sys.argv = [target, *rest]
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout = real_stdout
    with open(out, "w") as fh:
        json.dump({"exit": status, "peak_rss_mb": _hwm_mb()}, fh)


if __name__ == "__main__":
    main()
