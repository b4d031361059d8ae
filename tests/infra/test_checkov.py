"""checkov (Bicep framework) reports no failed check on infra/, every skip carries a
written reason, and every template was actually scanned (parsed)."""
from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import CHECKOV, REPO, require_checkov_venv


@pytest.fixture(scope="module")
def report() -> dict:
    require_checkov_venv()
    proc = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "--directory", "infra", "--output", "json",
         # No calls home (guidelines, severities): the tests run offline.
         "--skip-download"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )
    # checkov exits 1 when a check fails; anything else unparseable is an error.
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no JSON report (exit {proc.returncode}):\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}", pytrace=False)
    if isinstance(doc, list):  # one report per framework
        doc = next(r for r in doc if r.get("check_type") == "bicep")
    if "results" not in doc:  # an empty scan is reported as a bare summary
        pytest.fail(f"checkov scanned nothing: {doc}", pytrace=False)
    return doc


def test_no_failed_checks(report):
    failed = report["results"]["failed_checks"]
    lines = [f"{c['check_id']} {c['check_name']}\n    {c['resource']} in {c['file_path']}:"
             f"{c['file_line_range'][0]}-{c['file_line_range'][1]}" for c in failed]
    assert not failed, f"{len(failed)} failed checkov checks:\n" + "\n".join(lines)


def test_every_template_was_parsed_and_scanned(report):
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")
    assert report["summary"]["passed"] > 0


def test_every_skip_says_why(report):
    unexplained = []
    for check in report["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        if len(reason.split()) < 8:
            unexplained.append(f"{check['check_id']} on {check['resource']} in {check['file_path']}: {reason!r}")
    assert not unexplained, "skips need a written reason (`// checkov:skip=ID: why`):\n" + "\n".join(unexplained)
