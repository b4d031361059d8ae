"""The grader validator: required keys and limits of each grader type, templates, formulas."""
from __future__ import annotations

import copy
import json
from typing import Literal, get_args

import pytest
from typing_extensions import Required, get_origin, get_type_hints

from shared.validation import CODES
from shared.validation.graders import (EVALUATION_METRICS, INPUT_ROLES, OPTIONAL_KEYS, REQUIRED_KEYS,
                                       STRING_CHECK_OPERATIONS, item_field_paths, load_grader,
                                       referenced_item_fields, validate_grader, validate_response_format)

STRING_CHECK = {"type": "string_check", "name": "answer", "operation": "eq",
                "input": "{{ sample.output_text }}", "reference": "{{ item.reference_answer }}"}
TEXT_SIMILARITY = {"type": "text_similarity", "name": "similar", "input": "{{sample.output_text}}",
                   "reference": "{{item.summary}}", "evaluation_metric": "fuzzy_match", "pass_threshold": 0.8}
SCORE_MODEL = {"type": "score_model", "name": "judge", "model": "gpt-4o-2024-08-06", "range": [0, 5],
               "pass_threshold": 4, "sampling_params": {"seed": 42, "temperature": 0, "reasoning_effort": "low"},
               "input": [{"role": "developer", "content": "Score the answer from 0 to 5."},
                         {"role": "user", "content": "Question: {{item.question}}\nAnswer: {{sample.output_text}}"}]}
PYTHON = {"type": "python", "name": "exact", "image_tag": "2025-05-08",
          "source": "def grade(sample, item) -> float:\n    return float(sample['output_text'] == item['answer'])\n"}
LABEL_MODEL = {"type": "label_model", "name": "label", "model": "o3-mini", "labels": ["good", "bad"],
               "passing_labels": ["good"], "input": [{"role": "user", "content": [
                   {"type": "input_text", "text": "Is {{sample.output_text}} a good answer to {{item.question}}?"}]}]}
MULTI = {"type": "multi", "name": "both",
         "graders": {"similarity_score": copy.deepcopy(TEXT_SIMILARITY), "label_checker": {
             "type": "string_check", "name": "label grader", "input": "{{ sample.output_text }}",
             "reference": "{{ item.label }}", "operation": "eq"}},
         "calculate_output": "(similarity_score + label_checker) / 2"}
ENDPOINT = {"type": "endpoint", "name": "remote"}
VALID = {"string_check": STRING_CHECK, "text_similarity": TEXT_SIMILARITY, "score_model": SCORE_MODEL,
         "python": PYTHON, "multi": MULTI, "endpoint": ENDPOINT}


def issues(check) -> list[tuple[str, str]]:
    return [(i.path, i.code) for i in check.issues]


def with_(base: dict, **changes) -> dict:
    g = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            g.pop(key, None)
        else:
            g[key] = value
    return g


# -- the SDK's types are the reference ----------------------------------------------------------------

def _sdk_keys(typed_dict) -> tuple[set[str], set[str]]:
    hints = get_type_hints(typed_dict, include_extras=True)
    required = {k for k, v in hints.items() if get_origin(v) is Required}
    return required, set(hints) - required


def _sdk_types():
    from openai.types.graders import (label_model_grader_param, multi_grader_param, python_grader_param,
                                      score_model_grader_param, string_check_grader_param,
                                      text_similarity_grader_param)

    return {"string_check": string_check_grader_param.StringCheckGraderParam,
            "text_similarity": text_similarity_grader_param.TextSimilarityGraderParam,
            "score_model": score_model_grader_param.ScoreModelGraderParam,
            "label_model": label_model_grader_param.LabelModelGraderParam,
            "python": python_grader_param.PythonGraderParam,
            "multi": multi_grader_param.MultiGraderParam}


@pytest.mark.parametrize("kind", ["string_check", "text_similarity", "score_model", "label_model", "python", "multi"])
def test_required_keys_are_the_sdk_types(kind):
    required, optional = _sdk_keys(_sdk_types()[kind])
    assert REQUIRED_KEYS[kind] == required
    assert optional <= OPTIONAL_KEYS[kind]  # plus the ones Azure's pages document (pass_threshold, ...)


def test_enumerations_are_the_sdk_types():
    from openai.types.graders import score_model_grader_param, string_check_grader_param, text_similarity_grader_param

    def literal(td, key):
        hint = get_type_hints(td, include_extras=True)[key]
        while get_origin(hint) is not Literal:
            hint = get_args(hint)[0]
        return set(get_args(hint))

    assert set(STRING_CHECK_OPERATIONS) == literal(string_check_grader_param.StringCheckGraderParam, "operation")
    assert set(EVALUATION_METRICS) == literal(text_similarity_grader_param.TextSimilarityGraderParam,
                                              "evaluation_metric")
    assert set(INPUT_ROLES) == literal(score_model_grader_param.Input, "role")


@pytest.mark.parametrize("kind", ["string_check", "text_similarity", "score_model", "python"])
def test_what_is_accepted_here_the_sdk_accepts_too(kind):
    from openai.types.fine_tuning import ReinforcementMethod

    g = with_(VALID[kind], pass_threshold=None) if kind == "text_similarity" else VALID[kind]
    assert validate_grader(g).valid
    ReinforcementMethod.model_validate({"grader": g})
    for key in sorted(REQUIRED_KEYS[kind] - {"type"}):
        broken = with_(g, **{key: None})
        assert ("grader." + key, "grader_missing_field") in issues(validate_grader(broken))
        with pytest.raises(Exception):
            ReinforcementMethod.model_validate({"grader": broken})


# -- valid graders --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_graders_of_every_type(kind):
    check = validate_grader(VALID[kind])
    assert check.valid, check.issues
    expected_warnings = {"endpoint": [("grader.type", "grader_preview")]}.get(kind, [])
    assert issues(check) == expected_warnings


def test_the_item_fields_each_grader_reads():
    assert referenced_item_fields(STRING_CHECK) == {"reference_answer"}
    assert referenced_item_fields(SCORE_MODEL) == {"question"}
    assert referenced_item_fields(PYTHON) == set()  # code reads what it wants (and can guard it)
    assert referenced_item_fields(MULTI) == {"summary", "label"}
    nested = with_(STRING_CHECK, reference="{{ item.ground_truth.date }} / {{item.choices[0].text}} {{item.a['b c']}}")
    assert item_field_paths(nested) == [("ground_truth", "date"), ("choices",), ("a", "b c")]
    assert validate_grader(nested).item_fields == {"ground_truth", "choices", "a"}
    assert referenced_item_fields("not a grader") == set()


def test_the_samples_of_azure_documentation_are_valid():
    # learn.microsoft.com .../how-to/reinforcement-fine-tuning (2025): string check, text similarity,
    # score model and multigrader examples
    docs = [
        {"name": "string_check_sample_grader", "type": "string_check", "input": "{{item.reference_answer}}",
         "reference": "{{sample.output_text}}", "operation": "eq"},
        {"name": "text_similarity_sample_grader", "type": "text_similarity", "input": "{{item.reference_answer}}",
         "reference": "{{sample.output_text}}", "evaluation_metric": "fuzzy_match"},
        {"name": "score_model_sample_grader", "type": "score_model", "input": [{"role": "user", "content": (
            "Score\nhow close the reference answer is to the model answer. Reference answer: "
            "{\"extracted_text\": \n{{item.extracted_text}}, \"clause_type\": {{item.clause_type}}}\n\n\n"
            "Model answer: {{sample.output_json}}")}], "model": "gpt-4o-2024-08-06", "sampling_params": {"seed": 42}},
        {"name": "sample_multi_grader", "type": "multi", "graders": {
            "ext_text_similarity": {"name": "ext_text_similarity", "type": "text_similarity",
                                    "input": "{{sample.output_json.ext_text}}", "reference": "{{item.ext_text}}",
                                    "evaluation_metric": "fuzzy_match"},
            "clause_string_check": {"name": "clause_string_check", "type": "string_check",
                                    "input": "{{sample.output_json.clause_type}}", "operation": "eq",
                                    "reference": "{{item.clause_type}}"}},
         "calculate_output": "0.5 * ext_text_similarity + 0.5 * clause_string_check"},
        MULTI,
    ]
    for g in docs:
        check = validate_grader(g)
        assert check.valid, (g["name"], check.issues)
        assert {i.code for i in check.warnings} <= {"grader_needs_response_format"}


# -- what is refused, and where --------------------------------------------------------------------------

BIG = "def grade(sample, item):\n    return 1.0\n" + "#" * (256 * 1024)


@pytest.mark.parametrize("grader,path,code", [
    ("a string", "grader", "grader_invalid_field"),
    ({"name": "x"}, "grader.type", "grader_missing_field"),
    (with_(STRING_CHECK, type="regex"), "grader.type", "grader_unknown_type"),
    (LABEL_MODEL, "grader.type", "grader_unknown_type"),  # only inside a multi grader
    (with_(STRING_CHECK, operation="neq"), "grader.operation", "grader_invalid_field"),
    (with_(STRING_CHECK, name=""), "grader.name", "grader_invalid_field"),
    (with_(STRING_CHECK, input=3), "grader.input", "grader_invalid_field"),
    (with_(STRING_CHECK, reference=None), "grader.reference", "grader_missing_field"),
    (with_(TEXT_SIMILARITY, evaluation_metric="rouge-l"), "grader.evaluation_metric", "grader_invalid_field"),
    (with_(TEXT_SIMILARITY, pass_threshold="high"), "grader.pass_threshold", "grader_invalid_field"),
    (with_(TEXT_SIMILARITY, pass_threshold=80), "grader.pass_threshold", "grader_invalid_field"),
    (with_(SCORE_MODEL, model="gpt-4.1-2025-04-14"), "grader.model", "grader_unknown_model"),
    (with_(SCORE_MODEL, model="ft-model-grader-gpt-4o-2024-08-06"), "grader.model", "grader_unknown_model"),
    (with_(SCORE_MODEL, input=[]), "grader.input", "grader_invalid_field"),
    (with_(SCORE_MODEL, input=[{"role": "judge", "content": "x"}]), "grader.input[0].role", "grader_invalid_field"),
    (with_(SCORE_MODEL, input=[{"role": "user"}]), "grader.input[0].content", "grader_missing_field"),
    (with_(SCORE_MODEL, input=[{"role": "user", "content": [{"type": "image", "url": "x"}]}]),
     "grader.input[0].content[0].type", "grader_invalid_field"),
    (with_(SCORE_MODEL, range=[5, 0]), "grader.range", "grader_invalid_field"),
    (with_(SCORE_MODEL, range=[0, 1, 2]), "grader.range", "grader_invalid_field"),
    (with_(SCORE_MODEL, pass_threshold=6), "grader.pass_threshold", "grader_invalid_field"),
    (with_(SCORE_MODEL, sampling_params={"temperature": 3}), "grader.sampling_params.temperature",
     "grader_invalid_field"),
    (with_(SCORE_MODEL, sampling_params={"top_p": 0}), "grader.sampling_params.top_p", "grader_invalid_field"),
    (with_(SCORE_MODEL, sampling_params={"max_completions_tokens": 0}),
     "grader.sampling_params.max_completions_tokens", "grader_invalid_field"),
    (with_(SCORE_MODEL, sampling_params={"reasoning_effort": "extreme"}), "grader.sampling_params.reasoning_effort",
     "grader_invalid_field"),
    (with_(PYTHON, source=BIG), "grader.source", "grader_source_too_large"),
    (with_(PYTHON, source="def grade(sample, item):\n    return 1 +\n"), "grader.source", "grader_invalid_source"),
    (with_(PYTHON, source="def score(sample, item):\n    return 1\n"), "grader.source", "grader_invalid_source"),
    (with_(PYTHON, source="def grade(sample):\n    return 1\n"), "grader.source", "grader_invalid_source"),
    (with_(PYTHON, source="async def grade(sample, item):\n    return 1\n"), "grader.source", "grader_invalid_source"),
    (with_(PYTHON, source=""), "grader.source", "grader_invalid_field"),
    (with_(MULTI, graders={}), "grader.graders", "grader_invalid_field"),
    (with_(MULTI, graders={"a": MULTI}, calculate_output="a"), "grader.graders.a.type", "grader_unknown_type"),
    (with_(MULTI, graders={"a": ENDPOINT}, calculate_output="a"), "grader.graders.a.type", "grader_unknown_type"),
    (with_(MULTI, graders={"a": STRING_CHECK, "b": with_(PYTHON, source=BIG)}, calculate_output="a + b"),
     "grader.graders.b.source", "grader_source_too_large"),
    (with_(MULTI, graders={"a": STRING_CHECK, "b": with_(STRING_CHECK, name=None)}, calculate_output="a + b"),
     "grader.graders.b.name", "grader_missing_field"),
    (with_(MULTI, graders={"a b": STRING_CHECK}, calculate_output="a"), "grader.graders.a b", "grader_invalid_field"),
    (with_(MULTI, calculate_output="(similarity_score + label) / 2"), "grader.calculate_output",
     "grader_invalid_formula"),
    (with_(MULTI, calculate_output="(similarity_score + label_checker / 2"), "grader.calculate_output",
     "grader_invalid_formula"),
    (with_(MULTI, calculate_output="mean(similarity_score, label_checker)"), "grader.calculate_output",
     "grader_invalid_formula"),
    (with_(MULTI, calculate_output="similarity_score + label_checker;"), "grader.calculate_output",
     "grader_invalid_formula"),
    (with_(MULTI, calculate_output="sqrt(similarity_score, label_checker)"), "grader.calculate_output",
     "grader_invalid_formula"),
    (with_(MULTI, calculate_output="max + label_checker"), "grader.calculate_output", "grader_invalid_formula"),
    (with_(MULTI, calculate_output=""), "grader.calculate_output", "grader_invalid_formula"),
    (with_(STRING_CHECK, input="{{ sample.output }}"), "grader.input", "grader_invalid_template"),
    (with_(STRING_CHECK, input="{{ sample.output_text.answer }}"), "grader.input", "grader_invalid_template"),
    (with_(STRING_CHECK, reference="{{ items.answer }}"), "grader.reference", "grader_invalid_template"),
    (with_(STRING_CHECK, reference="{{ answer }}"), "grader.reference", "grader_invalid_template"),
    (with_(STRING_CHECK, reference="{{ item.answer }"), "grader.reference", "grader_invalid_template"),
    (with_(STRING_CHECK, reference="{{ item..answer }}"), "grader.reference", "grader_invalid_template"),
    (with_(STRING_CHECK, reference="{{}}"), "grader.reference", "grader_invalid_template"),
])
def test_a_bad_grader_is_refused_naming_the_field(grader, path, code):
    check = validate_grader(grader)
    assert not check.valid
    found = issues(check)
    assert (path, code) in found, found
    message = next(i.message for i in check.issues if (i.path, i.code) == (path, code))
    assert message.startswith(f"{path}: ") and len(message) > len(path) + 20
    assert CODES[code].severity == "error"


@pytest.mark.parametrize("grader,path,code", [
    (with_(STRING_CHECK, pass_threshold=1), "grader.pass_threshold", "grader_unknown_key"),
    (with_(SCORE_MODEL, sampling_parameters={"seed": 1}), "grader.sampling_parameters", "grader_unknown_key"),
    (with_(SCORE_MODEL, sampling_params={"max_completion_tokens": 100}),
     "grader.sampling_params.max_completion_tokens", "grader_unknown_key"),
    (with_(MULTI, calculate_output="similarity_score"), "grader.graders.label_checker", "grader_unused_grader"),
    (with_(MULTI, graders={"a": STRING_CHECK, "b": SCORE_MODEL}, calculate_output="min(a, b)"),
     "grader.graders.b.type", "grader_multi_subgrader"),
    (ENDPOINT, "grader.type", "grader_preview"),
    (with_(STRING_CHECK, input="{{sample.output_json.answer}}"), "grader", "grader_needs_response_format"),
])
def test_doubtful_graders_are_warned_about(grader, path, code):
    check = validate_grader(grader)
    assert check.valid and (path, code) in issues(check), issues(check)
    assert CODES[code].severity == "warning"


def test_python_source_limit_is_256_kb_of_utf8():
    head = "def grade(sample, item):\n    return 1.0\n#"
    exactly = head + "x" * (256 * 1024 - len(head))
    assert validate_grader(with_(PYTHON, source=exactly)).valid
    over = exactly[:-1] + "é"  # one character, two bytes
    assert issues(validate_grader(with_(PYTHON, source=over))) == [("grader.source", "grader_source_too_large")]


def test_formulas():
    ok = ["0.5 * a + 0.5 * b", "(a + b) / 2", "max(a, b) - min(a, b)", "a ^ 2 + b ** 2", "-a + +b",
          "sqrt(abs(a)) * exp(log(b + 1)) + floor(a) + ceil(b)", "log(a, 2) + b", "1e-3 * a + .5 * b"]
    for formula in ok:
        g = with_(MULTI, graders={"a": STRING_CHECK, "b": TEXT_SIMILARITY}, calculate_output=formula)
        assert validate_grader(g).valid, formula
    g = with_(MULTI, graders={"a": STRING_CHECK, "b": TEXT_SIMILARITY}, calculate_output="0.5 * a + c")
    message = validate_grader(g).errors[0].message
    assert message == ("grader.calculate_output: 'c' at character 11 is not one of the graders (their keys: a, b), "
                       "in '0.5 * a + c'")


def test_a_multi_grader_in_the_sdk_form_one_grader_named_in_the_formula():
    g = {"type": "multi", "name": "one", "graders": with_(STRING_CHECK, name="answer"), "calculate_output": "answer"}
    assert validate_grader(g).valid and referenced_item_fields(g) == {"reference_answer"}


def test_every_problem_of_a_grader_is_reported():
    g = {"type": "multi", "name": "m", "calculate_output": "a + b", "graders": {
        "a": with_(STRING_CHECK, operation="is"), "b": with_(SCORE_MODEL, model="claude", range=[1])}}
    assert issues(validate_grader(g)) == [("grader.graders.a.operation", "grader_invalid_field"),
                                          ("grader.graders.b.type", "grader_multi_subgrader"),
                                          ("grader.graders.b.model", "grader_unknown_model"),
                                          ("grader.graders.b.range", "grader_invalid_field")]


def test_the_check_serialises_for_an_api_answer():
    d = validate_grader(with_(STRING_CHECK, operation="is")).to_dict()
    assert d["valid"] is False and d["item_fields"] == ["reference_answer"]
    assert d["errors"] == [{"field": "grader.operation", "code": "grader_invalid_field", "severity": "error",
                            "message": 'grader.operation: is "is"; use one of eq, ne, like, ilike'}]
    json.dumps(d)


# -- response formats --------------------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}, "detail": {
    "type": "object", "properties": {"score": {"type": "number"}}}}, "required": ["answer"]}
CHAT_FORM = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}
FLAT_FORM = {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}


@pytest.mark.parametrize("rf", [CHAT_FORM, FLAT_FORM, {"type": "text"}])
def test_response_formats_in_both_published_forms(rf):
    assert validate_response_format(rf) == []


def test_the_grader_reads_what_the_response_format_produces():
    g = with_(STRING_CHECK, input="{{sample.output_json.answer}} {{ sample.output_json.detail.score }}")
    for rf in (CHAT_FORM, FLAT_FORM):
        assert issues(validate_grader(g, response_format=rf)) == []
    wrong = with_(STRING_CHECK, input="{{sample.output_json.answr}} {{sample.output_json.detail.grade}}")
    assert issues(validate_grader(wrong, response_format=CHAT_FORM)) == [
        ("response_format.json_schema.schema", "response_format_mismatch"),
        ("response_format.json_schema.schema", "response_format_mismatch")]
    assert issues(validate_grader(g, response_format={"type": "text"})) == [
        ("response_format.type", "response_format_mismatch")]


@pytest.mark.parametrize("rf,path", [
    ([], "response_format"), ({"type": "json_object"}, "response_format.type"),
    ({"type": "json_schema", "json_schema": {"schema": SCHEMA}}, "response_format.json_schema.name"),
    ({"type": "json_schema", "name": "x", "schema": "{}"}, "response_format.schema"),
    ({"type": "json_schema", "name": "x", "schema": {"type": "array"}}, "response_format.schema.type"),
    ({"type": "json_schema", "name": "x", "schema": SCHEMA, "strict": "yes"}, "response_format.strict"),
])
def test_a_bad_response_format_is_refused(rf, path):
    found = [(i.path, i.code) for i in validate_response_format(rf)]
    assert found == [(path, "invalid_response_format")]


# -- files ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrap", [
    lambda g: json.dumps(g), lambda g: json.dumps({"grader": g}),
    lambda g: json.dumps({"type": "reinforcement", "reinforcement": {"grader": g, "hyperparameters": {}}}),
    lambda g: "'" + json.dumps(g) + "'", lambda g: json.dumps(json.dumps(g)), lambda g: "\ufeff" + json.dumps(g)])
def test_grader_files_as_people_publish_them(tmp_path, wrap):
    path = tmp_path / "grader.json"
    path.write_text(wrap(STRING_CHECK), encoding="utf-8")
    assert load_grader(path) == STRING_CHECK


def test_a_file_that_is_not_json_raises_value_error(tmp_path):
    path = tmp_path / "grader.json"
    path.write_text("{type: string_check}")
    with pytest.raises(ValueError):
        load_grader(path)


def test_label_model_graders_inside_a_multi_grader():
    g = with_(MULTI, graders={"a": STRING_CHECK, "l": LABEL_MODEL}, calculate_output="0.5 * a + 0.5 * l")
    check = validate_grader(g)
    assert check.valid and check.item_fields == {"reference_answer", "question"}
    bad = copy.deepcopy(g)
    bad["graders"]["l"]["passing_labels"] = ["great"]
    bad["graders"]["l"]["labels"] = []
    assert [(p, c) for p, c in issues(validate_grader(bad)) if c != "grader_multi_subgrader"] == [
        ("grader.graders.l.labels", "grader_invalid_field")]
    bad["graders"]["l"]["labels"] = ["good", "bad"]
    assert ("grader.graders.l.passing_labels", "grader_invalid_field") in issues(validate_grader(bad))


def test_the_module_examples_run():
    import doctest

    import shared.catalogue
    import shared.validation.graders

    for module in (shared.validation.graders, shared.catalogue):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module
