"""Graders and the reinforcement fine-tuning (RFT) method: what a request may say, what the
service refuses, and how a simulated run scores.

The shapes come from the installed ``openai`` SDK's request types (``openai.types.graders``,
``fine_tuning.reinforcement_*_param``, ``fine_tuning.alpha.grader_validate_params``), turned into
JSON schemas by :mod:`.sdk_schemas`. Where Azure's or OpenAI's documentation says more than the
SDK types, the documented shape is added (each addition is listed in ``README.md``, *Guesses*):

* a multigrader's ``graders`` is a map of names to graders (the guides' and Azure's examples;
  ``calculate_output`` refers to the names), not the single grader the SDK's type says;
* the ``endpoint`` grader (Azure private preview: ``url``, optional ``name``, ``headers``,
  ``rate_limit``, ``pass_threshold``), which the SDK does not have;
* ``pass_threshold`` on ``text_similarity`` and ``score_model`` (Azure's grader reference);
* ``method.reinforcement.response_format`` (chat completions' ``response_format``; the flat
  ``{"type": "json_schema", "name", "schema", "strict"}`` of Azure's page is accepted too),
  ``tools`` and ``max_episode_steps`` (Azure's agentic RFT preview).

After the schema, :func:`check_grader` applies the service's documented rules: a python grader's
``source`` is at most 256 KB, parses, and defines ``grade(sample, item)``; a multigrader's
``calculate_output`` uses only its graders' names, numbers, ``+ - * / ^`` and ``min max abs floor
ceil exp sqrt log``; template variables (``{{ sample.output_text }}``) are in the ``sample`` or
``item`` namespace; model graders use a grader model Azure lists; a label model's
``passing_labels`` are among its ``labels``; a score model's ``range`` is two increasing numbers.
"""
from __future__ import annotations

import ast
import json
import math
import random
import re
import typing
from typing import Any, Optional

import jsonschema
from openai.types.fine_tuning.alpha.grader_validate_params import GraderValidateParams
from openai.types.fine_tuning.reinforcement_hyperparameters_param import ReinforcementHyperparametersParam
from openai.types.fine_tuning.reinforcement_method_param import ReinforcementMethodParam
from openai.types.graders.label_model_grader_param import LabelModelGraderParam
from openai.types.graders.multi_grader_param import MultiGraderParam
from openai.types.graders.python_grader_param import PythonGraderParam
from openai.types.graders.score_model_grader_param import ScoreModelGraderParam
from openai.types.graders.string_check_grader_param import StringCheckGraderParam
from openai.types.graders.text_similarity_grader_param import TextSimilarityGraderParam
from openai.types.shared_params import ResponseFormatJSONObject, ResponseFormatJSONSchema, ResponseFormatText

from .catalog import GRADER_MODELS
from .sdk_schemas import DISCRIMINATED, discriminated, discriminated_keyword, schema_of

__all__ = ["GraderProblem", "GRADER_SCHEMA", "RFT_METHOD_SCHEMA", "RFT_BODY_SCHEMA", "VALIDATE_BODY_SCHEMA", "check_body",
           "check_grader", "MAX_PYTHON_SOURCE_BYTES", "FORMULA_FUNCTIONS", "grader_parts", "reward_metrics",
           "evaluate_formula"]

MAX_PYTHON_SOURCE_BYTES = 256 * 1024
FORMULA_FUNCTIONS = {"min": min, "max": max, "abs": abs, "floor": math.floor, "ceil": math.ceil, "exp": math.exp,
                     "sqrt": math.sqrt, "log": math.log}
TEMPLATE_NAMESPACES = ("sample", "item")


class GraderProblem(ValueError):
    """A grader (or RFT method) the service refuses: ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --------------------------------------------------------------------------- schemas


def _with(schema: dict, **extra: dict) -> dict:
    out = dict(schema)
    out["properties"] = {**schema.get("properties", {}), **extra}
    return out


def _type_values(tp: Any) -> list[str]:
    """The ``type`` literals of a Union of grader TypedDicts (in the SDK's order)."""
    tp = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Required else tp
    out = []
    for member in typing.get_args(tp):
        hint = typing.get_type_hints(member, include_extras=True)["type"]
        while typing.get_origin(hint) is typing.Required:
            hint = typing.get_args(hint)[0]
        out.append(typing.get_args(hint)[0])
    return out


_LEAVES: dict[str, dict] = {
    "string_check": schema_of(StringCheckGraderParam),
    "text_similarity": _with(schema_of(TextSimilarityGraderParam), pass_threshold={"type": "number"}),
    "python": schema_of(PythonGraderParam),
    "score_model": _with(schema_of(ScoreModelGraderParam), pass_threshold={"type": "number"}),
    "label_model": schema_of(LabelModelGraderParam),
}
# Not in the SDK: Azure's private-preview endpoint grader (its Foundry sample's shape).
_ENDPOINT = {"type": "object", "required": ["type", "url"],
             "properties": {"type": {"type": "string", "enum": ["endpoint"]}, "name": {"type": "string"},
                            "url": {"type": "string", "minLength": 1},
                            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                            "rate_limit": {"type": "integer", "minimum": 1},
                            "pass_threshold": {"type": "number"}}}
_SUB_TYPES = _type_values(typing.get_type_hints(MultiGraderParam, include_extras=True)["graders"])
_MULTI = _with(schema_of(MultiGraderParam),
               graders={"type": "object", "minProperties": 1,
                        "additionalProperties": discriminated({t: _LEAVES[t] for t in _SUB_TYPES})})
_TOP_TYPES = _type_values(typing.get_type_hints(GraderValidateParams, include_extras=True)["grader"])
GRADER_SCHEMA = discriminated({**{t: (_MULTI if t == "multi" else _LEAVES[t]) for t in _TOP_TYPES},
                               "endpoint": _ENDPOINT})
VALIDATE_BODY_SCHEMA = {"type": "object", "required": ["grader"], "properties": {"grader": GRADER_SCHEMA}}

_SDK_FORMAT = schema_of(typing.Union[ResponseFormatText, ResponseFormatJSONObject, ResponseFormatJSONSchema])
_FLAT_JSON_SCHEMA = {"type": "object", "required": ["type", "name", "schema"],
                     "properties": {"type": {"enum": ["json_schema"]}, "name": {"type": "string"},
                                    "schema": {"type": "object"}, "strict": {"type": "boolean"},
                                    "description": {"type": "string"}}}
_RESPONSE_FORMAT = dict(_SDK_FORMAT)
_RESPONSE_FORMAT[DISCRIMINATED] = {
    **_SDK_FORMAT[DISCRIMINATED],
    "mapping": {**_SDK_FORMAT[DISCRIMINATED]["mapping"],
                "json_schema": {"anyOf": [_SDK_FORMAT[DISCRIMINATED]["mapping"]["json_schema"], _FLAT_JSON_SCHEMA]}}}
_TOOLS = {"type": "array", "items": {"type": "object", "required": ["name", "server_url"],
                                     "properties": {"name": {"type": "string", "minLength": 1},
                                                    "server_url": {"type": "string", "minLength": 1},
                                                    "headers": {"type": "object",
                                                                "additionalProperties": {"type": "string"}}}}}
_REINFORCEMENT = _with(schema_of(ReinforcementMethodParam), grader=GRADER_SCHEMA,
                       hyperparameters=schema_of(ReinforcementHyperparametersParam),
                       response_format=_RESPONSE_FORMAT, tools=_TOOLS,
                       max_episode_steps={"type": "integer", "minimum": 1})
# ``method`` of a job whose method type is "reinforcement": the object is required, as the
# published DpoMethodRequest requires "dpo" for type "dpo".
RFT_METHOD_SCHEMA = {"type": "object", "required": ["type", "reinforcement"],
                     "properties": {"type": {"type": "string", "enum": ["reinforcement"]},
                                    "reinforcement": _REINFORCEMENT}}

# A job-creation body whose method type is "reinforcement" (the rest of the body is the published
# description's business).
RFT_BODY_SCHEMA = {"type": "object", "properties": {"method": RFT_METHOD_SCHEMA}}

_Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {DISCRIMINATED: discriminated_keyword})
_VALIDATORS = {id(s): _Validator(s) for s in (VALIDATE_BODY_SCHEMA, RFT_BODY_SCHEMA)}


def check_body(schema: dict, body: Any) -> list:
    """The schema's errors for a request body (request_schemas picks the one to report)."""
    validator = _VALIDATORS.get(id(schema)) or _Validator(schema)
    return list(validator.iter_errors(body))


# --------------------------------------------------------------------------- the service's rules

_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def _templates(value: Any, field: str) -> None:
    if not isinstance(value, str):
        return
    for expr in _TEMPLATE.findall(value):
        namespace = re.split(r"[.\[\s]", expr, maxsplit=1)[0]
        if namespace not in TEMPLATE_NAMESPACES:
            raise GraderProblem(field, f"'{field}' refers to '{{{{ {expr} }}}}': template variables must be in "
                                       f"the 'sample' or 'item' namespace ({{{{ sample.output_text }}}}, "
                                       f"{{{{ item.<field> }}}}).")


def _message_templates(messages: Any, field: str) -> None:
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            _templates(content, f"{field}[{i}].content")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                text = part if isinstance(part, str) else part.get("text") if isinstance(part, dict) else None
                _templates(text, f"{field}[{i}].content[{j}]")


def _python(grader: dict, path: str) -> None:
    source = grader["source"]
    size = len(source.encode("utf-8"))
    if size > MAX_PYTHON_SOURCE_BYTES:
        raise GraderProblem(f"{path}.source", f"'{path}.source' is {size} bytes; the source of a python grader must "
                                              f"be at most 256 KB ({MAX_PYTHON_SOURCE_BYTES} bytes).")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise GraderProblem(f"{path}.source", f"'{path}.source' is not valid Python: {exc.msg} (line {exc.lineno}).") \
            from None
    grade = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "grade"),
                 None)
    positional = len(grade.args.posonlyargs) + len(grade.args.args) if grade is not None else 0
    if grade is None or (positional < 2 and grade.args.vararg is None):
        raise GraderProblem(f"{path}.source", f"'{path}.source' must define a function grade(sample, item) taking "
                                              "two positional arguments and returning a number.")


def _formula_names(formula: str, path: str) -> set[str]:
    field = f"{path}.calculate_output"
    try:
        tree = ast.parse(formula.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise GraderProblem(field, f"'{field}' is not a valid formula: {formula!r}.") from None
    names: set[str] = set()
    allowed_ops = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FORMULA_FUNCTIONS or node.keywords:
                raise GraderProblem(field, f"'{field}' calls an unknown function; the functions are "
                                           f"{', '.join(FORMULA_FUNCTIONS)}.")
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)):
            if not isinstance(node.op, allowed_ops):
                raise GraderProblem(field, f"'{field}' uses an operator that is not one of + - * / ^.")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise GraderProblem(field, f"'{field}' may hold only numbers, grader names, operators and functions.")
        elif not isinstance(node, (ast.Expression, ast.Load, *allowed_ops, ast.operator, ast.unaryop)):
            raise GraderProblem(field, f"'{field}' may hold only numbers, grader names, + - * / ^ and the "
                                       f"functions {', '.join(FORMULA_FUNCTIONS)}.")
    return names - set(FORMULA_FUNCTIONS)


def _model(grader: dict, path: str) -> None:
    if grader["model"] not in GRADER_MODELS:
        raise GraderProblem(f"{path}.model", f"'{path}.model' is '{grader['model']}', which cannot be used as a model "
                                             f"grader; use one of {', '.join(sorted(GRADER_MODELS))}.")
    _message_templates(grader.get("input"), f"{path}.input")


def check_grader(grader: dict, path: str = "grader") -> None:
    """The service's rules beyond the schema (call after the schema passed). Raises GraderProblem."""
    kind = grader["type"]
    if kind in ("string_check", "text_similarity"):
        _templates(grader.get("input"), f"{path}.input")
        _templates(grader.get("reference"), f"{path}.reference")
    elif kind == "python":
        _python(grader, path)
    elif kind == "score_model":
        _model(grader, path)
        if "range" in grader:
            r = list(grader["range"])
            if len(r) != 2 or not r[0] < r[1]:
                raise GraderProblem(f"{path}.range", f"'{path}.range' must be two numbers, the lowest and the highest "
                                                     f"score, the first smaller than the second; got {r}.")
    elif kind == "label_model":
        _model(grader, path)
        extra = [label for label in grader["passing_labels"] if label not in grader["labels"]]
        if extra:
            raise GraderProblem(f"{path}.passing_labels", f"'{path}.passing_labels' must be a subset of "
                                                          f"'{path}.labels'; {extra} are not labels.")
    elif kind == "endpoint":
        if not re.match(r"^https://[^\s/?#]+", grader["url"]):
            raise GraderProblem(f"{path}.url", f"'{path}.url' must be an https URL, got {grader['url']!r}.")
    elif kind == "multi":
        for key, sub in grader["graders"].items():
            check_grader(sub, f"{path}.graders.{key}")
        unknown = sorted(_formula_names(grader["calculate_output"], path) - set(grader["graders"]))
        if unknown:
            raise GraderProblem(f"{path}.calculate_output",
                                f"'{path}.calculate_output' uses {', '.join(map(repr, unknown))}, which "
                                f"{'is' if len(unknown) == 1 else 'are'} neither a grader of '{path}.graders' "
                                f"({', '.join(grader['graders'])}) nor a function ({', '.join(FORMULA_FUNCTIONS)}).")


# --------------------------------------------------------------------------- simulated scores


def grader_parts(grader: dict) -> list[tuple[str, str, dict]]:
    """(key, name, grader) of each grader that reports its own score: a multigrader's graders,
    else the grader itself (key: its name made an identifier)."""
    if grader.get("type") == "multi" and isinstance(grader.get("graders"), dict):
        return [(key, str(sub.get("name") or key), sub) for key, sub in grader["graders"].items()]
    name = str(grader.get("name") or grader.get("type") or "grader")
    return [(re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "grader", name, grader)]


def evaluate_formula(formula: str, scores: dict[str, float]) -> Optional[float]:
    """``calculate_output`` on these scores, or None when it cannot be computed."""
    try:
        tree = ast.parse(formula.replace("^", "**"), mode="eval")

        def ev(node):
            if isinstance(node, ast.Expression):
                return ev(node.body)
            if isinstance(node, ast.Constant):
                return float(node.value)
            if isinstance(node, ast.Name):
                return scores[node.id]
            if isinstance(node, ast.UnaryOp):
                return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
            if isinstance(node, ast.BinOp):
                a, b = ev(node.left), ev(node.right)
                ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                       ast.Div: lambda: a / b, ast.Pow: lambda: a ** b}
                return ops[type(node.op)]()
            if isinstance(node, ast.Call):
                return FORMULA_FUNCTIONS[node.func.id](*[ev(a) for a in node.args])
            raise ValueError(node)

        value = float(ev(tree))
        return value if math.isfinite(value) else None
    except Exception:
        return None


def _curve(rng: random.Random, base: random.Random, p: float, noise: float) -> float:
    start = 0.15 + 0.25 * base.random()
    end = min(0.97, start + 0.35 + 0.3 * base.random())
    return min(1.0, max(0.0, start + (end - start) * (1 - math.exp(-3.0 * p)) + rng.uniform(-noise, noise)))


def reward_metrics(job_id: str, seed: int, grader: dict, step: int, total: int, validate: bool) -> dict[str, Any]:
    """A simulated RFT step: overall and per-grader rewards rising with noise, reasoning tokens
    drifting. ``validate``: the step also ran the validation set (``valid_*`` values)."""
    p = step / max(1, total)
    out: dict[str, Any] = {"step": step}
    parts = grader_parts(grader)
    per: dict[str, dict[str, float]] = {}
    for key, _name, _sub in parts:
        base = random.Random(f"{job_id}:{seed}:{key}:base")
        train = _curve(random.Random(f"{job_id}:{seed}:{key}:{step}:t"), base, p, 0.08)
        base = random.Random(f"{job_id}:{seed}:{key}:base")
        valid = _curve(random.Random(f"{job_id}:{seed}:{key}:{step}:v"), base, p, 0.03)
        per[key] = {"train": round(train, 5), "valid": round(valid, 5)}
    if grader.get("type") == "multi" and isinstance(grader.get("calculate_output"), str):
        train = evaluate_formula(grader["calculate_output"], {k: v["train"] for k, v in per.items()})
        valid = evaluate_formula(grader["calculate_output"], {k: v["valid"] for k, v in per.items()})
    else:
        train = valid = None
    mean = lambda side: sum(v[side] for v in per.values()) / max(1, len(per))  # noqa: E731
    out["train_reward_mean"] = round(train if train is not None else mean("train"), 5)
    if validate:
        out["valid_reward_mean"] = round(valid if valid is not None else mean("valid"), 5)
    tokens = random.Random(f"{job_id}:{seed}:{step}:tokens")
    start = 1500 + 2500 * random.Random(f"{job_id}:{seed}:tokens").random()
    out["train_reasoning_tokens_mean"] = round(start * (1 - 0.35 * p) + tokens.uniform(-120, 120), 2)
    if validate:
        out["valid_reasoning_tokens_mean"] = round(start * (1 - 0.4 * p) + tokens.uniform(-60, 60), 2)
        out["full_valid_mean_parse_error"] = round(max(0.0, 0.08 * (1 - p) + tokens.uniform(-0.01, 0.01)), 5)
    out["per_grader"] = {key: {"name": name, "type": str(sub.get("type")),
                               "train_reward_mean": per[key]["train"],
                               **({"valid_reward_mean": per[key]["valid"]} if validate else {}),
                               **({"model": sub["model"]} if sub.get("model") else {})}
                         for key, name, sub in parts}
    return out


def event_data(m: dict[str, Any], total: int) -> dict[str, Any]:
    """The ``data`` of a metrics event, in the shape OpenAI documents for RFT (a subset)."""
    validate = "valid_reward_mean" in m
    graders = list(m["per_grader"].values())
    scores = {"graders": [{k: v for k, v in g.items() if k != "model"} for g in graders],
              "train_reward_mean": m["train_reward_mean"]}
    samples = {"train_reasoning_tokens_mean": m["train_reasoning_tokens_mean"]}
    errors = []
    for g in graders:
        e = {"name": g["name"], "type": g["type"], "train_other_error_mean": 0.0, "train_sample_parse_error_mean": 0.0,
             "train_invalid_variable_error_mean": 0.0}
        if validate:
            e.update(valid_other_error_mean=0.0, valid_sample_parse_error_mean=m["full_valid_mean_parse_error"],
                     valid_invalid_variable_error_mean=0.0)
        errors.append(e)
    data: dict[str, Any] = {"step": m["step"], "total_steps": total, "scores": scores,
                            "usage": {"samples": samples,
                                      "graders": [{"name": g["name"], "type": g["type"], "model": g["model"]}
                                                  for g in graders if "model" in g]},
                            "errors": {"graders": errors},
                            "train_mean_reward": m["train_reward_mean"],
                            "reasoning_tokens_mean": m["train_reasoning_tokens_mean"],
                            "mean_unresponsive_rewards": 0.0}
    if validate:
        scores["valid_reward_mean"] = m["valid_reward_mean"]
        samples["valid_reasoning_tokens_mean"] = m["valid_reasoning_tokens_mean"]
        data.update(full_valid_mean_reward=m["valid_reward_mean"],
                    full_valid_mean_parse_error=m["full_valid_mean_parse_error"],
                    valid_reasoning_tokens_mean=m["valid_reasoning_tokens_mean"])
    return data


def event_message(m: dict[str, Any], total: int) -> str:
    """OpenAI's RFT metrics message: ``Step 10/20 , train mean reward=0.42, full validation mean
    reward=0.68, full validation mean parse error=0.00``."""
    text = f"Step {m['step']}/{total} , train mean reward={m['train_reward_mean']:.2f}"
    if "valid_reward_mean" in m:
        text += (f", full validation mean reward={m['valid_reward_mean']:.2f}, full validation mean parse "
                 f"error={m['full_valid_mean_parse_error']:.2f}")
    return text


def checkpoint_metrics(m: dict[str, Any]) -> dict[str, float]:
    out = {"step": float(m["step"]), "train_reward_mean": m["train_reward_mean"],
           "train_reasoning_tokens_mean": m["train_reasoning_tokens_mean"]}
    if "valid_reward_mean" in m:
        out.update(valid_reward_mean=m["valid_reward_mean"], full_valid_mean_reward=m["valid_reward_mean"],
                   valid_reasoning_tokens_mean=m["valid_reasoning_tokens_mean"])
    return out


def results_columns(grader: dict) -> list[str]:
    cols = ["step", "train_reward_mean", "valid_reward_mean", "train_reasoning_tokens_mean",
            "valid_reasoning_tokens_mean", "full_valid_mean_parse_error"]
    for key, _name, _sub in grader_parts(grader):
        cols += [f"train_reward_mean_{key}", f"valid_reward_mean_{key}"]
    return cols


def results_row(m: dict[str, Any], grader: dict) -> list[str]:
    def cell(v: Any) -> str:
        return "" if v is None else json.dumps(v) if not isinstance(v, str) else v

    row = [str(m["step"]), cell(m["train_reward_mean"]), cell(m.get("valid_reward_mean")),
           cell(m["train_reasoning_tokens_mean"]), cell(m.get("valid_reasoning_tokens_mean")),
           cell(m.get("full_valid_mean_parse_error"))]
    for key, _name, _sub in grader_parts(grader):
        g = m["per_grader"][key]
        row += [cell(g["train_reward_mean"]), cell(g.get("valid_reward_mean"))]
    return row
