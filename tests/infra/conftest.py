"""Fixtures of the infrastructure tests.

Nothing here deploys anything: the Bicep templates under infra/ are parsed, linted
(checkov) and compared with the code. checkov and the Bicep parser it uses
(pycep-parser) live in their own virtual environment, .venv-checkov, created by
`make install` from infra/requirements-checkov.txt; without it these tests fail
(they do not skip) with a message saying so.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
CHECKOV_VENV = REPO / ".venv-checkov"
CHECKOV_PYTHON = CHECKOV_VENV / "bin" / "python"
CHECKOV = CHECKOV_VENV / "bin" / "checkov"
PARSE_SCRIPT = Path(__file__).resolve().parent / "_parse_with_checkov_venv.py"


def require_checkov_venv() -> None:
    if not (CHECKOV_PYTHON.exists() and CHECKOV.exists()):
        pytest.fail(
            f"{CHECKOV_VENV.relative_to(REPO)} is missing: run `make install` "
            "(it installs checkov and pycep-parser from infra/requirements-checkov.txt "
            "into a virtual environment of their own)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def parsed() -> dict:
    """pycep trees of every infra/**/*.bicep file, and azure.yaml, parsed in .venv-checkov."""
    require_checkov_venv()
    proc = subprocess.run(
        [str(CHECKOV_PYTHON), str(PARSE_SCRIPT), str(REPO)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"parsing the templates failed:\n{proc.stderr}", pytrace=False)
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def trees(parsed) -> dict[str, dict]:
    """Relative path ("infra/main.bicep") -> pycep tree; fails on any parse error."""
    errors = {path: tree["__error__"] for path, tree in parsed["bicep"].items() if "__error__" in tree}
    if errors:
        pytest.fail("Bicep files that do not parse:\n" + "\n".join(f"  {p}: {e}" for p, e in errors.items()),
                    pytrace=False)
    return parsed["bicep"]


@pytest.fixture(scope="session")
def main_tree(trees) -> dict:
    return trees["infra/main.bicep"]


@pytest.fixture(scope="session")
def azure_yaml(parsed) -> dict:
    doc = parsed["azure_yaml"]
    if isinstance(doc, dict) and "__error__" in doc:
        pytest.fail(f"azure.yaml does not parse: {doc['__error__']}", pytrace=False)
    return doc
