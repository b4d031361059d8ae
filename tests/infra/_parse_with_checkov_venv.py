"""Runs inside .venv-checkov (not the project's venv): parses every .bicep file
under infra/ with pycep-parser, the parser checkov itself uses, and azure.yaml with
PyYAML (a checkov dependency), and prints one JSON document on stdout:

    {"bicep": {"<path relative to repo>": <pycep tree> | {"__error__": "..."}},
     "azure_yaml": <object> | {"__error__": "..."}}

A file pycep cannot parse is one checkov would silently skip, so the tests treat a
parse error as a failure rather than trusting a clean checkov report.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(repo: Path) -> None:
    from pycep import BicepParser

    parser = BicepParser()
    trees: dict[str, object] = {}
    for path in sorted((repo / "infra").rglob("*.bicep")):
        rel = path.relative_to(repo).as_posix()
        try:
            trees[rel] = parser.parse(file_path=path)
        except Exception as exc:  # any parser failure is a finding, reported by the tests
            trees[rel] = {"__error__": f"{type(exc).__name__}: {exc}"}
    try:
        import yaml

        azure_yaml = yaml.safe_load((repo / "azure.yaml").read_text(encoding="utf-8"))
    except Exception as exc:
        azure_yaml = {"__error__": f"{type(exc).__name__}: {exc}"}
    json.dump({"bicep": trees, "azure_yaml": azure_yaml}, sys.stdout, default=str)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
