"""Check a fine-tuning dataset before uploading it.

    python -m shared.validation PATH --model MODEL [--method supervised|dpo|reinforcement]
                                [--grader GRADER.json] [--response-format FORMAT.json] [--json] [--exact-tokens]

Prints the validation report: for a person, or exactly one JSON object with
``--json``. Exit status: 0 the file is valid, 1 it is not (or the model/method
cannot be trained, or the grader is invalid), 2 usage error (missing or
unreadable file, a grader file that is not JSON, unknown option). Offline: no
network access.

``--grader`` (reinforcement): the job's grader as JSON (the grader itself, or
``{"grader": {...}}`` as sent to the graders/validate call); it is checked, and
every ``{{item.<field>}}`` it reads must be in every example.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..catalogue import load_catalogue
from .validator import SUPPORTED_METHODS, validate_path

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    known = ", ".join(load_catalogue().known_models(fine_tunable_only=True))
    p = argparse.ArgumentParser(
        prog="python -m shared.validation",
        description="Validate a JSON Lines fine-tuning dataset for an Azure OpenAI base model (offline).",
        epilog=f"Models: {known}, or a fine-tuned model <base>.ft-<id>. "
               "Exit status: 0 valid, 1 invalid, 2 usage error.",
    )
    p.add_argument("path", help="the .jsonl training (or validation) file")
    p.add_argument("--model", required=True, help="base model (or fine-tuned model) to train")
    p.add_argument("--method", choices=SUPPORTED_METHODS, default=None,
                   help="training method (default: supervised, or reinforcement with --grader)")
    p.add_argument("--grader", metavar="FILE",
                   help="reinforcement: the grader's JSON; checked, and the fields it reads checked in every example")
    p.add_argument("--response-format", metavar="FILE",
                   help="reinforcement: the job's response_format JSON, checked with the grader")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--exact-tokens", action="store_true",
                   help="count every example's tokens exactly (slower; otherwise figures are estimates)")
    p.add_argument("--quick-estimate", action="store_true",
                   help="estimate tokens as characters / 4 without loading the model's encoding (unless an example "
                        "may reach the limit); by default a sample of a few hundred examples is counted exactly")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # exits with status 2 on a usage error
    path = args.path
    if not os.path.exists(path):
        print(f"error: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if os.path.isdir(path):
        print(f"error: {path}: is a directory, not a file", file=sys.stderr)
        return EXIT_USAGE
    extra = {}
    if args.grader is not None:
        from .graders import load_grader
    for option, key in ((args.grader, "grader"), (args.response_format, "response_format")):
        if option is None:
            continue
        try:
            extra[key] = load_grader(option) if key == "grader" else _load_json(option)
        except OSError as exc:
            print(f"error: {option}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            print(f"error: {option}: not a JSON file ({exc})", file=sys.stderr)
            return EXIT_USAGE
    method = args.method or ("reinforcement" if args.grader else "supervised")
    try:
        report = validate_path(path, model=args.model, method=method, exact_tokens=args.exact_tokens,
                               sample_tokens=not args.quick_estimate, **extra)
    except OSError as exc:
        print(f"error: {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_VALID if report.valid else EXIT_INVALID
    try:
        if args.json:
            sys.stdout.buffer.write(report.to_json() + b"\n")
        else:
            sys.stdout.write(report.format_text(path) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`: the status still tells the verdict
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


def _load_json(path: str):
    with open(path, "rb") as fh:
        return json.loads(fh.read().decode("utf-8-sig"))


if __name__ == "__main__":
    sys.exit(main())
