"""Per-example rules: chat (supervised), prompt/completion, preference (DPO) and reinforcement
(RFT) examples.

Each checker takes one parsed line (a dict) and raises :class:`Bad` for the
first problem it finds, with a message that says what to fix. On success it
returns a :data:`Summary` tuple with what the statistics need:

``(chars, assistant_chars, overhead, assistant_overhead, system, warnings, image_tokens)``

- ``chars``: characters of the text a token count covers (``assistant_chars``:
  of the trainable assistant messages); the validator turns them into a cheap
  token estimate with the UTF-8 bytes per character it samples;
- ``overhead``: the tokens that are not text (3 per message plus the role, 3 per
  tool call, 1 per name, the reply priming, images; ``tools`` at 4 bytes a token);
- ``system``: the example's first system message, for the consistency warnings;
- ``warnings``: ``[(code, message), ...]`` or None;
- ``image_tokens``: the flat per-image figure times the images.

The common chat example (only ``role`` and ``content`` strings) takes a fast
path of a few operations per message; anything else takes the full walk,
which owns the error messages. Message numbers count from 1 within the
example's ``messages`` list ("assistant message 2" is the second message of
the list, an assistant one).

Images (content parts ``image_url``, for models with vision fine-tuning only):
in user messages only, at most 64 per example, ``detail`` low/high/auto, inline
``data:`` images JPEG/PNG/WEBP of at most 10 MB in RGB/RGBA (:mod:`.images`).

Reinforcement examples (:func:`check_rft`): ``messages`` (developer, system,
user, assistant and tool messages) ending with a user message, optional
``tools``; every other top-level field reaches the grader as ``item.<field>``,
and each field the grader reads (``Ctx.item_paths``) must be there.
"""
from __future__ import annotations

import types
from typing import Any, Optional, Tuple

import orjson

from ..catalogue import ModelInfo
from .images import check_data_uri, vision_limits
from ..tokens import (IMAGE_TOKENS_ESTIMATE, TOKENS_PER_MESSAGE, TOKENS_PER_NAME, TOKENS_PER_TOOL_CALL,
                      TOKENS_REPLY_PRIMING, count_chat_tokens, count_message_tokens, count_tokens, token_bound)

__all__ = ["Bad", "Ctx", "Summary", "check_chat", "check_completion", "check_dpo", "check_rft", "count_example",
           "pair_bound", "text_sizes", "utf8_bound"]

Summary = Tuple[int, int, int, int, Optional[str], Optional[list], int]

ROLES = frozenset(("system", "user", "assistant", "tool"))
LEGACY_ROLES = frozenset(("function",))
RFT_ROLES = frozenset(("developer", "system", "user", "assistant", "tool"))  # the API's, plus system (disputed)
_ROLE_TEXT = "system, user, assistant or tool"
RFT_RESERVED = frozenset(("messages", "tools"))
MESSAGE_KEYS = frozenset(("role", "content", "name", "weight", "tool_calls", "tool_call_id",
                          "function_call", "refusal"))
CHAT_KEYS = frozenset(("messages", "tools", "parallel_tool_calls", "functions"))
COMPLETION_KEYS = frozenset(("prompt", "completion"))
DPO_KEYS = frozenset(("input", "preferred_output", "non_preferred_output"))
DPO_INPUT_KEYS = frozenset(("messages", "tools", "parallel_tool_calls", "functions"))
IMAGE_PART_TYPES = frozenset(("image_url",))
_PER_MESSAGE = TOKENS_PER_MESSAGE + 1  # overhead + the role's token (each role is one token)


class Bad(Exception):
    """The example breaks a rule (code from ``codes.CODES``, message for a person)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _jtype(value: Any) -> str:
    """What a JSON value is, for a message ("a string", "an empty string", "a list" …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: Any, limit: int = 40) -> str:
    try:
        text = orjson.dumps(value).decode("utf-8")
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Ctx:
    """What the checkers share across one run."""

    __slots__ = ("info", "tools", "tools_bytes", "item_paths", "common_fields")

    def __init__(self, info: ModelInfo, item_paths: Any = ()):
        self.info = info
        # Reinforcement: the {{item.<path>}} the grader reads, as tuples of keys.
        self.item_paths: tuple[tuple[str, ...], ...] = tuple(item_paths)
        # Reinforcement: the top-level fields (for the grader) that every valid example so far has.
        self.common_fields: set[str] | None = None
        # The last valid tools / functions definitions and their JSON size: a dataset usually
        # repeats the same definitions on every line, and comparing is cheaper than checking.
        self.tools: tuple[Any, Any] | None = None
        self.tools_bytes = 0


class _Walk:
    """What a walk over a list of messages found."""

    __slots__ = ("chars", "nmsg", "extra", "achars", "amsg", "aextra", "assistants", "trainable",
                 "system", "last_role", "img", "warnings")

    def __init__(self, warnings: list | None) -> None:
        self.chars = self.nmsg = self.extra = self.img = 0
        self.achars = self.amsg = self.aextra = 0
        self.assistants = self.trainable = 0
        self.system: str | None = None
        self.last_role: str | None = None
        self.warnings = warnings

    def warn(self, code: str, message: str) -> None:
        if self.warnings is None:
            self.warnings = []
        self.warnings.append((code, message))

    @property
    def overhead(self) -> int:
        return _PER_MESSAGE * self.nmsg + self.extra

    @property
    def assistant_overhead(self) -> int:
        return _PER_MESSAGE * self.amsg + self.aextra


def _content(i: int, role: str, content: Any, info: ModelInfo, where: str) -> tuple[int, int]:
    """Checks a message's content; returns (characters of its text, image tokens)."""
    if type(content) is str:
        return len(content), 0
    if type(content) is list:
        if not content:
            raise Bad("empty_content", f"{where}{role} message {i} has an empty content list; "
                                       f"write the message's text")
        chars = images = 0
        for j, part in enumerate(content, 1):
            if type(part) is not dict:
                raise Bad("invalid_content_part", f"{where}{role} message {i}, content part {j} is "
                                                  f"{_jtype(part)}; a part must be an object such as "
                                                  f'{{"type": "text", "text": "..."}}')
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if type(text) is not str:
                    raise Bad("invalid_content_part", f'{where}{role} message {i}, content part {j} has '
                                                      f'"type": "text" but "text" is {_jtype(text)}; '
                                                      f"it must be a string")
                chars += len(text)
            elif kind in IMAGE_PART_TYPES:
                if role != "user":
                    raise Bad("images_not_supported", f"{where}{role} message {i} has an image; "
                                                      f"images are allowed in user messages only")
                if not info.supports_images:
                    raise Bad("images_not_supported", f"{where}{role} message {i} has an image, but "
                                                      f"{info.name} has no image (vision) fine-tuning; "
                                                      f"remove the image or use a model that takes images")
                image = part.get("image_url")
                url = image.get("url") if type(image) is dict else None
                if type(url) is not str or not url.startswith(("https://", "http://", "data:")):
                    raise Bad("invalid_content_part", f'{where}{role} message {i}, content part {j}: '
                                                      f'"image_url" must be {{"url": "https://..." or '
                                                      f'"data:image/...;base64,..."}}')
                if len(image) > 1 and "detail" in image and image["detail"] not in vision_limits().detail:
                    raise Bad("invalid_image_detail", f'{where}{role} message {i}, content part {j} has "detail": '
                                                      f'{_short(image["detail"])}; use '
                                                      f'{", ".join(map(repr, vision_limits().detail))} or leave it out')
                if url[:5] == "data:":
                    problem = check_data_uri(url)
                    if problem:
                        raise Bad(problem[0], f"{where}{role} message {i}, content part {j}: {problem[1]}")
                images += 1
            else:
                raise Bad("invalid_content_part", f'{where}{role} message {i}, content part {j} has "type": '
                                                  f'{_short(kind)}; use "text" (or "image_url" in user '
                                                  f"messages)")
        return chars, images * IMAGE_TOKENS_ESTIMATE
    raise Bad("invalid_content", f'{where}{role} message {i} has "content" of {_jtype(content)}; it must '
                                 f"be a string or a list of content parts")


def _tool_call(call: Any, i: int, j: int, where: str) -> tuple[str, int]:
    """Checks one tool call; returns (its id, characters of its name and arguments)."""
    if type(call) is not dict:
        raise Bad("invalid_tool_call", f"{where}assistant message {i}, tool call {j} is {_jtype(call)}, "
                                       f"not an object")
    cid = call.get("id")
    if type(cid) is not str or not cid:
        raise Bad("invalid_tool_call", f'{where}assistant message {i}, tool call {j} has no "id" (a string '
                                       f'that the tool message quotes as "tool_call_id")')
    if call.get("type") != "function":
        raise Bad("invalid_tool_call", f'{where}assistant message {i}, tool call {j} has "type": '
                                       f'{_short(call.get("type"))}; it must be "function"')
    fn = call.get("function")
    if type(fn) is not dict:
        raise Bad("invalid_tool_call", f'{where}assistant message {i}, tool call {j} has no "function" '
                                       f'object with "name" and "arguments"')
    return cid, _function(fn, f"{where}assistant message {i}, tool call {j}")


def _function(fn: dict, label: str) -> int:
    name = fn.get("name")
    if type(name) is not str or not name:
        raise Bad("invalid_tool_call", f'{label} has no function "name"')
    args = fn.get("arguments")
    if type(args) is not str:
        raise Bad("invalid_tool_arguments", f'{label} ({name}): "arguments" is {_jtype(args)}; it must be '
                                            f'a string holding JSON, e.g. "{{\\"city\\": \\"Paris\\"}}"')
    try:
        orjson.loads(args)
    except orjson.JSONDecodeError as exc:
        raise Bad("invalid_tool_arguments", f'{label} ({name}): "arguments" is not valid JSON '
                                            f"({exc}): {_short(args)}") from None
    return len(name) + len(args)


def _weight(m: dict, i: int, role: str, where: str) -> int:
    w = m["weight"]
    if role != "assistant":
        raise Bad("weight_not_allowed", f'{where}{role} message {i} has "weight"; only assistant messages '
                                        f"take a weight (0 or 1)")
    if type(w) is bool or type(w) not in (int, float) or w not in (0, 1):
        raise Bad("invalid_weight", f'{where}assistant message {i} has "weight": {_short(w)}; weight must '
                                    f"be 0 or 1")
    return int(w)


def walk_messages(msgs: Any, info: ModelInfo, w: _Walk, *, where: str = "",
                  only_assistant: str | None = None) -> _Walk:
    """Checks a list of chat messages into ``w``; ``only_assistant`` names a DPO output list.
    (:func:`walk_rft_messages` is the same code with reinforcement fine-tuning's roles.)"""
    key = only_assistant or "messages"
    if type(msgs) is not list:
        code = "messages_not_list" if only_assistant is None else f"invalid_{only_assistant}"
        raise Bad(code, f'{where}"{key}" is {_jtype(msgs)}; it must be a list of messages')
    if not msgs:
        code = "empty_messages" if only_assistant is None else f"invalid_{only_assistant}"
        raise Bad(code, f'{where}"{key}" is an empty list; add the messages')
    t_chars, t_achars, t_nmsg, t_amsg, t_extra, t_aextra, t_img = (w.chars, w.achars, w.nmsg, w.amsg, w.extra,
                                                                   w.aextra, w.img)
    t_assist, t_train, t_system, t_last = w.assistants, w.trainable, w.system, w.last_role
    open_calls: dict[str, int] | None = None
    plain = only_assistant is None
    i = 0
    for m in msgs:
        i += 1
        if plain and type(m) is dict:
            # The common messages take short branches with the full walk's outcome; anything
            # unusual (or wrong) falls through to the full walk below, which owns the errors.
            if len(m) == 2 and not open_calls:
                # a plain {"role": ..., "content": "text"} message, as in check_chat's fast path
                content = m.get("content")
                role = m.get("role")
                if type(content) is str and content:
                    if role == "user":
                        t_chars += len(content)
                        t_nmsg += 1
                        t_last = role
                        continue
                    if role == "assistant":
                        t_chars += len(content)
                        t_achars += len(content)
                        t_assist += 1
                        t_train += 1
                        t_amsg += 1
                        t_nmsg += 1
                        t_last = role
                        continue
                    if role == "system":
                        if t_system is None:
                            t_system = content
                        t_chars += len(content)
                        t_nmsg += 1
                        t_last = role
                        continue
            if open_calls:
                # {"role": "tool", "tool_call_id": <an open call>, "content": "text"}
                if len(m) == 3 and m.get("role") == "tool":
                    cid = m.get("tool_call_id")
                    content = m.get("content")
                    if type(content) is str and type(cid) is str and cid in open_calls:
                        del open_calls[cid]
                        t_chars += len(cid) + len(content)
                        t_nmsg += 1
                        t_last = "tool"
                        continue
            elif m.get("role") == "assistant":
                # {"role": "assistant", "tool_calls": [...]} with "content": null or no content
                calls = m.get("tool_calls")
                if type(calls) is list and calls and info.supports_tools and (
                        len(m) == 2 or (len(m) == 3 and "content" in m and m["content"] is None)):
                    open_calls = {}
                    chars = j = 0
                    for call in calls:
                        j += 1
                        cid, n = _tool_call(call, i, j, where)
                        open_calls[cid] = i
                        chars += n
                    extra = TOKENS_PER_TOOL_CALL * j
                    t_assist += 1
                    t_train += 1
                    t_achars += chars
                    t_amsg += 1
                    t_aextra += extra
                    t_chars += chars
                    t_extra += extra
                    t_nmsg += 1
                    t_last = "assistant"
                    continue
        if type(m) is not dict:
            raise Bad("message_not_object", f"{where}message {i} of \"{key}\" is {_jtype(m)}; write it as "
                                            f'{{"role": "...", "content": "..."}}')
        role = m.get("role")
        if role is None:
            raise Bad("missing_role", f'{where}message {i} has no "role"; use {_ROLE_TEXT}')
        if type(role) is not str or (role not in ROLES and role not in LEGACY_ROLES):
            raise Bad("invalid_role", f'{where}message {i} has "role": {_short(role)}; use {_ROLE_TEXT}')
        if only_assistant is not None and role != "assistant":
            raise Bad(f"invalid_{only_assistant}", f'{where}"{only_assistant}" message {i} has role '
                                                  f'{_short(role)}; it must hold assistant messages only')
        if open_calls and role != "tool":
            pending = ", ".join(sorted(open_calls))
            raise Bad("unanswered_tool_call", f"{where}{role} message {i} comes before tool call(s) {pending} "
                                              f"of assistant message {max(open_calls.values())} were "
                                              f'answered; add a "tool" message with "tool_call_id" for each call')
        if not MESSAGE_KEYS.issuperset(m):
            unknown = sorted(str(k) for k in m if k not in MESSAGE_KEYS)
            w.warn("unknown_key", f"{where}{role} message {i} has unknown key(s) {', '.join(unknown)}")
        weight = _weight(m, i, role, where) if "weight" in m else 1
        chars = extra = img = 0
        name = m.get("name")
        if name is not None:
            if type(name) is not str or not name:
                raise Bad("invalid_name", f'{where}{role} message {i} has "name": {_short(name)}; it must be '
                                          f"a non-empty string")
            chars += len(name)
            extra += TOKENS_PER_NAME
        content = m.get("content")
        if role == "assistant":
            calls = m.get("tool_calls")
            fcall = m.get("function_call")
            if calls is not None:
                if type(calls) is not list or not calls:
                    raise Bad("invalid_tool_calls", f'{where}assistant message {i} has "tool_calls": '
                                                    f"{_short(calls)}; it must be a non-empty list of calls")
                if not info.supports_tools:
                    raise Bad("tools_not_supported", f"{where}assistant message {i} calls tools, but "
                                                     f"{info.name} has no tool-calling fine-tuning")
                open_calls = {}
                for j, call in enumerate(calls, 1):
                    cid, n = _tool_call(call, i, j, where)
                    open_calls[cid] = i
                    chars += n
                    extra += TOKENS_PER_TOOL_CALL
            if fcall is not None:
                if type(fcall) is not dict:
                    raise Bad("invalid_tool_call", f'{where}assistant message {i} has "function_call" of '
                                                   f"{_jtype(fcall)}; it must be an object with name and "
                                                   f"arguments")
                chars += _function(fcall, f"{where}assistant message {i}, function_call")
                extra += TOKENS_PER_TOOL_CALL
                w.warn("deprecated_function_calling", f'{where}assistant message {i} uses the deprecated '
                                                      f'"function_call"; use "tool_calls"')
            if content is None:
                if calls is None and fcall is None:
                    raise Bad("missing_content", f'{where}assistant message {i} has no "content" and no '
                                                 f'"tool_calls"; write the answer to learn')
            else:
                n, img = _content(i, role, content, info, where)
                if n == 0 and img == 0 and calls is None and fcall is None:
                    raise Bad("empty_content", f'{where}assistant message {i} has empty "content"; write '
                                               f"the answer to learn, or remove the message")
                chars += n
            t_assist += 1
            if weight:
                t_train += 1
                t_achars += chars
                t_amsg += 1
                t_aextra += extra + img
        elif role == "tool":
            if m.get("tool_calls") is not None:
                raise Bad("invalid_tool_calls", f'{where}tool message {i} has "tool_calls"; only assistant '
                                                f"messages make tool calls")
            cid = m.get("tool_call_id")
            if type(cid) is not str or not cid:
                raise Bad("missing_tool_call_id", f'{where}tool message {i} has no "tool_call_id"; give the '
                                                  f'"id" of the tool call it answers')
            if not open_calls or cid not in open_calls:
                opened = ", ".join(sorted(open_calls)) if open_calls else "none"
                raise Bad("unmatched_tool_message", f'{where}tool message {i} answers "tool_call_id": '
                                                    f"{_short(cid)}, which no earlier assistant tool call of "
                                                    f"this example made (open calls: {opened})")
            del open_calls[cid]
            chars += len(cid)
            if content is None:
                raise Bad("missing_content", f'{where}tool message {i} has no "content"; give the tool\'s '
                                             f"result")
            n, img = _content(i, role, content, info, where)
            chars += n
        else:  # system, user, developer (reinforcement), legacy function
            if m.get("tool_calls") is not None:
                raise Bad("invalid_tool_calls", f'{where}{role} message {i} has "tool_calls"; only assistant '
                                                f"messages make tool calls")
            if role == "function":
                w.warn("deprecated_function_calling", f'{where}message {i} uses the deprecated role '
                                                      f'"function"; use role "tool"')
            if content is None:
                raise Bad("missing_content", f'{where}{role} message {i} has no "content"')
            n, img = _content(i, role, content, info, where)
            if n == 0 and img == 0:
                raise Bad("empty_content", f'{where}{role} message {i} has empty "content"; write its text '
                                           f"or remove the message")
            chars += n
            if role == "system" and t_system is None:
                t_system = content if type(content) is str else orjson.dumps(content).decode("utf-8")
        t_chars += chars
        t_extra += extra + img
        if img:
            t_img += img
            if t_img > _MAX_IMAGE_TOKENS:
                raise Bad("too_many_images", f"{where}{role} message {i} brings the example's images to "
                                             f"{t_img // IMAGE_TOKENS_ESTIMATE}; an example may have at most "
                                             f"{_MAX_IMAGES}: split it or remove images")
        t_nmsg += 1
        t_last = role
    w.chars, w.achars, w.nmsg, w.amsg, w.extra, w.aextra, w.img = (t_chars, t_achars, t_nmsg, t_amsg, t_extra,
                                                                   t_aextra, t_img)
    w.assistants, w.trainable, w.system, w.last_role = t_assist, t_train, t_system, t_last
    if open_calls and t_last == "tool":
        pending = ", ".join(sorted(open_calls))
        raise Bad("unanswered_tool_call", f"{where}tool call(s) {pending} of assistant message "
                                          f"{max(open_calls.values())} have no tool message")
    return w


_MAX_IMAGES = vision_limits().max_images_per_example
_MAX_IMAGE_TOKENS = _MAX_IMAGES * IMAGE_TOKENS_ESTIMATE


def _tools(obj: dict, info: ModelInfo, w: _Walk, where: str = "") -> int:
    """Checks ``tools`` / legacy ``functions``; returns the bytes of their compact JSON."""
    n = 0
    tools = obj.get("tools")
    if tools is not None:
        if type(tools) is not list:
            raise Bad("invalid_tools", f'{where}"tools" is {_jtype(tools)}; it must be a list of '
                                       f'{{"type": "function", "function": {{"name": ...}}}}')
        if tools and not info.supports_tools:
            raise Bad("tools_not_supported", f"{where}the example defines tools, but {info.name} has no "
                                             f"tool-calling fine-tuning")
        for k, tool in enumerate(tools, 1):
            fn = tool.get("function") if type(tool) is dict else None
            if type(tool) is not dict or tool.get("type") != "function" or type(fn) is not dict \
                    or type(fn.get("name")) is not str or not fn.get("name"):
                raise Bad("invalid_tools", f'{where}tool {k} of "tools" must be {{"type": "function", '
                                           f'"function": {{"name": "...", "parameters": {{...}}}}}}')
        n += len(orjson.dumps(tools))
    functions = obj.get("functions")
    if functions is not None:
        if type(functions) is not list or any(type(f) is not dict or type(f.get("name")) is not str
                                              for f in functions):
            raise Bad("invalid_tools", f'{where}"functions" must be a list of {{"name": "...", '
                                       f'"parameters": {{...}}}}')
        w.warn("deprecated_function_calling", f'{where}the example uses the deprecated "functions"; use "tools"')
        n += len(orjson.dumps(functions))
    return n


def _unknown_top(obj: dict, allowed: frozenset, w: _Walk, where: str = "") -> None:
    if not allowed.issuperset(obj):
        unknown = sorted(str(k) for k in obj if k not in allowed)
        w.warn("unknown_key", f"{where}unknown key(s) {', '.join(unknown)}")


def _wrong_format_chat(obj: dict, info: ModelInfo) -> Bad:
    if "prompt" in obj or "completion" in obj:
        return Bad("wrong_format", f"the example has prompt/completion, the format of babbage-002 and "
                                   f'davinci-002; {info.name} needs {{"messages": [...]}}')
    if "input" in obj and ("preferred_output" in obj or "non_preferred_output" in obj):
        return Bad("wrong_format", "the example is a preference (DPO) pair; validate it with method dpo, or "
                                   'write {"messages": [...]} for supervised training')
    keys = ", ".join(sorted(str(k) for k in obj)[:8]) or "none"
    return Bad("missing_messages", f'the example has no "messages" (its keys: {keys})')


def check_chat(obj: dict, ctx: Ctx) -> Summary:
    """A supervised chat example: ``{"messages": [...], "tools": [...]?}``."""
    msgs = obj.get("messages")
    if msgs is None:
        raise _wrong_format_chat(obj, ctx.info)
    # Fast path, for the common example: only "messages", each exactly {"role", "content"} with role
    # system/user/assistant and non-empty text (an assistant message may also have an integer
    # "weight" of 0 or 1), at least one trained assistant message. Anything else (or any doubt: a
    # KeyError, an unhashable value) goes through the full walk below.
    if len(obj) == 1 and type(msgs) is list and msgs:
        chars = achars = nassist = 0
        system = role = None
        try:
            for m in msgs:
                c = m["content"]
                if type(c) is not str or not c:
                    break
                role = m["role"]
                if len(m) != 2:
                    if len(m) != 3 or role != "assistant":
                        break
                    weight = m["weight"]
                    if type(weight) is not int:
                        break
                    if weight == 0:  # not trained on: text of the example, not of its answers
                        chars += len(c)
                        continue
                    if weight != 1:
                        break
                if role == "assistant":
                    nassist += 1
                    achars += len(c)
                elif role == "user":
                    chars += len(c)
                elif role == "system":
                    if system is None:
                        system = c
                    chars += len(c)
                else:
                    break
            else:
                if nassist:
                    warnings = None if role == "assistant" else [(
                        "ends_without_assistant", f"the example ends with a {role} message; messages after "
                                                  f"the last assistant message are not trained on")]
                    return (chars + achars, achars, TOKENS_REPLY_PRIMING + _PER_MESSAGE * len(msgs),
                            _PER_MESSAGE * nassist, system, warnings, 0)
        except (KeyError, TypeError):
            pass
    w = _Walk(None)
    tool_bytes = 0
    if len(obj) > 1:
        _unknown_top(obj, CHAT_KEYS, w)
        if "tools" in obj or "functions" in obj:
            defs = (obj.get("tools"), obj.get("functions"))
            if defs == ctx.tools and defs[1] is None:
                tool_bytes = ctx.tools_bytes
            else:
                tool_bytes = _tools(obj, ctx.info, w)
                ctx.tools, ctx.tools_bytes = defs, tool_bytes
    walk_messages(msgs, ctx.info, w)
    if not w.assistants:
        raise Bad("no_assistant_message", "the example has no assistant message; add the answer the model "
                                          "should learn")
    if not w.trainable:
        raise Bad("no_trainable_message", 'every assistant message has "weight": 0; give at least one '
                                          "weight 1 so there is something to learn")
    if w.last_role != "assistant":
        w.warn("ends_without_assistant", f"the example ends with a {w.last_role} message; messages after "
                                         f"the last assistant message are not trained on")
    return (w.chars, w.achars, TOKENS_REPLY_PRIMING + w.overhead + tool_bytes // 4, w.assistant_overhead,
            w.system, w.warnings, w.img)


def check_completion(obj: dict, ctx: Ctx) -> Summary:
    """A prompt/completion example for babbage-002 / davinci-002."""
    info = ctx.info
    if "messages" in obj or ("input" in obj and "preferred_output" in obj):
        raise Bad("wrong_format", f'the example is chat data ("messages"); {info.name} is a completion model '
                                  f'and needs {{"prompt": "...", "completion": "..."}}')
    prompt = obj.get("prompt")
    if type(prompt) is not str:
        what = "no \"prompt\"" if prompt is None else f'"prompt" of {_jtype(prompt)}'
        raise Bad("invalid_prompt", f'the example has {what}; it needs "prompt": "..." (a string)')
    completion = obj.get("completion")
    if type(completion) is not str or not completion:
        what = ("no \"completion\"" if completion is None else
                'an empty "completion"' if completion == "" else f'"completion" of {_jtype(completion)}')
        raise Bad("invalid_completion", f'the example has {what}; it needs "completion": "..." with the text '
                                        f"to learn")
    warnings = None
    if len(obj) > 2:
        w = _Walk(None)
        _unknown_top(obj, COMPLETION_KEYS, w)
        warnings = w.warnings
    return len(prompt) + len(completion), len(completion), 0, 0, None, warnings, 0


def check_dpo(obj: dict, ctx: Ctx) -> Summary:
    """A preference pair: ``{"input": {"messages": [...]}, "preferred_output": [...],
    "non_preferred_output": [...]}``."""
    info = ctx.info
    inp = obj.get("input")
    if inp is None:
        if "messages" in obj:
            raise Bad("wrong_format", 'the example is supervised chat data ("messages"); preference (DPO) '
                                      'training needs "input", "preferred_output" and "non_preferred_output"')
        if "prompt" in obj or "completion" in obj:
            raise Bad("wrong_format", "the example has prompt/completion; preference (DPO) training needs "
                                      '"input", "preferred_output" and "non_preferred_output"')
        raise Bad("missing_input", 'the example has no "input"; write "input": {"messages": [...]}')
    if type(inp) is not dict or "messages" not in inp:
        what = f'"input" is {_jtype(inp)}' + (' without "messages"' if type(inp) is dict else "")
        raise Bad("invalid_input", f'{what}; write "input": {{"messages": [...]}}')
    w_in = _Walk(None)
    _unknown_top(obj, DPO_KEYS, w_in)
    _unknown_top(inp, DPO_INPUT_KEYS, w_in, 'in "input": ')
    tool_bytes = _tools(inp, info, w_in, 'in "input": ')
    try:
        walk_messages(inp["messages"], info, w_in, where='in "input": ')
    except Bad as bad:
        if bad.code in ("messages_not_list", "empty_messages"):
            raise Bad("invalid_input", bad.message) from None
        raise
    if w_in.last_role not in ("user", "tool"):
        raise Bad("invalid_input", f'"input" ends with a {w_in.last_role} message; it must end with the user '
                                   f"(or tool) message that the preferred and non-preferred outputs answer")
    sides = []
    for key in ("preferred_output", "non_preferred_output"):
        if key not in obj:
            raise Bad(f"invalid_{key}", f'the example has no "{key}"; write "{key}": [{{"role": "assistant", '
                                        f'"content": "..."}}]')
        sides.append(walk_messages(obj[key], info, _Walk(None), only_assistant=key))
    warnings = w_in.warnings
    for side in sides:
        if side.warnings:
            warnings = (warnings or []) + side.warnings
    if obj["preferred_output"] == obj["non_preferred_output"]:
        warnings = (warnings or []) + [("identical_outputs", "preferred_output and non_preferred_output are "
                                                             "identical: there is no preference to learn")]
    longer = max(sides, key=lambda s: s.chars + s.overhead)
    return (w_in.chars + longer.chars, sum(s.chars for s in sides),
            TOKENS_REPLY_PRIMING + w_in.overhead + tool_bytes // 4 + longer.overhead,
            sum(s.overhead for s in sides), w_in.system, warnings, w_in.img + longer.img)


def _wrong_format_rft(obj: dict) -> Bad:
    if "input" in obj and ("preferred_output" in obj or "non_preferred_output" in obj):
        return Bad("wrong_format", "the example is a preference (DPO) pair; reinforcement fine-tuning needs "
                                   '{"messages": [...]} ending with the user message the model answers')
    if "prompt" in obj or "completion" in obj:
        return Bad("wrong_format", "the example has prompt/completion; reinforcement fine-tuning needs "
                                   '{"messages": [...]} ending with the user message the model answers')
    keys = ", ".join(sorted(str(k) for k in obj)[:8]) or "none"
    return Bad("missing_messages", f'the example has no "messages" (its keys: {keys})')


def check_rft(obj: dict, ctx: Ctx) -> Summary:
    """A reinforcement example: ``{"messages": [...], "tools": [...]?, <fields for the grader>...}``
    whose last message is the user's (the model's answer is what the grader scores)."""
    msgs = obj.get("messages")
    if msgs is None:
        raise _wrong_format_rft(obj)
    info = ctx.info
    w = _Walk(None)
    tool_bytes = 0
    if "tools" in obj:
        defs = (obj.get("tools"), None)
        if defs == ctx.tools:
            tool_bytes = ctx.tools_bytes
        else:
            tool_bytes = _tools(obj, info, w)
            ctx.tools, ctx.tools_bytes = defs, tool_bytes
    walk_rft_messages(msgs, info, w)
    if w.last_role != "user":
        if w.last_role == "assistant":
            raise Bad("last_message_not_user", f"the example ends with an assistant message (message {len(msgs)}); "
                                               f"a reinforcement fine-tuning example ends with the user message the "
                                               f"model answers, and the grader scores the model's own answer: remove "
                                               f'the answer (keep it as a field such as "reference_answer" for the '
                                               f"grader)")
        raise Bad("last_message_not_user", f"the example ends with a {w.last_role} message (message {len(msgs)}); "
                                           f"a reinforcement fine-tuning example ends with the user message the "
                                           f"model answers")
    for path in ctx.item_paths:
        node: Any = obj
        for depth, key in enumerate(path):
            if type(node) is not dict or key not in node:
                ref = "item." + ".".join(path)
                if depth == 0:
                    have = sorted(str(k) for k in obj if k not in RFT_RESERVED)
                    raise Bad("missing_item_field", f'the grader reads {{{{{ref}}}}}, but the example has no "{key}" '
                                                    f"field (its fields for the grader: "
                                                    f"{', '.join(have[:8]) or 'none'}); add it to every example")
                at = "item." + ".".join(path[:depth])
                what = f"is {_jtype(node)}" if type(node) is not dict else f'has no "{key}"'
                raise Bad("missing_item_field", f"the grader reads {{{{{ref}}}}}, but the example's {at} {what}")
            node = node[key]
    common = ctx.common_fields
    if common is None:
        ctx.common_fields = {str(k) for k in obj if k not in RFT_RESERVED}
    elif common:
        common.intersection_update(obj.keys())
    if w.system is not None:
        w.warn("rft_system_message", "the example has a system message; reinforcement fine-tuning data "
                                     'gives instructions in a "developer" message (one source says system messages '
                                     "are not supported)")
    return (w.chars, 0, TOKENS_REPLY_PRIMING + w.overhead + tool_bytes // 4, 0, None, w.warnings, w.img)


# -- exact counts and bounds, for the examples that need them --------------------------------------

def count_example(kind: str, obj: dict, encoding: str) -> tuple[int, int]:
    """Exact (tokens, trainable assistant tokens) of a valid example of ``kind`` (chat, completion, dpo)."""
    if kind == "chat":
        msgs = obj["messages"]
        total = count_chat_tokens(msgs, encoding, tools=obj.get("tools"), functions=obj.get("functions"))
        assistant = sum(count_message_tokens(m, encoding) for m in msgs
                        if m.get("role") == "assistant" and m.get("weight", 1))
        return total, assistant
    if kind == "rft":  # what the model reads; the grader's fields are not its input
        return count_chat_tokens(obj["messages"], encoding, tools=obj.get("tools")), 0
    if kind == "completion":
        c = count_tokens(obj["completion"], encoding)
        return count_tokens(obj["prompt"], encoding) + c, c
    inp = obj["input"]
    base = count_chat_tokens(inp["messages"], encoding, tools=inp.get("tools"), functions=inp.get("functions"))
    outs = [sum(count_message_tokens(m, encoding) for m in obj[key])
            for key in ("preferred_output", "non_preferred_output")]
    return base + max(outs), sum(outs)


def text_sizes(value: Any) -> tuple[int, int]:
    """(characters, UTF-8 bytes) of every string value inside ``value`` (keys excluded)."""
    if type(value) is str:
        return len(value), len(value.encode("utf-8", "surrogatepass"))
    # The strings encoded in one piece: a call and an encode per string cost more than the walk
    # (Python keeps lone surrogates apart, so the sum of the parts' bytes is the bytes of the whole).
    text = "".join(_strings(value))
    return len(text), len(text.encode("utf-8", "surrogatepass"))


def _strings(value: Any) -> list[str]:
    """Every string value inside ``value`` (keys excluded), found iteratively."""
    strings: list[str] = []
    stack = [value]
    pop, extend, keep = stack.pop, stack.extend, strings.append
    while stack:
        v = pop()
        t = type(v)
        if t is str:
            keep(v)
        elif t is dict:
            extend(v.values())
        elif t is list:
            extend(v)
        elif t is _DICT_VALUES:
            extend(v)
    return strings


_DICT_VALUES = type({}.values())


def _bounded_text(kind: str, obj: dict) -> Any:
    """What a bound of the example's tokens reads the strings of, or None when a ``tools`` list
    makes a bound from its strings not rigorous (the list is counted as its JSON)."""
    holder = obj["input"] if kind == "dpo" else obj
    if "tools" in holder or "functions" in holder:
        return None
    # RFT: only the messages are the model's input (the other fields are the grader's)
    return obj["messages"] if kind == "rft" else obj


def pair_bound(kind: str, obj: dict, overhead: int, encoding: str) -> int | None:
    """A bound of the example's tokens tighter than ``utf8_bound``, still without the encoding
    built: each string's ``token_bound`` (from the pairs of bytes that are tokens and the
    split into pieces) plus ``overhead``. None when a ``tools`` list makes it not rigorous."""
    text = _bounded_text(kind, obj)
    return None if text is None else sum(token_bound(s, encoding) for s in _strings(text)) + overhead


def utf8_bound(kind: str, obj: dict, overhead: int) -> int | None:
    """A bound of the example's tokens tighter than its line's length: the UTF-8 bytes of its
    strings (a token is at least one byte) plus ``overhead``, the non-text tokens (which
    already include every image). None when a ``tools`` list makes it not rigorous."""
    text = _bounded_text(kind, obj)
    return None if text is None else text_sizes(text)[1] + overhead


# The reinforcement walk: walk_messages' own code, run with RFT's roles in its globals (developer
# allowed, no legacy function), so that the supervised and DPO walk pays nothing for it.
walk_rft_messages = types.FunctionType(
    walk_messages.__code__,
    {**globals(), "ROLES": RFT_ROLES, "LEGACY_ROLES": frozenset(), "_ROLE_TEXT": "developer, user, assistant or tool"},
    "walk_rft_messages", walk_messages.__defaults__, walk_messages.__closure__)
walk_rft_messages.__kwdefaults__ = dict(walk_messages.__kwdefaults__ or {})
walk_rft_messages.__doc__ = "walk_messages for reinforcement fine-tuning examples (their roles)."
