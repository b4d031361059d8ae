"""Small datasets for the validator's tests, written by the tests themselves."""
from __future__ import annotations

import copy
from typing import Any, Iterable

import orjson

from shared.validation import ValidationReport, validate

CHAT_MODEL = "gpt-4o-mini-2024-07-18"
VISION_MODEL = "gpt-4o-2024-08-06"
DPO_MODEL = "gpt-4o-2024-08-06"
COMPLETION_MODEL = "babbage-002"
SMALL_MODEL = "gpt-35-turbo-0613"  # 4,096 tokens per example
RFT_MODEL = "o4-mini-2025-04-16"

# A reinforcement grader reading two extra fields of each example.
RFT_GRADER = {"type": "string_check", "name": "answer", "operation": "eq",
              "input": "{{ sample.output_text }}", "reference": "{{ item.reference_answer }}"}

SYSTEM = {"role": "system", "content": "You are Contoso's support assistant. Answer briefly."}


def chat(i: int = 0) -> dict[str, Any]:
    return {"messages": [SYSTEM, {"role": "user", "content": f"Where is my order {i}?"},
                         {"role": "assistant", "content": f"Order {i} ships tomorrow."}]}


def multi_turn(i: int = 0) -> dict[str, Any]:
    return {"messages": [
        SYSTEM,
        {"role": "user", "content": f"Hi, I need help with order {i}."},
        {"role": "assistant", "content": "Sure, what is wrong?", "weight": 0},
        {"role": "user", "content": "It arrived broken."},
        {"role": "assistant", "content": f"Sorry! A replacement for order {i} is on its way.", "weight": 1},
    ]}


def tool_chat(i: int = 0) -> dict[str, Any]:
    return {
        "tools": [{"type": "function", "function": {
            "name": "get_order", "description": "Look an order up",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}}],
        "messages": [
            SYSTEM,
            {"role": "user", "content": f"Status of order {i}?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": "get_order", "arguments": orjson.dumps({"id": str(i)}).decode()}}]},
            {"role": "tool", "tool_call_id": f"call_{i}", "content": '{"status": "shipped"}'},
            {"role": "assistant", "content": f"Order {i} has shipped."},
        ],
    }


def completion(i: int = 0) -> dict[str, Any]:
    return {"prompt": f"Order {i} status ->", "completion": f" shipped {i}\n"}


def dpo(i: int = 0) -> dict[str, Any]:
    return {
        "input": {"messages": [SYSTEM, {"role": "user", "content": f"Where is order {i}?"}]},
        "preferred_output": [{"role": "assistant", "content": f"Order {i} ships tomorrow."}],
        "non_preferred_output": [{"role": "assistant", "content": "No idea."}],
    }


def rft(i: int = 0) -> dict[str, Any]:
    """A reinforcement example: instructions, a question, and what the grader needs."""
    return {"messages": [{"role": "developer", "content": "Answer with the order's status only."},
                         {"role": "user", "content": f"What is the status of order {i}?"}],
            "reference_answer": "shipped" if i % 2 else "pending", "order": {"id": i, "lines": [1, 2]}}


def dumps(obj: Any) -> bytes:
    return obj if isinstance(obj, (bytes, bytearray)) else orjson.dumps(obj)


def jsonl(objs: Iterable[Any], *, newline: bytes = b"\n", end: bytes = b"\n") -> bytes:
    return newline.join(dumps(o) for o in objs) + end


def dataset(make=chat, n: int = 12, *, replace: dict[int, Any] | None = None, end: bytes = b"\n",
            newline: bytes = b"\n") -> bytes:
    """``n`` good examples, line k (1-based) replaced by ``replace[k]`` (an object or raw bytes)."""
    lines: list[Any] = [make(i) for i in range(1, n + 1)]
    for k, v in (replace or {}).items():
        lines[k - 1] = v
    return jsonl(lines, newline=newline, end=end)


def mutate(obj: dict[str, Any], fn) -> dict[str, Any]:
    o = copy.deepcopy(obj)
    fn(o)
    return o


def run(data: bytes, model: str = CHAT_MODEL, **kw: Any) -> ValidationReport:
    return validate(data, model=model, **kw)


def codes_at(report: ValidationReport, kind: str = "errors") -> list[tuple[int | None, str]]:
    return [(i.line, i.code) for i in getattr(report, kind)]
