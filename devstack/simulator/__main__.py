"""``python -m devstack.simulator --host 127.0.0.1 --port 0 --certs-dir .devstack/certs
[--state-file PATH] [--ready-file PATH] [--job-running-seconds 5 ...]``"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError, add_config_arguments, config_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.simulator",
        description="Local simulator of Azure OpenAI fine-tuning, ARM deployments and Azure Monitor metrics.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--certs-dir", type=Path, default=Path(".devstack/certs"),
                        help="where the local CA and server certificate live (generated once)")
    parser.add_argument("--state-file", type=Path, default=None,
                        help="keep files, jobs and deployments in this JSON file (default: memory only)")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help='write {"url": ..., "ca": ...} here once listening')
    parser.add_argument("--log-level", default="warning")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    from .server import serve

    serve(host=args.host, port=args.port, certs_dir=args.certs_dir, state_file=args.state_file,
          ready_file=args.ready_file, config=config, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
