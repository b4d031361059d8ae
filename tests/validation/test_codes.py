"""Error and warning codes are stable, documented, and each comes with a fix."""
from __future__ import annotations

import re
from pathlib import Path

import shared.validation as validation
from shared.validation import CODES

SOURCES = Path(validation.__file__).parent


def sources() -> str:
    return "\n".join(p.read_text("utf-8") for p in SOURCES.glob("*.py") if p.name != "codes.py")


def test_every_code_raised_or_reported_is_documented():
    text = sources()
    used = set(re.findall(r'Bad\(\s*"([a-z_0-9]+)"', text))
    used |= set(re.findall(r'\.(?:error|warning)\(\s*[^,()]+,\s*"([a-z_0-9]+)"', text))
    used |= set(re.findall(r'\.warn\(\s*"([a-z_0-9]+)"', text))
    used |= set(re.findall(r'code = "([a-z_0-9]+)"', text))
    assert len(used) > 30
    assert used <= set(CODES), used - set(CODES)


def test_every_documented_code_is_used():
    literals = set(re.findall(r'"([a-z][a-z0-9_]*)"', sources()))
    literals |= {"invalid_preferred_output", "invalid_non_preferred_output"}  # built as f"invalid_{key}"
    assert set(CODES) <= literals, set(CODES) - literals


def test_codes_are_snake_case_with_a_meaning_and_a_fix():
    for code, info in CODES.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code
        assert info.severity in ("error", "warning")
        assert info.meaning and info.fix


def test_the_package_docstring_has_the_codes_table():
    for code in CODES:
        assert f"| `{code}` |" in validation.__doc__
