"""``python -m shared.machines [--write README.md]``: the state tables, printed or written
into the README between ``<!-- machine:NAME -->`` and ``<!-- /machine:NAME -->``."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from . import machines


def render(text: str) -> str:
    for name, machine in machines().items():
        pattern = re.compile(rf"<!-- machine:{name} -->\n.*?<!-- /machine:{name} -->", re.S)
        if not pattern.search(text):
            raise SystemExit(f"the README has no <!-- machine:{name} --> section")
        block = f"<!-- machine:{name} -->\n{machine.markdown()}\n<!-- /machine:{name} -->"
        text = pattern.sub(lambda m: block, text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.machines")
    p.add_argument("--write", metavar="README", help="rewrite the tables in this file")
    args = p.parse_args(argv)
    if args.write:
        path = Path(args.write)
        path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    for name, machine in machines().items():
        print(f"## {name}\n\n{machine.markdown()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
