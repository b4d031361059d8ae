"""Error and warning codes are stable, documented, and each comes with a fix."""
from __future__ import annotations

import re
from pathlib import Path

import shared.validation as validation
from shared.validation import CODES

SOURCES = Path(validation.__file__).parent


def emitted_codes() -> set[str]:
    found: set[str] = set()
    for path in SOURCES.glob("*.py"):
        text = path.read_text("utf-8")
        found |= set(re.findall(r'Bad\(\s*"([a-z_0-9]+)"', text))
        found |= set(re.findall(r'\.(?:error|warning)\(\s*[^,]+,\s*"([a-z_0-9]+)"', text))
        found |= set(re.findall(r'ex\.warn\(\s*"([a-z_0-9]+)"', text))
        found |= set(re.findall(r'warning_counts\["([a-z_0-9]+)"\]', text))
        found |= set(re.findall(r'code = "([a-z_0-9]+)"', text))
    # codes built from the DPO output key: invalid_{preferred_output,non_preferred_output}
    found |= {"invalid_preferred_output", "invalid_non_preferred_output"}
    return found


def test_every_emitted_code_is_documented_and_every_documented_code_is_used():
    assert emitted_codes() == set(CODES)


def test_codes_are_snake_case_with_a_meaning_and_a_fix():
    for code, info in CODES.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code
        assert info.severity in ("error", "warning")
        assert info.meaning and info.fix


def test_the_package_docstring_has_the_codes_table():
    for code in CODES:
        assert f"| `{code}` |" in validation.__doc__
