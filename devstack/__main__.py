"""``python -m devstack run|demo|drop``: the local stack's commands (used by the Makefile)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start Azurite, the simulator and the local runner until Ctrl-C")
    run.add_argument("--port", type=int, default=7071, help="HTTP port of the function app (default 7071)")
    run.add_argument("--state-dir", type=Path, default=None, help="where the stack keeps its data (default .devstack)")
    demo = sub.add_parser("demo", help="the end-to-end demo: dataset -> job -> deployment -> chat completion")
    demo.add_argument("--accounts", type=int, choices=(1, 2), default=1,
                      help="2: a pool of two accounts; the model trains in one and is deployed to the other")
    from .drop import add_arguments

    add_arguments(sub.add_parser("drop", help="put a dataset (and its grader) into the running local stack's "
                                             "datasets container"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "httpx", "httpx2", "azure.identity"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "run":
        from .stack import STATE_DIR, run_forever

        return run_forever(args.port, args.state_dir or STATE_DIR)
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main(args.accounts)
    if args.command == "drop":
        from .drop import DropError, drop, stack_values

        try:
            values = stack_values(args.state_dir / "stack.json") if args.state_dir else None
            for name in drop(args.file, args.model, args.method, args.grader, args.name, values=values):
                print(f"dropped {name}")
        except DropError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("follow it with GET /api/datasets (or the dashboard's Datasets view)")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
