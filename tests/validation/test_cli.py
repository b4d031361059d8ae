"""The command line contract: python -m shared.validation PATH --model MODEL [--method] [--json]."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.validation.__main__ import main

from .builders import CHAT_MODEL, chat, dataset, dpo

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.validation", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_bytes(dataset(n=60))
    return path


@pytest.fixture
def bad(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(dataset(n=60, replace={17: {"messages": [{"role": "user", "content": "x"},
                                                              {"role": "assistant", "content": "y", "weight": 0.5}]}}))
    return path


def test_valid_file_exits_0_with_a_readable_report(good):
    out = cli(str(good), "--model", CHAT_MODEL)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"VALID: {good} for {CHAT_MODEL} (supervised)")
    assert "examples: 60" in out.stdout


def test_invalid_file_exits_1_and_says_what_to_fix(bad):
    out = cli(str(bad), "--model", CHAT_MODEL)
    assert out.returncode == 1
    assert out.stdout.startswith("INVALID:")
    assert 'line 17: assistant message 2 has "weight": 0.5; weight must be 0 or 1' in out.stdout


def test_json_prints_exactly_one_object(bad):
    out = cli(str(bad), "--model", CHAT_MODEL, "--json")
    assert out.returncode == 1
    assert out.stdout.count("\n") == 1 and out.stderr == ""
    report = json.loads(out.stdout)
    assert report["valid"] is False
    assert report["errors"] == [{"line": 17, "code": "invalid_weight",
                                 "message": 'line 17: assistant message 2 has "weight": 0.5; weight must be 0 or 1'}]
    assert report["error_counts"] == {"invalid_weight": 1}


def test_json_for_a_valid_file(good):
    out = cli(str(good), "--model", CHAT_MODEL, "--json", "--exact-tokens")
    assert out.returncode == 0
    report = json.loads(out.stdout)
    assert report["valid"] is True and report["stats"]["tokens_exact"] is True


def test_missing_file_is_a_usage_error(tmp_path):
    out = cli(str(tmp_path / "nope.jsonl"), "--model", CHAT_MODEL, "--json")
    assert out.returncode == 2 and out.stdout == "" and "no such file" in out.stderr


def test_unknown_option_is_a_usage_error(good):
    out = cli(str(good), "--model", CHAT_MODEL, "--fast")
    assert out.returncode == 2 and out.stdout == "" and "--fast" in out.stderr


@pytest.mark.parametrize("args", [[], ["--model", CHAT_MODEL], ["x.jsonl"],
                                  ["x.jsonl", "--model", CHAT_MODEL, "--method", "rlhf"]])
def test_missing_or_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert capsys.readouterr().out == ""


def test_a_directory_is_a_usage_error(tmp_path, capsys):
    assert main([str(tmp_path), "--model", CHAT_MODEL]) == 2
    assert "directory" in capsys.readouterr().err


def test_dpo_method(tmp_path, capsys):
    path = tmp_path / "prefs.jsonl"
    path.write_bytes(dataset(dpo, n=60))
    assert main([str(path), "--model", "gpt-4o-2024-08-06", "--method", "dpo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "dpo"
    assert main([str(path), "--model", "gpt-4o-2024-08-06", "--json"]) == 1  # supervised by default
    assert json.loads(capsys.readouterr().out)["error_counts"] == {"wrong_format": 60}


def test_unknown_model_is_an_invalid_report_listing_the_known_models(good, capsys):
    assert main([str(good), "--model", "gpt-9", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"][0]["code"] == "unknown_model" and "gpt-4o-mini-2024-07-18" in report["errors"][0]["message"]
    assert report["base_model"] is None


def test_warnings_are_listed_for_people(tmp_path, capsys):
    path = tmp_path / "small.jsonl"
    path.write_bytes(dataset(n=12, replace={5: chat(1)}))
    assert main([str(path), "--model", CHAT_MODEL]) == 0
    out = capsys.readouterr().out
    assert "line 5: the example repeats line 1 exactly" in out and "fewer than 50" in out
