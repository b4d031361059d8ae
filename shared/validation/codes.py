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
                                         "validator does not check it (supervised, dpo and reinforcement).",
                                     "Use a method the model supports (see the catalogue)."),
    # -- the file as a whole ----------------------------------------------
    "file_too_large": CodeInfo(_E, "The file is larger than 512 MB (536,870,912 bytes).",
                               "Split it into several files or remove examples."),
    "not_utf8": CodeInfo(_E, "Bytes that are not UTF-8: Latin-1/Windows-1252 text, UTF-16/32, "
                             "NUL bytes or a binary (e.g. compressed) file.",
                         "Save the file as UTF-8 (with or without BOM), uncompressed."),
    "too_few_examples": CodeInfo(_E, "Fewer than 10 examples (the service refuses to start the job).",
                                 "Add examples: hundreds to thousands are recommended."),
    "too_many_examples": CodeInfo(_E, "More examples than the method accepts in one file (reinforcement "
                                      "fine-tuning: 50,000 in a training file).",
                                  "Split the file, or keep the best examples."),
    "too_many_image_examples": CodeInfo(_E, "More than 50,000 examples with images in one file.",
                                        "Split the file, or remove images from some examples."),
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
    "too_many_images": CodeInfo(_E, "An example has more than 64 images.",
                                "Keep at most 64 images per example: split the conversation or drop images."),
    "invalid_image_detail": CodeInfo(_E, "An image's \"detail\" is not low, high or auto.",
                                     "Write \"detail\": \"low\", \"high\" or \"auto\" (or leave it out)."),
    "unsupported_image_format": CodeInfo(_E, "An inline image (data URI) is not JPEG, PNG or WEBP.",
                                         "Convert the image to JPEG, PNG or WEBP (data:image/png;base64,...)."),
    "image_too_large": CodeInfo(_E, "An inline image is larger than 10 MB once decoded.",
                                "Resize or recompress the image to at most 10 MB."),
    "invalid_image_data": CodeInfo(_E, "An inline image's data URI is not base64, or its bytes are not the "
                                       "image type it names.", "Write data:image/<type>;base64,<the file's bytes in "
                                                               "base64>, with the type the file really has."),
    "image_not_rgb": CodeInfo(_E, "An inline image is not RGB or RGBA (grayscale, palette or CMYK).",
                              "Convert the image to RGB or RGBA."),
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
    # -- reinforcement fine-tuning (RFT) examples ---------------------------
    "last_message_not_user": CodeInfo(_E, "A reinforcement fine-tuning example does not end with a user message "
                                          "(the model's own answer to it is what the grader scores).",
                                      "End the example with the user message; keep a reference answer as an extra "
                                      "field (e.g. \"reference_answer\") for the grader."),
    "missing_item_field": CodeInfo(_E, "The grader reads {{item.<field>}}, which the example lacks (or a part of "
                                       "it that is not there).", "Add the field to every example, or change the "
                                                                 "grader's template."),
    # -- the grader (reinforcement fine-tuning), file-level -------------------
    "grader_missing": CodeInfo(_E, "A reinforcement fine-tuning dataset has no grader beside it (or it cannot be "
                                   "read).", "Drop the grader as <dataset>.grader.json (or grader.json for the "
                                             "folder) before the data, then drop the data again."),
    "grader_missing_field": CodeInfo(_E, "The grader lacks a field its type requires.",
                                     "Add the field (the message lists the type's required fields)."),
    "grader_invalid_field": CodeInfo(_E, "A grader field has the wrong type or a value out of range.",
                                     "Fix the field named in the message."),
    "grader_unknown_type": CodeInfo(_E, "The grader's type is not string_check, text_similarity, score_model, "
                                        "python, endpoint or multi (or is not allowed where it is).",
                                    "Use one of the grader types."),
    "grader_unknown_model": CodeInfo(_E, "A model grader names a model that cannot grade (the judge models are "
                                         "gpt-4o-2024-08-06 and o3-mini-2025-01-31).", "Use a judge model."),
    "grader_source_too_large": CodeInfo(_E, "A python grader's source is larger than 256 KB.",
                                        "Shorten the code; put data in the examples' fields instead."),
    "grader_invalid_source": CodeInfo(_E, "A python grader's source is not valid Python or defines no "
                                          "grade(sample, item).", "Fix the code so that it defines grade(sample, item)."),
    "grader_invalid_template": CodeInfo(_E, "A {{...}} template is malformed or reads something that does not "
                                            "exist.", "Write {{item.<field>}}, {{sample.output_text}} or "
                                                      "{{sample.output_json.<key>}}."),
    "grader_invalid_formula": CodeInfo(_E, "A multi grader's calculate_output is not a formula over its graders.",
                                       "Use the graders' keys, numbers, + - * / ^, parentheses and min max abs "
                                       "floor ceil exp sqrt log."),
    "invalid_response_format": CodeInfo(_E, "The response_format is not text or a JSON schema.",
                                        "Write {\"type\": \"json_schema\", \"json_schema\": {\"name\": ..., "
                                        "\"schema\": {...}}}."),
    "response_format_mismatch": CodeInfo(_E, "The grader reads sample.output_json fields that the response format "
                                             "cannot produce.", "Align the grader's templates and the JSON schema."),
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
    "rft_system_message": CodeInfo(_W, "A system message in reinforcement fine-tuning data: one Microsoft page "
                                       "says RFT does not support them, the API takes developer messages.",
                                   "Use a \"developer\" message for the instructions."),
    "grader_not_applicable": CodeInfo(_W, "A grader was given for a method other than reinforcement; it was "
                                          "ignored.", "Validate with method reinforcement, or leave the grader out."),
    "grader_unknown_key": CodeInfo(_W, "A grader field its type does not define (the service may refuse or "
                                       "ignore it).", "Remove it (the message suggests the right name when it "
                                                      "knows one)."),
    "grader_unused_grader": CodeInfo(_W, "A multi grader's part that calculate_output never uses.",
                                     "Use it in the formula, or remove it."),
    "grader_multi_subgrader": CodeInfo(_W, "A multi grader part other than string_check or text_similarity: one "
                                           "Azure page does not support it, another does.",
                                       "Check the grader with the graders/validate call before training."),
    "grader_preview": CodeInfo(_W, "An endpoint grader: in preview, its API is not published, so it is barely "
                                   "checked here.", "Check it with the graders/validate call before training."),
    "grader_needs_response_format": CodeInfo(_W, "The grader reads sample.output_json, but no response_format was "
                                                 "given to check it against.", "Give the job's JSON-schema "
                                                                               "response_format (--response-format)."),
}


def codes_table() -> str:
    """The codes as a Markdown table (for documentation)."""
    rows = ["| code | severity | meaning | fix |", "|---|---|---|---|"]
    for code, info in CODES.items():
        rows.append(f"| `{code}` | {info.severity} | {info.meaning} | {info.fix} |")
    return "\n".join(rows)
