"""Reinforcement fine-tuning graders, checked locally before a job is submitted.

    >>> from shared.validation.graders import validate_grader, referenced_item_fields
    >>> g = {"type": "string_check", "name": "answer", "operation": "eq",
    ...      "input": "{{ sample.output_text }}", "reference": "{{ item.reference_answer }}"}
    >>> validate_grader(g).valid, sorted(referenced_item_fields(g))
    (True, ['reference_answer'])

A grader is one of ``string_check``, ``text_similarity``, ``score_model``,
``python``, ``endpoint`` (preview) or ``multi`` (several graders, keyed by a
name, combined by a ``calculate_output`` formula); ``label_model`` graders are
allowed inside a ``multi`` grader only. The required keys of each type are the
openai SDK's (``openai/types/graders/*_param.py``; a test keeps them equal); the
limits (python source size, judge models) come from the model catalogue's
``reinforcement`` section. Every problem names the field at fault, as
``grader.graders.b.source: ...``, and carries a code of :mod:`.codes`.

Templates: ``{{ item.<field>[.<sub>...] }}`` reads an extra top-level field of
the training example, ``{{ sample.output_text }}`` the model's answer,
``{{ sample.output_json[.<key>...] }}`` its JSON answer (a ``response_format``
with a JSON schema is needed), ``{{ sample.output_tools }}`` / ``{{ sample.choices }}``
the rest of it. :func:`referenced_item_fields` lists the ``item`` fields the
templates read (python graders' own ``item[...]`` reads are not counted: code can
guard them).

Passing the local checks does not prove the service accepts the grader: Azure
OpenAI can check it too (``POST /openai/v1/fine_tuning/alpha/graders/validate``,
the SDK's ``client.fine_tuning.alpha.graders.validate``).
"""
from __future__ import annotations

import ast
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .rules import _jtype
from ..catalogue import Catalogue, load_catalogue
from .codes import CODES, ERROR, WARNING

# The code a reinforcement dataset is rejected with when no grader was dropped beside it.
GRADER_MISSING = "grader_missing"

__all__ = ["GRADER_MISSING", "GraderCheck", "GraderIssue", "REQUIRED_KEYS", "OPTIONAL_KEYS", "item_field_paths", "load_grader",
           "referenced_item_fields", "validate_grader", "validate_response_format"]

# Required and optional keys per grader type: the openai SDK's TypedDicts (a test compares).
REQUIRED_KEYS: dict[str, frozenset[str]] = {
    "string_check": frozenset({"type", "name", "input", "reference", "operation"}),
    "text_similarity": frozenset({"type", "name", "input", "reference", "evaluation_metric"}),
    "score_model": frozenset({"type", "name", "input", "model"}),
    "label_model": frozenset({"type", "name", "input", "model", "labels", "passing_labels"}),
    "python": frozenset({"type", "name", "source"}),
    "multi": frozenset({"type", "name", "graders", "calculate_output"}),
    "endpoint": frozenset({"type", "name"}),  # preview: the API is not published
}
OPTIONAL_KEYS: dict[str, frozenset[str]] = {
    "string_check": frozenset(),
    # pass_threshold: in Azure's documentation (and its eval graders), not in the SDK's type
    "text_similarity": frozenset({"pass_threshold"}),
    "score_model": frozenset({"range", "sampling_params", "pass_threshold"}),
    "label_model": frozenset(),
    "python": frozenset({"image_tag"}),
    "multi": frozenset({"invalid_grade"}),  # invalid_grade: an older Azure page
    "endpoint": frozenset(),
}
STRING_CHECK_OPERATIONS = ("eq", "ne", "like", "ilike")
EVALUATION_METRICS = ("cosine", "fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3",
                      "rouge_4", "rouge_5", "rouge_l")
INPUT_ROLES = ("user", "assistant", "system", "developer")
SAMPLING_PARAMS = ("max_completions_tokens", "reasoning_effort", "seed", "temperature", "top_p")
SAMPLING_REASONING_EFFORT = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
FORMULA_FUNCTIONS = {"min": (1, None), "max": (1, None), "abs": (1, 1), "floor": (1, 1), "ceil": (1, 1),
                     "exp": (1, 1), "sqrt": (1, 1), "log": (1, 2)}
SAMPLE_FIELDS = ("output_text", "output_json", "output_tools", "choices")
_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SEGMENT = re.compile(r"\.([^.\[\]\s]+)|\[(\d+)\]|\[\"([^\"]+)\"\]|\['([^']+)'\]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class GraderIssue:
    path: str  # the field at fault: "grader", "grader.graders.b.source", "response_format.schema"
    code: str  # a code of codes.CODES
    message: str  # starts with the path

    @property
    def severity(self) -> str:
        return CODES[self.code].severity

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.path, "code": self.code, "severity": self.severity, "message": self.message}


@dataclass
class GraderCheck:
    """What :func:`validate_grader` found."""

    issues: list[GraderIssue] = field(default_factory=list)
    item_paths: list[tuple[str, ...]] = field(default_factory=list)  # each {{item.a.b}}: ("a", "b"), in order
    output_json_paths: list[tuple[str, ...]] = field(default_factory=list)
    uses_output_json: bool = False

    @property
    def errors(self) -> list[GraderIssue]:
        return [i for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[GraderIssue]:
        return [i for i in self.issues if i.severity == WARNING]

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def item_fields(self) -> set[str]:
        return {p[0] for p in self.item_paths}

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "errors": [i.to_dict() for i in self.errors],
                "warnings": [i.to_dict() for i in self.warnings], "item_fields": sorted(self.item_fields)}


# -- public helpers ------------------------------------------------------------------------------

def validate_grader(grader: Any, *, response_format: Any = None, catalogue: Catalogue | None = None,
                    path: str = "grader") -> GraderCheck:
    """Checks a grader configuration (a dict, as sent in ``method.reinforcement.grader``).

    ``response_format``, when given, is the job's JSON-schema response format: the
    grader's ``{{ sample.output_json.<key> }}`` reads are checked against its schema.
    """
    check = _Checker(catalogue or load_catalogue())
    check.grader(grader, path, top=True)
    if response_format is not None:
        check.issues.extend(validate_response_format(response_format))
        check.response_format(response_format)
    elif check.result.uses_output_json:
        check.add("grader_needs_response_format", path,
                  "the grader reads {{sample.output_json}}, which is empty unless the job sets a response_format "
                  "with a JSON schema: pass it (--response-format) or read {{sample.output_text}}")
    check.result.issues = check.issues
    return check.result


def referenced_item_fields(grader: Any) -> set[str]:
    """The extra top-level fields of a training example that the grader's templates read
    (``{{ item.answer }}`` and ``{{ item.answer.date }}`` both read ``answer``)."""
    return {p[0] for p in item_field_paths(grader)}


def item_field_paths(grader: Any) -> list[tuple[str, ...]]:
    """Every ``{{ item.<path> }}`` the grader's templates read, as tuples of keys (first seen
    first, each once); list indices (``[0]``) end a path."""
    out: list[tuple[str, ...]] = []
    for text in _template_strings(grader):
        for m in _TEMPLATE.finditer(text):
            parsed = _parse_reference(m.group(1))
            if parsed and parsed[0] == "item" and parsed[1] and parsed[1] not in out:
                out.append(parsed[1])
    return out


def validate_response_format(response_format: Any, path: str = "response_format") -> list[GraderIssue]:
    """Checks a job's ``response_format``: ``{"type": "text"}`` or a JSON schema, in the Chat
    Completions form ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``
    or the flat form of Azure's RFT page ``{"type": "json_schema", "name", "schema", "strict"}``."""
    issues: list[GraderIssue] = []

    def bad(where: str, message: str) -> None:
        issues.append(GraderIssue(where, "invalid_response_format", f"{where}: {message}"))

    if type(response_format) is not dict:
        bad(path, f"is {_jtype(response_format)}; it must be an object such as "
                  f'{{"type": "json_schema", "json_schema": {{"name": "...", "schema": {{...}}}}}}')
        return issues
    kind = response_format.get("type")
    if kind == "text":
        return issues
    if kind != "json_schema":
        bad(f"{path}.type", f'is {_short(kind)}; use "json_schema" (or "text")')
        return issues
    body, where = _schema_holder(response_format, path)
    name = body.get("name")
    if type(name) is not str or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        bad(f"{where}.name", f"is {_short(name)}; give the schema a name of 1-64 characters a-z A-Z 0-9 _ -")
    schema = body.get("schema")
    if type(schema) is not dict:
        bad(f"{where}.schema", f"is {_jtype(schema)}; it must be a JSON schema object")
    elif "type" in schema and schema.get("type") != "object":
        bad(f"{where}.schema.type", f'is {_short(schema.get("type"))}; the answer\'s schema must be "object"')
    strict = body.get("strict")
    if strict is not None and type(strict) is not bool:
        bad(f"{where}.strict", f"is {_jtype(strict)}; it must be true or false")
    return issues


def load_grader(path: str | os.PathLike[str]) -> Any:
    """A grader read from a JSON file: the grader itself, or wrapped as the validate call's body
    ``{"grader": {...}}`` or as a job's method ``{"type": "reinforcement", "reinforcement":
    {"grader": {...}}}``. A file holding one JSON string of the grader's JSON (as some samples are
    published, quoted) is read too. Raises ``OSError`` / ``ValueError``."""
    with open(path, "rb") as fh:
        text = fh.read().decode("utf-8-sig").strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]  # a grader published between single quotes (a shell argument)
    value = json.loads(text)
    if isinstance(value, str):
        value = json.loads(value)
    return unwrap_grader(value)


def unwrap_grader(value: Any) -> Any:
    """The grader inside a validate-call body or a reinforcement method object (else ``value``)."""
    if type(value) is dict and "type" not in value and type(value.get("grader")) is dict:
        return value["grader"]
    if type(value) is dict and value.get("type") == "reinforcement" and type(value.get("reinforcement")) is dict:
        return unwrap_grader(value["reinforcement"])
    return value


# -- the checks ----------------------------------------------------------------------------------

class _Checker:
    def __init__(self, catalogue: Catalogue):
        self.rft = catalogue.reinforcement
        self.issues: list[GraderIssue] = []
        self.result = GraderCheck()

    def add(self, code: str, path: str, message: str) -> None:
        assert code in CODES, code
        self.issues.append(GraderIssue(path, code, f"{path}: {message}"))

    # one grader ----------------------------------------------------------------------------------
    def grader(self, g: Any, path: str, *, top: bool = False, in_multi: bool = False) -> None:
        if type(g) is not dict:
            self.add("grader_invalid_field", path, f"is {_jtype(g)}; a grader is an object such as "
                                                   f'{{"type": "string_check", "name": "...", ...}}')
            return
        kind = g.get("type")
        allowed = self.rft.grader_types if top else self.rft.multi_subgrader_types
        if type(kind) is not str or kind not in REQUIRED_KEYS or (top and kind not in allowed):
            if kind is None:
                self.add("grader_missing_field", f"{path}.type", f"missing; use one of {', '.join(allowed)}")
            elif kind == "label_model" and top:
                self.add("grader_unknown_type", f"{path}.type", '"label_model" is allowed only inside a "multi" '
                                                              f"grader; use one of {', '.join(allowed)}")
            else:
                self.add("grader_unknown_type", f"{path}.type", f"is {_short(kind)}; use one of {', '.join(allowed)}")
            return
        if in_multi and kind == "multi":
            self.add("grader_unknown_type", f"{path}.type", 'a "multi" grader cannot contain another "multi" grader; '
                                                          "list all the graders in the outer one")
            return
        if in_multi and kind not in allowed:
            self.add("grader_unknown_type", f"{path}.type", f"{_short(kind)} cannot be a part of a multi grader; "
                                                          f"use one of {', '.join(allowed)}")
            return
        if in_multi and kind not in ("string_check", "text_similarity"):
            self.add("grader_multi_subgrader", f"{path}.type",
                     f'one Azure page supports only string_check and text_similarity inside "multi", another '
                     f"(and the SDK) also {kind}: check it with the graders/validate call before training")
        required, optional = REQUIRED_KEYS[kind], OPTIONAL_KEYS[kind]
        for key in sorted(required - set(g)):
            self.add("grader_missing_field", f"{path}.{key}", f"missing; a {kind} grader needs "
                                                            f"{', '.join(sorted(required))}")
        if kind != "endpoint":
            unknown = sorted(str(k) for k in g if k not in required and k not in optional)
            for key in unknown:
                hint = " (did you mean sampling_params?)" if key == "sampling_parameters" else ""
                self.add("grader_unknown_key", f"{path}.{key}", f"is not a field of a {kind} grader{hint}; the "
                                                              f"service may refuse or ignore it: remove it")
        if "name" in g:
            self.string(g["name"], f"{path}.name", nonempty=True)
        getattr(self, "_" + kind)(g, path)

    def _string_check(self, g: dict, path: str) -> None:
        for key in ("input", "reference"):
            if key in g:
                self.template_string(g[key], f"{path}.{key}")
        op = g.get("operation")
        if "operation" in g and op not in STRING_CHECK_OPERATIONS:
            hint = ' ("neq" is written "ne")' if op == "neq" else ""
            self.add("grader_invalid_field", f"{path}.operation",
                     f"is {_short(op)}{hint}; use one of {', '.join(STRING_CHECK_OPERATIONS)}")

    def _text_similarity(self, g: dict, path: str) -> None:
        for key in ("input", "reference"):
            if key in g:
                self.template_string(g[key], f"{path}.{key}")
        metric = g.get("evaluation_metric")
        if "evaluation_metric" in g and metric not in EVALUATION_METRICS:
            hint = ""
            if type(metric) is str and metric.replace("-", "_").lower() in EVALUATION_METRICS:
                hint = f' (write "{metric.replace("-", "_").lower()}")'
            self.add("grader_invalid_field", f"{path}.evaluation_metric",
                     f"is {_short(metric)}{hint}; use one of {', '.join(EVALUATION_METRICS)}")
        if "pass_threshold" in g:
            t = g["pass_threshold"]
            if not _is_number(t):
                self.add("grader_invalid_field", f"{path}.pass_threshold", f"is {_jtype(t)}; it must be a number "
                                                                          f"from 0 to 1")
            elif not 0 <= t <= 1:
                self.add("grader_invalid_field", f"{path}.pass_threshold", f"is {t}; similarity scores are from 0 "
                                                                          f"to 1, so the threshold must be too")

    def _score_model(self, g: dict, path: str) -> None:
        self.model_grader(g, path)
        low, high = 0.0, 1.0
        if "range" in g:
            r = g["range"]
            if type(r) is not list or len(r) != 2 or not all(_is_number(x) for x in r):
                self.add("grader_invalid_field", f"{path}.range", f"is {_short(r)}; it must be two numbers "
                                                                 f"[lowest, highest], e.g. [0, 1]")
                low = high = None
            elif not r[0] < r[1]:
                self.add("grader_invalid_field", f"{path}.range", f"is {_short(r)}; the first number (lowest score) "
                                                                 f"must be smaller than the second")
                low = high = None
            else:
                low, high = r
        if "pass_threshold" in g:
            t = g["pass_threshold"]
            if not _is_number(t):
                self.add("grader_invalid_field", f"{path}.pass_threshold", f"is {_jtype(t)}; it must be a number")
            elif low is not None and not low <= t <= high:
                self.add("grader_invalid_field", f"{path}.pass_threshold",
                         f"is {t}, outside the score range [{_num(low)}, {_num(high)}]; no score could pass")
        if "sampling_params" in g:
            self.sampling_params(g["sampling_params"], f"{path}.sampling_params")

    def _label_model(self, g: dict, path: str) -> None:
        self.model_grader(g, path)
        labels = g.get("labels")
        ok = type(labels) is list and labels and all(type(x) is str and x for x in labels)
        if "labels" in g and not ok:
            self.add("grader_invalid_field", f"{path}.labels", f"is {_short(labels)}; it must be a non-empty list "
                                                              f"of label strings")
        passing = g.get("passing_labels")
        if "passing_labels" in g:
            if type(passing) is not list or not passing or not all(type(x) is str for x in passing):
                self.add("grader_invalid_field", f"{path}.passing_labels", f"is {_short(passing)}; it must be a "
                                                                          f"non-empty list of labels")
            elif ok:
                extra = [x for x in passing if x not in labels]
                if extra:
                    self.add("grader_invalid_field", f"{path}.passing_labels",
                             f"names {', '.join(map(repr, extra))}, which {'is' if len(extra) == 1 else 'are'} not "
                             f"in labels; passing labels must be a subset of labels")

    def _python(self, g: dict, path: str) -> None:
        source = g.get("source")
        if "image_tag" in g:
            self.string(g["image_tag"], f"{path}.image_tag", nonempty=True)
        if "source" not in g:
            return
        if type(source) is not str or not source.strip():
            self.add("grader_invalid_field", f"{path}.source", f"is {_short(source)}; it must be Python source code "
                                                              f"defining grade(sample, item)")
            return
        size = len(source.encode("utf-8", "surrogatepass"))
        cap = self.rft.python_source_max_bytes
        if size > cap:
            self.add("grader_source_too_large", f"{path}.source",
                     f"is {size:,} bytes of UTF-8; a python grader's source must be at most {cap:,} bytes "
                     f"({cap // 1024} KB): move data out of the code (into the examples' fields) or shorten it")
            return
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            self.add("grader_invalid_source", f"{path}.source",
                     f"is not valid Python: {exc.msg} at line {exc.lineno}, column {exc.offset or 0}")
            return
        grade = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.name == "grade"), None)
        if grade is None:
            self.add("grader_invalid_source", f"{path}.source", "defines no top-level function grade(sample, item); "
                                                               "the service calls it to score each answer")
            return
        if isinstance(grade, ast.AsyncFunctionDef):
            self.add("grader_invalid_source", f"{path}.source", "grade must be a plain function, not async")
            return
        a = grade.args
        positional = len(a.posonlyargs) + len(a.args)
        if positional < 2 and a.vararg is None:
            self.add("grader_invalid_source", f"{path}.source",
                     f"grade takes {positional} positional argument(s); it must take two, grade(sample, item)")
        elif positional - len(a.defaults) > 2:
            self.add("grader_invalid_source", f"{path}.source",
                     "grade needs more than two arguments; the service passes two, grade(sample, item)")

    def _endpoint(self, g: dict, path: str) -> None:
        self.add("grader_preview", f"{path}.type", "endpoint graders are in preview and their API is not published: "
                                                   "only type and name are checked here; check it with the "
                                                   "graders/validate call")

    def _multi(self, g: dict, path: str) -> None:
        graders = g.get("graders")
        keys: list[str] = []
        if "graders" in g:
            if type(graders) is not dict or not graders:
                self.add("grader_invalid_field", f"{path}.graders",
                         f"is {_short(graders)}; it must be an object of named graders, "
                         f'{{"a": {{"type": "string_check", ...}}, "b": {{...}}}}')
            elif type(graders.get("type")) is str:
                # the SDK's type: one grader, referred to by its name
                self.grader(graders, f"{path}.graders", in_multi=True)
                if type(graders.get("name")) is str:
                    keys.append(graders["name"])
            else:
                for key, sub in graders.items():
                    sub_path = f"{path}.graders.{key}"
                    if not _NAME.fullmatch(str(key)):
                        self.add("grader_invalid_field", sub_path,
                                 f"the key {key!r} cannot be named in calculate_output: use letters, digits and _ "
                                 f"(not first a digit)")
                    keys.append(str(key))
                    self.grader(sub, sub_path, in_multi=True)
        formula = g.get("calculate_output")
        if "calculate_output" in g:
            if type(formula) is not str or not formula.strip():
                self.add("grader_invalid_formula", f"{path}.calculate_output",
                         f"is {_short(formula)}; write a formula over the graders' keys, e.g. \"0.5 * a + 0.5 * b\"")
            elif keys or type(graders) is dict:
                used = _Formula(formula, keys).parse()
                if isinstance(used, str):
                    self.add("grader_invalid_formula", f"{path}.calculate_output", used)
                else:
                    for key in keys:
                        if key not in used:
                            self.add("grader_unused_grader", f"{path}.graders.{key}",
                                     f"is not used by calculate_output ({formula!r}): it costs grading time and "
                                     f"does not change the score; use it or remove it")
        if "invalid_grade" in g and not _is_number(g["invalid_grade"]):
            self.add("grader_invalid_field", f"{path}.invalid_grade", f"is {_jtype(g['invalid_grade'])}; it must "
                                                                     f"be a number")

    # parts -------------------------------------------------------------------------------------
    def model_grader(self, g: dict, path: str) -> None:
        if "model" in g:
            model = g["model"]
            if self.rft.judge_model(model) is None:
                known = ", ".join(f"{m} ({', '.join(a)})" if a else m for m, a in self.rft.grader_models.items())
                self.add("grader_unknown_model", f"{path}.model",
                         f"is {_short(model)}, which is not a grader model; use one of {known}")
        if "input" not in g:
            return
        msgs = g["input"]
        if type(msgs) is not list or not msgs:
            self.add("grader_invalid_field", f"{path}.input", f"is {_short(msgs)}; it must be a non-empty list of "
                                                             f'messages {{"role": "user", "content": "..."}}')
            return
        for k, m in enumerate(msgs):
            where = f"{path}.input[{k}]"
            if type(m) is not dict:
                self.add("grader_invalid_field", where, f'is {_jtype(m)}; write {{"role": "...", "content": "..."}}')
                continue
            role = m.get("role")
            if role not in INPUT_ROLES:
                what = "missing" if role is None else f"is {_short(role)}"
                self.add("grader_invalid_field" if role is not None else "grader_missing_field", f"{where}.role",
                         f"{what}; use one of {', '.join(INPUT_ROLES)}")
            if "type" in m and m["type"] != "message":
                self.add("grader_invalid_field", f"{where}.type", f'is {_short(m["type"])}; it must be "message" '
                                                                f"(or left out)")
            for key in m:
                if key not in ("role", "content", "type"):
                    self.add("grader_unknown_key", f"{where}.{key}", "is not a field of a grader's input message: "
                                                                    "remove it")
            if "content" not in m:
                self.add("grader_missing_field", f"{where}.content", "missing; write the grading prompt")
            else:
                self.content(m["content"], f"{where}.content")

    def content(self, c: Any, path: str) -> None:
        if type(c) is str:
            if not c.strip():
                self.add("grader_invalid_field", path, "is empty; write the grading prompt")
            self.template_string(c, path)
            return
        parts = c if type(c) is list else [c]
        if type(c) is list and not c:
            self.add("grader_invalid_field", path, "is an empty list; write the grading prompt")
        for k, part in enumerate(parts):
            where = f"{path}[{k}]" if type(c) is list else path
            if type(part) is str:
                self.template_string(part, where)
                continue
            if type(part) is not dict:
                self.add("grader_invalid_field", where, f"is {_jtype(part)}; use a string or a content part such as "
                                                        f'{{"type": "input_text", "text": "..."}}')
                continue
            kind = part.get("type")
            if kind in ("input_text", "output_text"):
                if type(part.get("text")) is not str:
                    self.add("grader_invalid_field", f"{where}.text", f'is {_short(part.get("text"))}; a {kind} '
                                                                      f"part needs its text")
                else:
                    self.template_string(part["text"], f"{where}.text")
            elif kind == "input_image":
                url = part.get("image_url")
                if type(url) is not str or not url:
                    self.add("grader_invalid_field", f"{where}.image_url", f"is {_short(url)}; give the image's URL "
                                                                           f"(or a template)")
                else:
                    self.template_string(url, f"{where}.image_url")
                if "detail" in part and part["detail"] not in ("low", "high", "auto"):
                    self.add("grader_invalid_field", f"{where}.detail", f'is {_short(part["detail"])}; use low, '
                                                                        f"high or auto")
            elif kind == "input_audio":
                if type(part.get("input_audio")) is not dict:
                    self.add("grader_invalid_field", f"{where}.input_audio", 'is missing; write {"data": ..., '
                                                                             '"format": "mp3" or "wav"}')
            else:
                self.add("grader_invalid_field", f"{where}.type", f"is {_short(kind)}; use input_text, output_text, "
                                                                  f"input_image or input_audio")

    def sampling_params(self, p: Any, path: str) -> None:
        if type(p) is not dict:
            self.add("grader_invalid_field", path, f"is {_jtype(p)}; it must be an object such as {{\"seed\": 42}}")
            return
        for key, value in p.items():
            where = f"{path}.{key}"
            if key not in SAMPLING_PARAMS:
                hint = " (the SDK writes max_completions_tokens)" if key == "max_completion_tokens" else ""
                self.add("grader_unknown_key", where, f"is not a sampling parameter{hint}; known: "
                                                      f"{', '.join(SAMPLING_PARAMS)}")
                continue
            if value is None:
                continue
            if key in ("max_completions_tokens", "seed"):
                if type(value) is not int or (key == "max_completions_tokens" and value < 1) or value < 0:
                    self.add("grader_invalid_field", where, f"is {_short(value)}; it must be a "
                                                            f"{'positive' if key != 'seed' else 'non-negative'} integer")
            elif key == "temperature":
                if not _is_number(value) or not 0 <= value <= 2:
                    self.add("grader_invalid_field", where, f"is {_short(value)}; it must be a number from 0 to 2")
            elif key == "top_p":
                if not _is_number(value) or not 0 < value <= 1:
                    self.add("grader_invalid_field", where, f"is {_short(value)}; it must be a number above 0 and "
                                                            f"at most 1")
            elif value not in SAMPLING_REASONING_EFFORT:
                self.add("grader_invalid_field", where, f"is {_short(value)}; use one of "
                                                        f"{', '.join(SAMPLING_REASONING_EFFORT)}")

    def string(self, value: Any, path: str, *, nonempty: bool = False) -> bool:
        if type(value) is not str or (nonempty and not value.strip()):
            self.add("grader_invalid_field", path, f"is {_short(value)}; it must be a non-empty string")
            return False
        return True

    def template_string(self, value: Any, path: str) -> None:
        if not self.string(value, path):
            return
        res = self.result
        for m in _TEMPLATE.finditer(value):
            inner = m.group(1)
            parsed = _parse_reference(inner)
            if parsed is None:
                self.add("grader_invalid_template", path,
                         f"{{{{{inner}}}}} is not a template reference; write {{{{item.<field>}}}}, "
                         f"{{{{sample.output_text}}}} or {{{{sample.output_json.<key>}}}}")
                continue
            ns, rest = parsed
            if ns == "item":
                if rest and rest not in res.item_paths:
                    res.item_paths.append(rest)
            elif ns == "sample":
                if not rest or rest[0] not in SAMPLE_FIELDS:
                    got = f"sample.{'.'.join(rest)}" if rest else "sample"
                    self.add("grader_invalid_template", path,
                             f"{{{{{inner}}}}} reads {got}; the model's answer is sample.output_text (or "
                             f"sample.output_json, sample.output_tools, sample.choices)")
                elif rest[0] == "output_text" and len(rest) > 1:
                    self.add("grader_invalid_template", path,
                             f"{{{{{inner}}}}}: sample.output_text is a string and has no fields; read "
                             f"sample.output_json.{'.'.join(rest[1:])} (with a JSON-schema response_format)")
                elif rest[0] == "output_json":
                    res.uses_output_json = True
                    if len(rest) > 1 and rest[1:] not in res.output_json_paths:
                        res.output_json_paths.append(rest[1:])
            else:
                self.add("grader_invalid_template", path,
                         f"{{{{{inner}}}}} reads namespace {ns!r}; templates read item.<field> (the example's "
                         f"fields) or sample.<...> (the model's answer)")
        leftover = _TEMPLATE.sub("", value)
        if "{{" in leftover:
            at = leftover.index("{{")
            self.add("grader_invalid_template", path,
                     f"has a '{{{{' that is not closed by '}}}}' (near {leftover[at:at + 30]!r}); write "
                     f"{{{{item.<field>}}}} with no brace inside")

    def response_format(self, rf: Any) -> None:
        """The grader's sample.output_json reads against the response format's schema."""
        res = self.result
        if not res.uses_output_json or type(rf) is not dict:
            return
        if rf.get("type") != "json_schema":
            if rf.get("type") == "text":
                self.add("response_format_mismatch", "response_format.type",
                         'is "text", but the grader reads {{sample.output_json}}, which stays empty: use a '
                         '"json_schema" response format or read {{sample.output_text}}')
            return
        body, where = _schema_holder(rf, "response_format")
        schema = body.get("schema")
        if type(schema) is not dict:
            return
        for p in res.output_json_paths:
            node, walked = schema, []
            for key in p:
                props = node.get("properties") if type(node) is dict else None
                if type(props) is not dict:
                    break  # the schema does not say: nothing to check against
                if key not in props:
                    known = ", ".join(sorted(map(str, props))) or "none"
                    self.add("response_format_mismatch", f"{where}.schema",
                             f"has no property {'.'.join(walked + [key])!r}, which the grader reads as "
                             f"{{{{sample.output_json.{'.'.join(p)}}}}} (properties: {known})")
                    break
                walked.append(key)
                node = props[key]


# -- templates, formulas ---------------------------------------------------------------------------

def _parse_reference(inner: str) -> tuple[str, tuple[str, ...]] | None:
    """``item.a.b[0].c`` -> ("item", ("a", "b")): the namespace and the keys up to an index."""
    m = _NAME.match(inner)
    if not m:
        return None
    ns, pos, keys, indexed = m.group(0), m.end(), [], False
    while pos < len(inner):
        s = _SEGMENT.match(inner, pos)
        if not s:
            return None
        if s.group(2) is not None:
            indexed = True
        elif not indexed:
            keys.append(s.group(1) or s.group(3) or s.group(4))
        pos = s.end()
    return ns, tuple(keys)


class _Formula:
    """A recursive-descent parser of calculate_output: numbers, the graders' keys, + - * / ^ (or
    **), parentheses, and min max abs floor ceil exp sqrt log."""

    _TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)"
                        r"|(\*\*|[-+*/^(),]))")

    def __init__(self, text: str, names: Iterable[str]):
        self.text = text
        self.names = list(names)
        self.tokens: list[tuple[str, str, int]] = []
        self.i = 0
        self.used: set[str] = set()

    def parse(self) -> set[str] | str:
        """The names the formula uses, or a message saying what is wrong."""
        pos, text = 0, self.text
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = self._TOKEN.match(text, pos)
            if not m:
                at = pos + len(text[pos:]) - len(text[pos:].lstrip())
                return (f"unexpected {text[at]!r} at character {at + 1}, in {text!r}; use numbers, the graders' "
                        f"keys, + - * / ^, parentheses and {', '.join(FORMULA_FUNCTIONS)}")
            kind = "num" if m.group(1) else "name" if m.group(2) else "op"
            self.tokens.append((kind, m.group(1) or m.group(2) or m.group(3), m.start(m.lastindex)))
            pos = m.end()
        try:
            self.expr()
            if self.i < len(self.tokens):
                _, value, at = self.tokens[self.i]
                raise _FormulaError(f"unexpected {value!r} at character {at + 1}")
        except _FormulaError as exc:
            return f"{exc}, in {text!r}"
        return self.used

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise _FormulaError(f"the formula ends early (expected {repr(value) if value else 'a value'})")
        if value is not None and tok[1] != value:
            raise _FormulaError(f"expected {value!r} at character {tok[2] + 1}, found {tok[1]!r}")
        self.i += 1
        return tok

    def expr(self) -> None:
        self.term()
        while (t := self.peek()) and t[1] in ("+", "-"):
            self.i += 1
            self.term()

    def term(self) -> None:
        self.power()
        while (t := self.peek()) and t[1] in ("*", "/"):
            self.i += 1
            self.power()

    def power(self) -> None:
        self.unary()
        if (t := self.peek()) and t[1] in ("^", "**"):
            self.i += 1
            self.power()

    def unary(self) -> None:
        if (t := self.peek()) and t[1] in ("+", "-"):
            self.i += 1
            self.unary()
            return
        self.primary()

    def primary(self) -> None:
        kind, value, at = self.take()
        if kind == "num":
            return
        if value == "(":
            self.expr()
            self.take(")")
            return
        if kind != "name":
            raise _FormulaError(f"unexpected {value!r} at character {at + 1}")
        nxt = self.peek()
        if nxt and nxt[1] == "(":
            if value not in FORMULA_FUNCTIONS:
                raise _FormulaError(f"unknown function {value!r} at character {at + 1} (functions: "
                                    f"{', '.join(FORMULA_FUNCTIONS)})")
            self.i += 1
            n = 0
            if (t := self.peek()) and t[1] == ")":
                self.i += 1
            else:
                while True:
                    self.expr()
                    n += 1
                    if (t := self.peek()) and t[1] == ",":
                        self.i += 1
                        continue
                    self.take(")")
                    break
            low, high = FORMULA_FUNCTIONS[value]
            if n < low or (high is not None and n > high):
                want = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
                raise _FormulaError(f"{value}() takes {want} argument(s), given {n}, at character {at + 1}")
            return
        if value in FORMULA_FUNCTIONS:
            raise _FormulaError(f"{value!r} at character {at + 1} is a function: write {value}(...)")
        if value not in self.names:
            known = ", ".join(self.names) or "none"
            raise _FormulaError(f"{value!r} at character {at + 1} is not one of the graders (their keys: {known})")
        self.used.add(value)


class _FormulaError(Exception):
    pass


# -- small helpers ---------------------------------------------------------------------------------

def _template_strings(g: Any) -> Iterable[str]:
    """Every string of a grader that may hold templates (not python source, names or models)."""
    if type(g) is not dict:
        return
    kind = g.get("type")
    if kind in ("string_check", "text_similarity"):
        for key in ("input", "reference"):
            if type(g.get(key)) is str:
                yield g[key]
    elif kind in ("score_model", "label_model"):
        msgs = g.get("input")
        for m in msgs if type(msgs) is list else ():
            c = m.get("content") if type(m) is dict else None
            for part in (c if type(c) is list else [c]):
                if type(part) is str:
                    yield part
                elif type(part) is dict:
                    for key in ("text", "image_url"):
                        if type(part.get(key)) is str:
                            yield part[key]
    elif kind == "multi":
        graders = g.get("graders")
        if type(graders) is dict:
            subs = [graders] if type(graders.get("type")) is str else list(graders.values())
            for sub in subs:
                yield from _template_strings(sub)


def _schema_holder(rf: Mapping[str, Any], path: str) -> tuple[Mapping[str, Any], str]:
    if type(rf.get("json_schema")) is dict:
        return rf["json_schema"], f"{path}.json_schema"
    return rf, path


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) and not (type(v) is float and not math.isfinite(v))


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _short(value: Any, limit: int = 48) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
