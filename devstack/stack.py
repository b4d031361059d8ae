"""The local stack: Azurite, the Azure OpenAI / ARM simulator and the local runner,
wired together with the environment the function app reads."""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Mapping

from .azurite import Azurite, AzuriteEndpoints, port_free

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".devstack"
log = logging.getLogger("devstack")


def base_values() -> dict[str, str]:
    """The sample's values, overlaid with local.settings.json's if a developer made one (so a
    copy made before a setting was added, such as a new trigger's schedule, still loads)."""
    values: dict[str, str] = {}
    for name in ("local.settings.sample.json", "local.settings.json"):
        path = ROOT / name
        if path.exists():
            values.update({k: str(v) for k, v in json.loads(path.read_text()).get("Values", {}).items()})
    return values


def stack_env(storage_conn: str, sim_url: str, ca_path: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    env = base_values()
    env.update({
        "AzureWebJobsStorage": storage_conn,
        "AZURE_OPENAI_ENDPOINT": sim_url,
        "ARM_ENDPOINT": sim_url,
        "AZURE_OPENAI_API_KEY": env.get("AZURE_OPENAI_API_KEY") or "local-simulator-key",
        "LOCAL_ARM_TOKEN": env.get("LOCAL_ARM_TOKEN") or "local-simulator-token",
        "LOCAL_CA_BUNDLE": ca_path,
    })
    env.update(overrides or {})
    return env


def prepare_storage(env: Mapping[str, str]) -> None:
    """Creates the containers and tables the settings name, as infra/ declares them in Azure."""
    from azure.core.exceptions import ResourceExistsError
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from shared.settings import Settings

    settings = Settings.from_env(env)
    blobs = BlobServiceClient.from_connection_string(env["AzureWebJobsStorage"])
    tables = TableServiceClient.from_connection_string(env["AzureWebJobsStorage"])
    for name in settings.container_names:
        try:
            blobs.create_container(name)
        except ResourceExistsError:
            pass
    for name in settings.table_names:
        try:
            tables.create_table(name)
        except ResourceExistsError:
            pass


class LocalStack:
    """Starts what it needs and stops everything it started, in reverse order."""

    def __init__(self, *, http_port: int = 7071, sim_args: list[str] | None = None,
                 env_overrides: Mapping[str, str] | None = None, state_dir: Path = STATE_DIR,
                 keep_data: bool = False, well_known_ports: bool = False) -> None:
        self.http_port = http_port
        self.well_known_ports = well_known_ports
        self.sim_args = sim_args or []
        self.env_overrides = dict(env_overrides or {})
        self.state_dir = state_dir
        self.keep_data = keep_data
        self.azurite: Azurite | None = None
        self.simulator = None
        self.runner = None
        self.env: dict[str, str] = {}

    def start(self) -> "LocalStack":
        from .simulator.process import SimulatorProcess

        self.state_dir.mkdir(parents=True, exist_ok=True)
        location = self.state_dir / "azurite" if self.keep_data else None
        ports = None
        if self.well_known_ports and all(port_free(p) for p in (10000, 10001, 10002)):
            ports = AzuriteEndpoints(10000, 10001, 10002)  # the ports local.settings.sample.json names
        self.azurite = Azurite(location=location, ports=ports, log_file=self.state_dir / "azurite.log").start()
        sim_port = 8443 if self.well_known_ports and port_free(8443) else 0
        log.info("Azurite: blobs %s, tables %s", self.azurite.endpoints.blob_url, self.azurite.endpoints.table_url)
        self.simulator = SimulatorProcess(certs_dir=self.state_dir / "certs", port=sim_port, extra_args=self.sim_args,
                                          state_file=self.state_dir / "simulator-state.json" if self.keep_data else None,
                                          log_file=self.state_dir / "simulator.log").start()
        log.info("Simulator (Azure OpenAI + ARM + metrics): %s", self.simulator.url)
        # An override may name the simulator's URL, known only now: "{simulator}".
        overrides = {k: v.replace("{simulator}", self.simulator.url) for k, v in self.env_overrides.items()}
        self.env = stack_env(self.azurite.endpoints.connection_string, self.simulator.url,
                             str(self.simulator.ca_path), overrides)
        os.environ.update(self.env)  # the function app reads its settings from the environment
        prepare_storage(self.env)
        from .runner import LocalRunner, load_app

        self.runner = LocalRunner(load_app(), env=self.env, host_json=ROOT / "host.json",
                                  http_port=self.http_port).start()
        return self

    def stop(self) -> None:
        for part, stop in (("runner", lambda: self.runner.stop()), ("simulator", lambda: self.simulator.stop()),
                           ("azurite", lambda: self.azurite.stop())):
            if getattr(self, part) is not None:
                try:
                    stop()
                except Exception:  # keep stopping the rest
                    log.exception("stopping %s failed", part)
                setattr(self, part, None)

    def __enter__(self) -> "LocalStack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def run_forever(http_port: int = 7071, state_dir: Path = STATE_DIR) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalStack(http_port=http_port, keep_data=True, well_known_ports=True, state_dir=state_dir) as stack:
        # Where this stack is, for `python -m devstack drop` (local emulators' keys only).
        stack_file = state_dir / "stack.json"
        stack_file.write_text(json.dumps({k: stack.env[k] for k in ("AzureWebJobsStorage", "DATASETS_CONTAINER")
                                          if k in stack.env}))
        print(f"Local stack is up. HTTP API: {stack.runner.base_url}", flush=True)
        print(f"Dashboard: {stack.runner.base_url}/dashboard", flush=True)
        print("Drop a dataset: .venv/bin/python -m devstack drop FILE --model MODEL [--method M]", flush=True)
        print(f"Drop datasets into container '{stack.env.get('DATASETS_CONTAINER', 'datasets')}' at "
              f"{stack.azurite.endpoints.blob_url}. Ctrl-C stops everything.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print("Stopping the local stack...", flush=True)
        stack_file.unlink(missing_ok=True)
    return 0
