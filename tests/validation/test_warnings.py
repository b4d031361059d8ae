"""Warnings point at what makes fine-tuning disappointing, and never make a file invalid."""
from __future__ import annotations

import pytest

from .builders import CHAT_MODEL, DPO_MODEL, SYSTEM, chat, codes_at, dataset, dpo, dumps, jsonl, run

A = {"role": "assistant", "content": "Hello"}


def warnings(report):
    assert report.valid, report.errors
    return codes_at(report, "warnings")


def test_fewer_than_50_examples_is_a_warning_not_an_error():
    report = run(dataset(n=12))
    assert warnings(report) == [(None, "few_examples")]
    assert run(dataset(n=50)).warnings == []


def test_no_system_message_anywhere():
    data = jsonl([{"messages": chat(i)["messages"][1:]} for i in range(60)])
    report = run(data)
    assert warnings(report) == [(None, "no_system_message")]
    assert report.stats["examples_without_system_message"] == 60


def test_example_missing_the_system_message_others_have():
    report = run(dataset(n=60, replace={4: {"messages": chat(4)["messages"][1:]}}))
    assert warnings(report) == [(4, "missing_system_message")]
    assert report.stats["examples_without_system_message"] == 1


def test_inconsistent_system_messages():
    def pirate(i):
        return {"messages": [{"role": "system", "content": "You are a pirate."}] + chat(i)["messages"][1:]}

    report = run(dataset(n=60, replace={6: pirate(6), 9: pirate(9)}))
    assert warnings(report) == [(6, "inconsistent_system_message")]
    assert "line 1" in report.warnings[0].message and "2 different" in report.warnings[0].message
    assert report.stats["distinct_system_messages"] == 2


def test_duplicate_examples():
    report = run(dataset(n=60, replace={8: chat(2), 30: chat(2)}))
    assert warnings(report) == [(8, "duplicate_example"), (30, "duplicate_example")]
    assert report.warnings[0].message == "line 8: the example repeats line 2 exactly"
    assert report.stats["duplicates"] == 2 and report.stats["duplicate_check_complete"] is True


def test_a_crlf_line_duplicates_the_same_lf_line():
    data = dumps(chat(100)) + b"\r\n" + dataset(n=59, replace={5: chat(100)})
    assert warnings(run(data)) == [(6, "duplicate_example")]


SECRETS = [
    "my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "curl -H 'Authorization: Bearer 0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p'",
    "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "aws AKIAIOSFODNN7EXAMPLE",
    "gh token ghp_0123456789abcdefghijABCDEFGHIJ0123456789",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...",
    "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abcdefghijklmnopqrstuvwxyz0123456789ABCD==",
    'headers = {"api-key": "0123456789abcdef0123456789abcdef"}',
    "AZURE_OPENAI_API_KEY=0123456789abcdef0123456789abcdef",
]


@pytest.mark.parametrize("text", SECRETS)
def test_possible_secrets_are_flagged_on_their_line(text):
    leaky = {"messages": [SYSTEM, {"role": "user", "content": text}, A]}
    report = run(dataset(n=60, replace={23: leaky}))
    assert warnings(report) == [(23, "possible_secret")]


@pytest.mark.parametrize("text", [
    "a task-based, risk-free plan", "Bearer bonds are paper.", "the key=value pairs", "KEY PRIVATE notes",
    "model gpt-35-turbo-0613.ft-5fd1918ee65d4cd38a5dcf6835066ed7", "eyJust kidding", "AKIA is short",
    "api-key rotation policy", "See https://example.com/?sig=abc",
])
def test_ordinary_text_is_not_flagged_as_a_secret(text):
    clean = {"messages": [SYSTEM, {"role": "user", "content": text}, A]}
    assert run(dataset(n=60, replace={23: clean})).warnings == []


def test_secret_split_across_chunks_is_found():
    leaky = {"messages": [SYSTEM, {"role": "user", "content": SECRETS[0]}, A]}
    data = dataset(n=60, replace={23: leaky})
    at = data.index(b"sk-proj") + 2
    from shared.validation import validate
    report = validate([data[:at], data[at:]], model=CHAT_MODEL)
    assert codes_at(report, "warnings") == [(23, "possible_secret")]


def test_unknown_keys():
    report = run(dataset(n=60, replace={3: {**chat(3), "metadata": {"id": 3}},
                                        4: {"messages": [SYSTEM, {"role": "user", "content": "Hi", "lang": "en"}, A]}}))
    assert warnings(report) == [(3, "unknown_key"), (4, "unknown_key")]
    assert "metadata" in report.warnings[0].message and "lang" in report.warnings[1].message


def test_messages_after_the_last_assistant_message():
    trailing = {"messages": chat(5)["messages"] + [{"role": "user", "content": "Thanks!"}]}
    assert warnings(run(dataset(n=60, replace={5: trailing}))) == [(5, "ends_without_assistant")]


def test_identical_preference_outputs():
    same = dpo(7)
    same["non_preferred_output"] = same["preferred_output"]
    report = run(dataset(dpo, n=60, replace={7: same}), model=DPO_MODEL, method="dpo")
    assert warnings(report) == [(7, "identical_outputs")]


def test_legacy_function_calling_is_a_deprecation_warning():
    legacy = {"functions": [{"name": "get_order", "parameters": {"type": "object"}}],
              "messages": [SYSTEM, {"role": "user", "content": "Order 1?"},
                           {"role": "assistant", "function_call": {"name": "get_order", "arguments": "{}"}},
                           {"role": "function", "name": "get_order", "content": "{}"},
                           {"role": "assistant", "content": "Shipped."}]}
    report = run(dataset(n=60, replace={2: legacy}))
    assert {c for c in warnings(report)} == {(2, "deprecated_function_calling")}
