"""``python -m devstack run|demo``: the local stack's commands (used by the Makefile)."""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start Azurite, the simulator and the local runner until Ctrl-C")
    run.add_argument("--port", type=int, default=7071, help="HTTP port of the function app (default 7071)")
    sub.add_parser("demo", help="the end-to-end demo: dataset -> job -> deployment -> chat completion")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "httpx", "httpx2", "azure.identity"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "run":
        from .stack import run_forever

        return run_forever(args.port)
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main()
    return 2


if __name__ == "__main__":
    sys.exit(main())
