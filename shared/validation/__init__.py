"""Dataset validation for Azure OpenAI fine-tuning (pure Python, no Azure imports).

    >>> from shared.validation import validate_path
    >>> report = validate_path("train.jsonl", model="gpt-4o-mini-2024-07-18")
    >>> report.valid, report.to_dict()["error_counts"]

One streaming pass over the bytes, constant memory whatever the file's size.
The rules come from ``/work/shared/spec/fine-tuning-facts.md`` and the API
descriptions; the per-model limits from the model catalogue
(:mod:`shared.catalogue`). Command line: ``python -m shared.validation PATH
--model MODEL [--method supervised|dpo|reinforcement] [--grader FILE]
[--response-format FILE] [--json] [--exact-tokens]``.

Reinforcement fine-tuning (``method="reinforcement"``): each example is
``{"messages": [...], "tools": [...]?, <fields for the grader>}`` whose last
message is the user's; ``validate(..., grader={...})`` also checks the grader
(:mod:`shared.validation.graders`: ``validate_grader``, ``referenced_item_fields``)
and that every ``{{item.<field>}}`` it reads is in every example. Image data
(content parts ``image_url``): see :mod:`shared.validation.rules`.

Report (``ValidationReport.to_dict()``): ``valid``, ``model``, ``base_model``,
``method``, ``errors`` and ``warnings`` (the first 100 of each, as
``{line, code, message}`` with the 1-based line, or ``null`` for the file as a
whole), ``error_counts`` and ``warning_counts`` (all of them, per code) and
``stats``:

- ``bytes``, ``utf8_bom``, ``lines``, ``examples`` (non-blank lines),
  ``valid_examples``, ``format`` (chat, completion, dpo or rft), ``examples_with_images``;
- ``encoding``, ``token_limit``; ``total_tokens``, ``max_tokens_per_example``,
  ``assistant_tokens`` (trainable assistant messages; both outputs for DPO,
  the completion for prompt/completion; 0 for reinforcement) and
  ``estimated_billable_tokens_per_epoch`` (the total: every token of the file is
  trained on once per epoch; null for reinforcement, billed per training hour),
  over valid examples. Reinforcement examples count their messages and tools
  only (the other fields are the grader's, not the model's input).

  The verdict needs the model's encoding only for an example that may reach the
  limit: a token is at least one byte, so an example whose line (plus a flat
  figure per image) is no longer in bytes than the limit cannot exceed it. The
  token figures of the other examples are estimated from a systematic sample
  counted exactly (the first 16 examples, then every k-th, k a power of two
  chosen from the file's size for a few hundred examples: a small file is counted
  whole): tokens = ratio x characters + the per-message overheads, the ratio
  measured on the sample. ``token_estimate`` says how: ``method`` (``sample``, or
  ``characters`` — characters x UTF-8 bytes per character / 4, no encoding loaded —
  with ``sample_tokens=False``, ``--quick-estimate``), ``sampled_examples``,
  ``estimated_examples`` and ``relative_error_95`` (the ratio estimator's 95 %
  bound, relative to ``total_tokens``). ``exact_tokens=True`` (``--exact-tokens``)
  counts every example. ``tokens_exact`` says whether every valid example was
  counted; ``max_tokens_per_example_bound`` is a true upper bound of the largest
  example; ``exactly_counted_examples`` says how many were counted;
- ``assumed_epochs``, ``estimated_billable_tokens`` (per epoch x epochs) and
  ``epochs_assumption``: the epochs the service is assumed to choose when a job
  leaves ``n_epochs`` out (OpenAI's published default: 3, raised so that training
  sees 100 examples, at most 25, lowered so that it sees at most 25,000);
- ``examples_without_system_message``, ``distinct_system_messages``,
  ``duplicates`` and ``duplicate_check_complete`` (false past 1,572,864 distinct
  examples, see :mod:`shared.validation.dedupe`);
- ``item_fields_in_every_example`` (reinforcement): the top-level fields besides
  ``messages`` and ``tools`` that every valid example has, so that a grader given
  later (with the job) can be checked against a validated dataset without reading it
  again: ``referenced_item_fields(grader) - set(stats["item_fields_in_every_example"])``
  are the fields some example lacks;
- ``grader_item_fields``: the fields the grader reads (reinforcement, with a grader);
- ``sha256`` when asked for.

Error and warning codes (``CODES`` holds each code's meaning and fix):

{codes}
"""
from __future__ import annotations

from .codes import CODES, CodeInfo, codes_table
from .validator import (MAX_ISSUES, MAX_LINE_BYTES, SUPPORTED_METHODS, Issue, ValidationReport, validate,
                        validate_path)

__doc__ = __doc__.replace("{codes}", codes_table())

__all__ = ["CODES", "CodeInfo", "Issue", "MAX_ISSUES", "MAX_LINE_BYTES", "SUPPORTED_METHODS",
           "ValidationReport", "codes_table", "referenced_item_fields", "validate", "validate_grader",
           "validate_path"]


def __getattr__(name: str):
    # The grader checks are imported when first used: most validations never need them.
    if name in ("validate_grader", "referenced_item_fields"):
        from . import graders

        return getattr(graders, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
