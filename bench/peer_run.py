"""``python -m bench.peer_run OUT.json (SCRIPT | -m MODULE | --notebook NOTEBOOK) ARGS...``: runs
a validator as a user would run it — a published script by its path, a module, or a notebook's
code cells in order — in this process, its output discarded, then writes the process's peak
memory (``VmHWM``) and exit status to OUT.json. The parent times the whole process
(interpreter start and imports included). The code is run unchanged from where its authors put
it (``runpy``); a notebook gets the one edit its text asks of a user: its ``data_path = ...``
line names the file (``--notebook NOTEBOOK FILE``). A cell that raises ends the run, as "Run
all" stops there, and OUT.json says which cell and what it raised."""
from __future__ import annotations

import json
import os
import re
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


class NotebookCellError(Exception):
    pass


DATA_PATH = re.compile(r"^data_path\s*=.*$", re.M)


def run_notebook(notebook: str, data: str) -> None:
    """The notebook's code cells, in order, in one namespace (as a kernel runs them)."""
    with open(notebook, encoding="utf-8") as fh:
        cells = [c for c in json.load(fh)["cells"] if c.get("cell_type") == "code"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(notebook)))
    namespace: dict = {"__name__": "__main__"}
    for i, cell in enumerate(cells, 1):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        source = DATA_PATH.sub(lambda _: f"data_path = {data!r}", source)
        try:
            exec(compile(source, f"{notebook} (code cell {i})", "exec"), namespace)
        except Exception as exc:  # Run all stops at the first cell that raises
            raise NotebookCellError(f"code cell {i} of {len(cells)} raised {type(exc).__name__}: {exc}") from exc


def main() -> None:
    out, target, *rest = sys.argv[1:]
    status = 0
    devnull = open(os.devnull, "w")
    real_stdout = sys.stdout
    sys.stdout = devnull  # the report is the peer's; only its cost is measured
    error = None
    try:
        if target == "--notebook":
            notebook, data = rest
            run_notebook(notebook, data)
        elif target == "-m":
            module, *args = rest
            sys.argv = [module, *args]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            sys.argv = [target, *rest]
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except NotebookCellError as exc:
        status, error = 1, str(exc)
    finally:
        sys.stdout = real_stdout
    with open(out, "w") as fh:
        json.dump({"exit": status, "peak_rss_mb": _hwm_mb(), "error": error}, fh)


if __name__ == "__main__":
    main()
