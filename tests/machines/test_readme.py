"""The README's state tables are the code's (``python -m shared.machines --write README.md``)."""
from __future__ import annotations

from pathlib import Path

from shared.machines import machines
from shared.machines.__main__ import render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_shows_each_life_cycle_as_the_code_declares_it():
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "the README's state tables differ from the code: run " \
                                 "`.venv/bin/python -m shared.machines --write README.md`"
    for name, machine in machines().items():
        for state in machine.states:
            assert f"| `{state}` |" in text, (name, state)
