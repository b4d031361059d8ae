"""POST .../fine_tuning/alpha/graders/validate, through the SDK's client.fine_tuning.alpha.graders.validate
(AzureOpenAI: /openai/fine_tuning/alpha/graders/validate?api-version=...) and the v1 path
(/openai/v1/fine_tuning/alpha/graders/validate, no api-version)."""
from __future__ import annotations

import copy

import openai
import pytest

from .conftest import MULTI_GRADER, STRING_CHECK

PYTHON = {"type": "python", "name": "exact", "source": "def grade(sample, item):\n"
                                                      "    return float(sample['output_text'] == item['answer'])\n"}
SCORE_MODEL = {"type": "score_model", "name": "judge", "model": "gpt-4o-2024-08-06", "range": [0, 1],
               "input": [{"role": "user", "type": "message",
                          "content": "Grade {{ sample.output_text }} against {{ item.answer }}; answer 0 to 1."}],
               "sampling_params": {"temperature": 0.2, "seed": 7}}
LABEL_MODEL = {"type": "label_model", "name": "labeller", "model": "o3-mini", "labels": ["good", "bad"],
               "passing_labels": ["good"], "input": [{"role": "user", "content": "Is {{ sample.output_text }} good?"}]}
TEXT_SIMILARITY = {"type": "text_similarity", "name": "close", "input": "{{ sample.output_text }}",
                   "reference": "{{ item.answer }}", "evaluation_metric": "bleu", "pass_threshold": 0.5}
ENDPOINT = {"type": "endpoint", "name": "remote", "url": "https://grader.example.com/grade",
            "headers": {"Authorization": "Bearer k"}, "rate_limit": 50, "pass_threshold": 0.8}
EVERY_KIND = {"exact": STRING_CHECK, "close": TEXT_SIMILARITY, "code": PYTHON, "judge": SCORE_MODEL,
              "labeller": LABEL_MODEL}
MULTI_OF_ALL = {"type": "multi", "name": "all", "graders": EVERY_KIND,
                "calculate_output": "max(exact, close) * 0.5 + (code + judge + labeller) / 6 ^ 1"}


@pytest.mark.parametrize("grader", [STRING_CHECK, TEXT_SIMILARITY, PYTHON, SCORE_MODEL, ENDPOINT, MULTI_GRADER,
                                    MULTI_OF_ALL], ids=lambda g: g["type"] + ("" if g["type"] != "multi" else
                                                                              f"-{len(g['graders'])}"))
def test_a_valid_grader_comes_back(oai, admin, grader):
    response = oai.fine_tuning.alpha.graders.with_raw_response.validate(grader=grader)
    assert response.http_response.json() == {"grader": grader}  # the grader as sent
    answer = response.parse()
    assert answer.grader is not None and answer.grader.type == grader["type"]
    log = admin.requests(path_regex="graders/validate$")
    assert log[-1]["path"] == "/openai/fine_tuning/alpha/graders/validate" and "api-version=" in log[-1]["query"]


def test_the_v1_path_needs_no_api_version(raw, admin):
    ok = raw.post("/openai/v1/fine_tuning/alpha/graders/validate", headers={"api-key": "k"}, json={"grader": PYTHON})
    assert ok.status_code == 200 and ok.json() == {"grader": PYTHON}
    refused = raw.post("/openai/v1/fine_tuning/alpha/graders/validate", headers={"api-key": "k"},
                       json={"grader": {**PYTHON, "source": 5}})
    assert refused.status_code == 400 and refused.json()["error"]["target"] == "grader.source"
    assert raw.post("/openai/v1/fine_tuning/alpha/graders/validate", json={"grader": PYTHON}).status_code == 401


def _with(grader: dict, path: str, value) -> dict:
    out = copy.deepcopy(grader)
    keys = path.split(".")
    node = out
    for key in keys[:-1]:
        node = node[key]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


BIG_SOURCE = "def grade(sample, item):\n    return 1.0\n" + "#" * (256 * 1024)
REFUSED = [
    (_with(STRING_CHECK, "input", KeyError), "grader.input", "is required"),
    (_with(STRING_CHECK, "operation", "neq"), "grader.operation", "must be one of eq, ne, like, ilike"),
    ({"type": "regex", "name": "r"}, "grader.type", "must be one of"),
    ({"name": "untyped"}, "grader.type", "is required"),
    (_with(TEXT_SIMILARITY, "evaluation_metric", "jaccard"), "grader.evaluation_metric", "must be one of"),
    (_with(TEXT_SIMILARITY, "pass_threshold", "high"), "grader.pass_threshold", "number"),
    (_with(PYTHON, "source", BIG_SOURCE), "grader.source", "at most 256 KB"),
    (_with(PYTHON, "source", "def score(sample, item):\n    return 1\n"), "grader.source", "grade(sample, item)"),
    (_with(PYTHON, "source", "def grade(sample):\n    return 1\n"), "grader.source", "two positional arguments"),
    (_with(PYTHON, "source", "def grade(sample, item)\n    return 1\n"), "grader.source", "not valid Python"),
    (_with(SCORE_MODEL, "model", "gpt-35-turbo"), "grader.model", "cannot be used as a model grader"),
    (_with(SCORE_MODEL, "range", [1, 0]), "grader.range", "two numbers"),
    (_with(SCORE_MODEL, "input", [{"role": "judge", "content": "x"}]), "grader.input[0].role", "must be one of"),
    (_with(SCORE_MODEL, "input", [{"role": "user", "content": "{{ answer.text }}"}]), "grader.input[0].content",
     "'sample' or 'item' namespace"),
    (_with(STRING_CHECK, "reference", "{{ reference }}"), "grader.reference", "namespace"),
    (_with(ENDPOINT, "url", "http://grader.example.com"), "grader.url", "https URL"),
    (_with(ENDPOINT, "url", KeyError), "grader.url", "is required"),
    (_with(ENDPOINT, "rate_limit", 0), "grader.rate_limit", "minimum"),
    (_with(MULTI_GRADER, "calculate_output", "exact + nearby"), "grader.calculate_output", "'nearby'"),
    (_with(MULTI_GRADER, "calculate_output", "round(exact)"), "grader.calculate_output", "unknown function"),
    (_with(MULTI_GRADER, "calculate_output", "exact +"), "grader.calculate_output", "not a valid formula"),
    (_with(MULTI_GRADER, "graders", {}), "grader.graders", "should be non-empty"),
    (_with(MULTI_GRADER, "graders", STRING_CHECK), "grader.graders.type", "must be of type object"),  # a map, not one grader
    (_with(MULTI_GRADER, "graders.exact", MULTI_GRADER), "grader.graders.exact.type", "must be one of"),
    (_with(MULTI_GRADER, "graders.exact.operation", "is"), "grader.graders.exact.operation", "must be one of"),
    ({"type": "multi", "name": "m", "calculate_output": "l", "graders": {"l": _with(LABEL_MODEL, "passing_labels",
                                                                                     ["great"])}},
     "grader.graders.l.passing_labels", "subset"),
]


@pytest.mark.parametrize("grader, target, words", REFUSED, ids=[f"{t}:{w[:20]}" for _, t, w in REFUSED])
def test_a_grader_the_service_refuses_names_the_field(oai, admin, grader, target, words):
    with pytest.raises(openai.BadRequestError) as err:
        oai.fine_tuning.alpha.graders.validate(grader=grader)
    body = err.value.body
    assert body["code"] == "invalidPayload" and body["target"] == target, body
    assert f"'{target}'" in body["message"] and words in body["message"], body["message"]


def test_python_source_of_exactly_256_kb_is_accepted(oai, admin):
    head = "def grade(sample, item):\n    return 1.0\n"
    source = head + "#" * (256 * 1024 - len(head))
    assert len(source.encode()) == 256 * 1024
    assert oai.fine_tuning.alpha.graders.validate(grader={**PYTHON, "source": source}).grader.type == "python"
    with pytest.raises(openai.BadRequestError):
        oai.fine_tuning.alpha.graders.validate(grader={**PYTHON, "source": source + "#"})


def test_a_body_without_a_grader_is_refused(raw, admin):
    answer = raw.post("/openai/fine_tuning/alpha/graders/validate", params={"api-version": "2025-04-01-preview"},
                      headers={"api-key": "k"}, json={"grader_config": STRING_CHECK})
    assert answer.status_code == 400 and answer.json()["error"]["target"] == "grader"
