"""``python -m devstack.runner``: the local runner alone, in a process of its own.

    python -m devstack.runner [--port N] [--host 127.0.0.1] [--no-timers] [--no-blobs]
                              [--poll-interval S] [--ready-file PATH] [--principal NAME:ROLES]

It loads ``function_app.app`` and reads its settings from ``os.environ`` (the same
variables as ``local.settings.json``: Azurite's connection string, the simulator's
URL …; a variable not set there is taken from ``local.settings.json``, else from
``local.settings.sample.json``, as Core Tools does), serves HTTP, runs the timers and watches the datasets container until it gets
SIGTERM or SIGINT. Once the HTTP server listens it prints
``runner listening on <base url>`` and, with ``--ready-file``, writes
``{"base_url", "port", "pid"}`` there. ``--principal`` (default: ``LOCAL_PRINCIPAL``)
plays App Service authentication: ``alice@example.com:Operator``, ``bob:Reader``,
``anonymous`` (on, nobody signed in); see ``devstack/runner/runner.py``. Fault tests start it like this so that they can
kill it (SIGKILL) in the middle of a run, as a platform would.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.runner",
                                     description="Run function_app.app with the local runner until stopped.")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="HTTP port (default: a free one)")
    parser.add_argument("--no-timers", action="store_true", help="do not run the timer triggers")
    parser.add_argument("--no-blobs", action="store_true", help="do not watch the datasets container")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between blob polls (default 1)")
    parser.add_argument("--ready-file", type=Path, help="write {base_url, port, pid} here once listening")
    parser.add_argument("--log-level", default=os.environ.get("RUNNER_LOG_LEVEL", "INFO"))
    parser.add_argument("--principal", default=None,
                        help="sign every request in as NAME:Role1,Role2 (or 'anonymous'), as App Service "
                             "authentication would (default: LOCAL_PRINCIPAL)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "httpx", "httpx2", "azure.identity",
                  "uvicorn.error"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    from ..stack import base_values
    from .runner import LocalRunner, load_app

    env = {**base_values(), **os.environ}
    os.environ.update(env)  # the function app reads its settings from the environment
    try:
        runner = LocalRunner(load_app(), env=env, host_json=ROOT / "host.json", http_host=args.host,
                             http_port=args.port, blob_poll_interval=args.poll_interval,
                             enable_timers=not args.no_timers, enable_blobs=not args.no_blobs,
                             principal=args.principal)
    except ValueError as exc:  # a malformed LOCAL_PRINCIPAL / --principal: say so, no traceback
        print(f"python -m devstack.runner: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner.start()
    print(f"runner listening on {runner.base_url}", flush=True)
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"base_url": runner.base_url, "port": runner.http_port, "pid": os.getpid()}))
        tmp.replace(args.ready_file)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
