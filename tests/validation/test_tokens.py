"""Offline token counting with the real encodings.

Comparison recorded (tiktoken 0.14 vs bpe-openai 0.1.4, November 2026): a tiktoken.Encoding built
from the ranks read back out of bpe-openai (every token id decoded to its bytes) with the official
split patterns gives token lists identical to bpe-openai's own tokenizer on the 34 multilingual
samples of data/token_reference.json (375 o200k_base and 467 cl100k_base tokens) and on 300
random strings of tricky characters. The recorded ids also reproduce OpenAI's published figures
("tiktoken is great!" and the cookbook's 129 / 124 message tokens).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import tiktoken

from shared import tokens
from shared.tokens import count_chat_tokens, count_message_tokens, count_tokens, get_encoding

pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")  # bpe-openai's import

REFERENCE = json.loads((Path(__file__).parent / "data" / "token_reference.json").read_text("utf-8"))
ENCODINGS = ("cl100k_base", "o200k_base")


@pytest.fixture(scope="module")
def bpe():
    import bpe_openai

    return {name: bpe_openai.get_encoding(name) for name in ENCODINGS}


def random_strings(n=300, seed=1):
    rng = random.Random(seed)
    alphabet = "aé日🙂 \n\t1.,'sAZ-_/\r\u0301\u00a0ß"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(n)]


def test_published_reference_ids():
    # From OpenAI's tiktoken documentation and cookbook.
    assert get_encoding("cl100k_base").encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert get_encoding("o200k_base").encode_ordinary("tiktoken is great!") == [83, 8251, 2488, 382, 2212, 0]
    assert get_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]
    assert get_encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]


def test_cookbook_message_count():
    # "How to count tokens with tiktoken": 129 prompt tokens for gpt-3.5-turbo / gpt-4, 124 for gpt-4o.
    messages = [
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate "
                                      "jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant",
         "content": "Things working well together will increase revenue."},
        {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to "
                                                              "touch base on opportunities for increased leverage."},
        {"role": "system", "name": "example_assistant",
         "content": "Let's talk later when we're less busy about how to do better."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                    "deliverable."},
    ]
    assert count_chat_tokens(messages, "cl100k_base") == 129
    assert count_chat_tokens(messages, "o200k_base") == 124


@pytest.mark.parametrize("name", ENCODINGS)
def test_recorded_sample_still_matches(name):
    expected = REFERENCE["encodings"][name]
    enc = get_encoding(name)
    assert [enc.encode_ordinary(s) for s in REFERENCE["samples"]] == expected
    assert [count_tokens(s, name) for s in REFERENCE["samples"]] == [len(ids) for ids in expected]


@pytest.mark.parametrize("name", ENCODINGS)
def test_bpe_openai_agrees_with_tiktokens_algorithm(name, bpe):
    b = bpe[name]
    special = set(b._special_token_values)
    ranks = {b.decode_single_token_bytes(i): i for i in range(b.n_vocab)
             if i not in special and b._rank_to_bytes[i]}
    reference = tiktoken.Encoding(f"{name}-from-bpe-openai", pat_str=tokens.PAT_STR[name],
                                  mergeable_ranks=ranks, special_tokens=tokens.SPECIAL_TOKENS[name])
    sample = REFERENCE["samples"] + random_strings()
    assert [b.encode_ordinary(s) for s in sample] == [reference.encode_ordinary(s) for s in sample]
    assert [b.encode_ordinary(s) for s in REFERENCE["samples"]] == REFERENCE["encodings"][name]
    assert ranks == tokens.load_mergeable_ranks(name)  # the ranks our counter uses are the same


@pytest.mark.parametrize("name", ENCODINGS)
def test_split_patterns_are_the_official_ones(name, monkeypatch):
    import tiktoken_ext.openai_public as official

    monkeypatch.setattr(official, "load_tiktoken_bpe", lambda *a, **k: {})  # no download
    spec = getattr(official, name)()
    assert spec["pat_str"] == tokens.PAT_STR[name]
    assert spec["special_tokens"] == tokens.SPECIAL_TOKENS[name]


@pytest.mark.parametrize("name", ENCODINGS)
def test_the_bpe_openai_fallback_counts_the_same(name):
    fallback = tokens._BpeOpenAICounter(name)
    for s in REFERENCE["samples"]:
        assert fallback.count(s) == count_tokens(s, name)


@pytest.mark.parametrize("name", ENCODINGS)
def test_each_role_is_one_token(name):
    # The validator's bound charges one token per role name.
    for role in ("system", "user", "assistant", "tool"):
        assert count_tokens(role, name) == 1


def test_special_token_text_counts_as_text():
    assert count_tokens("<|endoftext|>", "o200k_base") == 7


def test_long_text_counts_without_length_limits():
    text = "hello world" + " hello world" * 199_999  # 2.4 million characters
    assert count_tokens(text, "o200k_base") == 400_000


def test_message_overheads():
    assert count_message_tokens({"role": "user", "content": "hi"}, "o200k_base") == 3 + 1 + 1
    assert count_message_tokens({"role": "user", "content": "hi", "name": "bob"}, "o200k_base") == 3 + 1 + 1 + 1 + 1
    call = {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                 "function": {"name": "get_order", "arguments": "{}"}}]}
    assert count_message_tokens(call, "o200k_base") == 3 + 1 + (3 + count_tokens("get_order", "o200k_base")
                                                                 + count_tokens("{}", "o200k_base"))
    weighted = {"role": "assistant", "content": "hi", "weight": 0}
    assert count_message_tokens(weighted, "o200k_base") == 5  # the weight is not text


def test_unknown_encoding():
    with pytest.raises(ValueError, match="cl100k_base"):
        count_tokens("x", "p50k_base")


def test_encodings_are_built_once():
    assert get_encoding("o200k_base") is get_encoding("o200k_base")
    assert tokens.backend_name("o200k_base") == "tiktoken"


def test_parsed_ranks_are_cached_between_processes_and_a_shared_folder_is_not_trusted(tmp_path, monkeypatch):
    import os
    import tempfile

    import shared.tokens as tokens

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    first = tokens.load_mergeable_ranks("cl100k_base")
    [cached] = list(tmp_path.glob("ft-autopilot-tokens-*/cl100k_base.tiktoken.gz.*.marshal"))
    assert tokens.load_mergeable_ranks("cl100k_base") == first == tokens._parse_ranks(tokens._rank_file("cl100k_base"))
    # A cache that someone else could have written is ignored (and not written to).
    folder = cached.parent
    cached.write_bytes(__import__("marshal").dumps({b"x": 1}))
    os.chmod(folder, 0o777)
    assert tokens.load_mergeable_ranks("cl100k_base") == first
    os.chmod(folder, 0o700)
    # A damaged one is parsed again.
    cached.write_bytes(b"not marshal")
    assert tokens.load_mergeable_ranks("cl100k_base") == first


@pytest.mark.parametrize("name", ENCODINGS)
def test_lone_surrogates_and_special_text_count_as_tiktoken_counts_them(name):
    reference = tiktoken.Encoding(f"{name}-reference", pat_str=tokens.PAT_STR[name],
                                  mergeable_ranks=tokens.load_mergeable_ranks(name),
                                  special_tokens=tokens.SPECIAL_TOKENS[name])
    for text in ("broken \ud83d pair", "\udfff", "<|endoftext|> is text here", "mixed \ud800\udc00 ok"):
        assert get_encoding(name).encode_ordinary(text) == reference.encode_ordinary(text)
        assert count_tokens(text, name) == len(reference.encode_ordinary(text))
    assert get_encoding(name).decode(reference.encode_ordinary("héllo wörld")) == "héllo wörld"


def _bound_corpus():
    rng = random.Random(18)
    alphabets = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " \t\n\r",
                 ".,;:!?'\"()[]{}<>/\\|@#$%^&*-_=+~`", "éèàçüößñøåæœ", "абвгдежзийклмнопрстуфхцчшщъыьэюя",
                 "日本語の文章を書きます。中文字符测试", "😀🎉👍🏽🚀❤️", "\u0301\u0308\u200b\u00a0"]
    for _ in range(400):
        size = rng.choice([1, 2, 3, 5, 20, 200, 2000])
        mix = rng.sample(alphabets, rng.randint(1, len(alphabets)))
        yield "".join(rng.choice(rng.choice(mix)) for _ in range(size))
    words = "the of and to in fine tuning model example assistant user I'm we're don't 2024 42 café".split()
    yield " ".join(rng.choice(words) for _ in range(5000))
    yield "aaaa" * 3000 + "\n\n\n" + "1234567890" * 300 + "   " * 100
    yield from REFERENCE["samples"]


@pytest.mark.parametrize("name", ENCODINGS)
def test_the_bound_from_pairs_of_bytes_is_never_below_the_exact_count(name):
    checked = 0
    for text in _bound_corpus():
        assert tokens.token_bound(text, name) >= count_tokens(text, name), text[:80]
        checked += 1
    assert checked > 400


@pytest.mark.parametrize("name", ENCODINGS)
def test_the_bound_from_pairs_is_well_below_one_token_per_byte_on_prose(name):
    prose = ("Fine-tuning adapts a base model to your examples. Each line of the file is one example, "
             "with the messages a user and the assistant exchange. ") * 500
    n = len(prose.encode())
    assert count_tokens(prose, name) <= tokens.token_bound(prose, name) < 0.75 * n
    assert tokens.token_bound("\ud83d lone", name) == len("\ud83d lone".encode("utf-8", "surrogatepass"))
    assert tokens.token_bound("", name) == 0


def test_the_pair_table_says_which_byte_pairs_are_tokens():
    table = tokens.pair_table("o200k_base")
    ranks = tokens.load_mergeable_ranks("o200k_base")
    assert len(table) == 65536
    assert sum(table) == sum(1 for t in ranks if len(t) == 2)
    assert table[ord("t") << 8 | ord("h")] == 1


def test_released_encodings_are_built_again_when_counted():
    before = count_tokens("hello world", "o200k_base")
    tokens.release_encodings()
    assert not tokens._counters
    assert count_tokens("hello world", "o200k_base") == before == 2
