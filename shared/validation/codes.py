"""Stable, machine-readable codes of the validation report.

Every error and warning of a report carries one of these codes. They are part
of the service's contract (reports are stored and read by people and code):
never rename one; add new ones instead. ``CODES[code]`` gives its severity,
what it means and how to fix it; ``tests/validation`` checks that every code
the validator emits is listed here.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["CODES", "CodeInfo", "ERROR", "WARNING", "codes_table"]

ERROR = "error"
WARNING = "warning"


class CodeInfo(NamedTuple):
    severity: str
    meaning: str
    fix: str


_E, _W = ERROR, WARNING

CODES: dict[str, CodeInfo] = {
    # -- the request itself (nothing is read) ------------------------------
    "unknown_model": CodeInfo(_E, "The model is not in the model catalogue.",
                              "Use one of the listed base models, or a fine-tuned model <base>.ft-<id>."),
    "model_not_fine_tunable": CodeInfo(_E, "The catalogue says this model cannot be fine-tuned.",
                                       "Choose a fine-tunable base model."),
    "method_not_supported": CodeInfo(_E, "The model does not support this training method, or the "
                                         "validator does not check it (only supervised and dpo).",
                                     "Use a method the model supports (see the catalogue)."),
    # -- the file as a whole ----------------------------------------------
    "file_too_large": CodeInfo(_E, "The file is larger than 512 MB (536,870,912 bytes).",
                               "Split it into several files or remove examples."),
    "not_utf8": CodeInfo(_E, "Bytes that are not UTF-8: Latin-1/Windows-1252 text, UTF-16/32, "
                             "NUL bytes or a binary (e.g. compressed) file.",
                         "Save the file as UTF-8 (with or without BOM), uncompressed."),
    "too_few_examples": CodeInfo(_E, "Fewer than 10 examples (the service refuses to start the job).",
                                 "Add examples: hundreds to thousands are recommended."),
    # -- one line ---------------------------------------------------------
    "invalid_json": CodeInfo(_E, "The line is not one complete JSON value.",
                             "Write one JSON object per line (no pretty-printing across lines)."),
    "blank_line": CodeInfo(_E, "A blank line between examples (blank lines at the end are tolerated).",
                           "Remove the blank line."),
    "line_too_long": CodeInfo(_E, "The line is longer than 16 MiB; the validator does not read it.",
                              "Shorten or split the example; link images by URL instead of inlining them."),
    "not_an_object": CodeInfo(_E, "The line is valid JSON but not an object.",
                              "Each line must be a JSON object such as {\"messages\": [...]}."),
    "wrong_format": CodeInfo(_E, "The example is in another format than the model and method need "
                                 "(chat vs prompt/completion vs preference pairs).",
                             "Convert the data, or choose the model/method it was written for."),
    "too_many_tokens": CodeInfo(_E, "The example has more tokens than the model accepts per example.",
                                "Shorten or split the example."),
    # -- chat examples ----------------------------------------------------
    "missing_messages": CodeInfo(_E, "No \"messages\" key.", "Add {\"messages\": [...]}."),
    "messages_not_list": CodeInfo(_E, "\"messages\" is not a list.", "Make \"messages\" a list of message objects."),
    "empty_messages": CodeInfo(_E, "\"messages\" is an empty list.", "Add the conversation's messages."),
    "message_not_object": CodeInfo(_E, "A message is not a JSON object.",
                                   "Write each message as {\"role\": ..., \"content\": ...}."),
    "missing_role": CodeInfo(_E, "A message has no \"role\".", "Add \"role\": system, user, assistant or tool."),
    "invalid_role": CodeInfo(_E, "A role other than system, user, assistant, tool (or legacy function).",
                             "Use one of the supported roles."),
    "missing_content": CodeInfo(_E, "A message has no \"content\" (an assistant message may omit it "
                                    "only when it makes tool calls).", "Add the message's text."),
    "invalid_content": CodeInfo(_E, "\"content\" is neither a string nor a list of content parts.",
                                "Make content a string, or a list of {\"type\": \"text\", \"text\": ...} parts."),
    "empty_content": CodeInfo(_E, "\"content\" is empty.", "Write the message's text, or remove the message."),
    "invalid_content_part": CodeInfo(_E, "A content part is malformed or of an unknown type.",
                                     "Use {\"type\": \"text\", \"text\": ...} or "
                                     "{\"type\": \"image_url\", \"image_url\": {\"url\": ...}}."),
    "images_not_supported": CodeInfo(_E, "An image part where the model (or the role) does not take images.",
                                     "Remove images, put them in user messages, or use a model with vision "
                                     "fine-tuning."),
    "invalid_name": CodeInfo(_E, "A message's \"name\" is not a non-empty string.", "Make name a string or remove it."),
    "invalid_weight": CodeInfo(_E, "\"weight\" is not 0 or 1.", "Use \"weight\": 0 (do not train) or 1 (train)."),
    "weight_not_allowed": CodeInfo(_E, "\"weight\" on a message that is not an assistant message.",
                                   "Remove it: only assistant messages take a weight."),
    "no_assistant_message": CodeInfo(_E, "The example has no assistant message: nothing to learn.",
                                     "Add the assistant's answer."),
    "no_trainable_message": CodeInfo(_E, "Every assistant message has \"weight\": 0: nothing to learn.",
                                     "Give at least one assistant message weight 1 (or no weight)."),
    "invalid_tool_calls": CodeInfo(_E, "\"tool_calls\" is not a non-empty list, or is on a message that is "
                                       "not an assistant message.", "Write tool_calls as a list on assistant messages."),
    "invalid_tool_call": CodeInfo(_E, "A tool call lacks \"id\", \"type\": \"function\" or "
                                      "\"function\": {\"name\", \"arguments\"}.", "Complete the tool call."),
    "invalid_tool_arguments": CodeInfo(_E, "A tool call's \"arguments\" is not a string holding valid JSON.",
                                       "Serialise the arguments as a JSON string, e.g. \"{\\\"city\\\": \\\"Paris\\\"}\"."),
    "missing_tool_call_id": CodeInfo(_E, "A tool message has no \"tool_call_id\".",
                                     "Add the id of the tool call it answers."),
    "unmatched_tool_message": CodeInfo(_E, "A tool message answers no open tool call of an earlier assistant "
                                           "message.", "Use the id of an earlier tool call, once per call."),
    "unanswered_tool_call": CodeInfo(_E, "The conversation goes on before every tool call has its tool message.",
                                     "Add a tool message for each call, right after the assistant message."),
    "invalid_tools": CodeInfo(_E, "\"tools\" (or legacy \"functions\") is not a list of function definitions.",
                              "Write tools as [{\"type\": \"function\", \"function\": {\"name\": ...}}]."),
    "tools_not_supported": CodeInfo(_E, "Tool calling data for a model that does not support it.",
                                    "Remove tools, or use a model that supports tool calling."),
    # -- prompt/completion examples ----------------------------------------
    "invalid_prompt": CodeInfo(_E, "\"prompt\" is missing or not a string.", "Add \"prompt\": \"...\"."),
    "invalid_completion": CodeInfo(_E, "\"completion\" is missing, empty or not a string.",
                                   "Add \"completion\": \"...\" with the text to learn."),
    # -- preference (DPO) examples ------------------------------------------
    "missing_input": CodeInfo(_E, "No \"input\" object.", "Add \"input\": {\"messages\": [...]}."),
    "invalid_input": CodeInfo(_E, "\"input\" is not an object with a \"messages\" list that ends with a "
                                  "user (or tool) message.", "Fix \"input\"."),
    "invalid_preferred_output": CodeInfo(_E, "\"preferred_output\" is missing or not a list of assistant messages.",
                                         "Write [{\"role\": \"assistant\", \"content\": ...}]."),
    "invalid_non_preferred_output": CodeInfo(_E, "\"non_preferred_output\" is missing or not a list of assistant "
                                                 "messages.", "Write [{\"role\": \"assistant\", \"content\": ...}]."),
    # -- warnings ------------------------------------------------------------
    "few_examples": CodeInfo(_W, "Fewer than 50 examples: training rarely changes the model.",
                             "Add examples: hundreds to thousands are recommended."),
    "no_system_message": CodeInfo(_W, "No example has a system message.",
                                  "Add the system message you will use in production to every example."),
    "missing_system_message": CodeInfo(_W, "This example has no system message while others have one.",
                                       "Use the same system message in every example."),
    "inconsistent_system_message": CodeInfo(_W, "Examples use different system messages.",
                                            "Use the system message you will use in production, the same everywhere."),
    "duplicate_example": CodeInfo(_W, "The line repeats an earlier line byte for byte.", "Remove the duplicate."),
    "possible_secret": CodeInfo(_W, "The line contains what looks like a credential (API key, bearer token, "
                                    "private key, connection string).", "Remove or redact it before training."),
    "unknown_key": CodeInfo(_W, "A key the format does not define (the service may reject or ignore it).",
                            "Remove it."),
    "ends_without_assistant": CodeInfo(_W, "Messages after the last assistant message are never trained on.",
                                       "End the example with the assistant's answer."),
    "identical_outputs": CodeInfo(_W, "preferred_output and non_preferred_output are identical: no preference "
                                      "to learn.", "Make the two outputs differ."),
    "deprecated_function_calling": CodeInfo(_W, "Legacy \"functions\" / \"function_call\" / role \"function\".",
                                            "Use \"tools\", \"tool_calls\" and role \"tool\"."),
}


def codes_table() -> str:
    """The codes as a Markdown table (for documentation)."""
    rows = ["| code | severity | meaning | fix |", "|---|---|---|---|"]
    for code, info in CODES.items():
        rows.append(f"| `{code}` | {info.severity} | {info.meaning} | {info.fix} |")
    return "\n".join(rows)
