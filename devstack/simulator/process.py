"""Run the simulator as a subprocess and drive its admin API.

    from devstack.simulator import SimulatorProcess

    with SimulatorProcess(certs_dir=Path(".devstack/certs"), config={"job_running_seconds": 1}) as sim:
        sim.url, sim.ca_path          # https://127.0.0.1:<port>, .../ca.pem
        sim.admin.advance(16 * 86400)
        sim.admin.inject_fault("throttle", path_regex="^/openai/files$", count=2, retry_after=1)
        sim.admin.requests(path_regex="/fine_tuning/jobs$")

Standard library only (no HTTP client dependency), so any part of the stack can use it.
"""
from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

__all__ = ["SimulatorProcess", "AdminClient", "AdminError"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


class AdminError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"admin API answered {status}: {body}")
        self.status = status
        self.body = body


class AdminClient:
    """A thin client of ``/_admin/``; every method returns the decoded JSON answer."""

    def __init__(self, url: str, ca_path: os.PathLike | str, timeout: float = 30.0) -> None:
        import httpx2

        self.url = url.rstrip("/")
        self.timeout = timeout
        # One kept-alive connection: long scenarios make thousands of admin calls, and a TLS
        # handshake per call would dominate them.
        self._http = httpx2.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(ca_path)),
                                   timeout=timeout, trust_env=False)

    def _call(self, method: str, path: str, body: Any = None, query: Optional[Mapping[str, Any]] = None) -> Any:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        response = self._http.request(method, f"/_admin{path}", json=body, params=params)
        if response.status_code >= 400:
            raise AdminError(response.status_code, response.text)
        return response.json() if response.content else None

    # clock
    def now(self) -> float:
        """The simulated time, in Unix seconds."""
        return self._call("GET", "/clock")["now"]

    def clock(self) -> dict:
        return self._call("GET", "/clock")

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> float:
        """Move the simulated clock forward; returns the new simulated time."""
        return self._call("POST", "/clock/advance",
                          {"seconds": seconds, "minutes": minutes, "hours": hours, "days": days})["now"]

    def set_time(self, now: float) -> float:
        return self._call("POST", "/clock/set", {"now": now})["now"]

    # config
    def config(self) -> dict:
        return self._call("GET", "/config")

    def configure(self, **values: Any) -> dict:
        """Change behaviour (see ``SimConfig``), e.g. ``configure(job_running_seconds=1, lro_retry_after=0)``."""
        return self._call("POST", "/config", values)

    # faults
    def inject_fault(self, kind: str, *, count: int = 1, method: Optional[str] = None,
                     path_regex: Optional[str] = None, **params: Any) -> dict:
        """Kinds: ``throttle`` (429, ``retry_after``=1), ``server_error`` (500), ``unavailable`` (503),
        ``delay`` (``seconds``=30, then normal handling), ``job_failure`` (``code``, ``message``),
        ``file_error`` (``message``), ``deployment_failure`` (InsufficientQuota; ``code``, ``message``)."""
        spec: dict[str, Any] = {"kind": kind, "count": count, **params}
        if method is not None:
            spec["method"] = method
        if path_regex is not None:
            spec["path_regex"] = path_regex
        return self._call("POST", "/faults", spec)

    def faults(self) -> list[dict]:
        return self._call("GET", "/faults")["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def remove_fault(self, fault_id: str) -> None:
        self._call("DELETE", f"/faults/{fault_id}")

    # request log
    def requests(self, since: Optional[int] = None, path_regex: Optional[str] = None,
                 method: Optional[str] = None) -> list[dict]:
        """Requests received (admin calls excluded), oldest first: ``seq, method, path, query, status,
        time`` (simulated), ``real_time, duration_ms, fault``. ``since`` is a ``seq`` (exclusive)."""
        return self._call("GET", "/requests", query={"since": since, "path_regex": path_regex,
                                                     "method": method})["requests"]

    def last_seq(self) -> int:
        """The ``seq`` of the latest logged request, to pass as ``since`` later."""
        return self._call("GET", "/requests", query={"path_regex": "^$"})["last_seq"]

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    # state
    def state(self) -> dict:
        return self._call("GET", "/state")

    def reset(self) -> None:
        self._call("POST", "/reset")

    # accounts and regions
    def accounts(self) -> dict:
        """``{"configured", "accounts": [{name, subscription, resource_group, region, resource_id, endpoint,
        default}], "default_endpoint", "default_region"}``."""
        return self._call("GET", "/accounts")

    def region(self, name: str) -> dict:
        """What ``name`` trains (``train``: base model -> training types) and deploys (``deploy``: base
        model -> SKUs of fine-tuned deployments)."""
        return self._call("GET", f"/regions/{name}")

    def health(self) -> bool:
        return bool(self._call("GET", "/health").get("ok"))


class SimulatorProcess:
    """The simulator in a child process. ``start()`` returns once it listens."""

    def __init__(self, *, certs_dir: os.PathLike | str = ".devstack/certs", host: str = "127.0.0.1",
                 port: int = 0, state_file: Optional[os.PathLike | str] = None,
                 config: Optional[Mapping[str, Any]] = None, extra_args: Sequence[str] = (),
                 log_file: Optional[os.PathLike | str] = None, startup_timeout: float = 30.0,
                 python: str = sys.executable) -> None:
        """``config`` maps ``SimConfig`` fields to values (``{"job_running_seconds": 6}``); ``extra_args``
        are more command-line flags (``["--job-running-seconds", "6"]``), appended after them."""
        self.certs_dir = Path(certs_dir)
        self.host = host
        self.port = port
        self.state_file = Path(state_file) if state_file else None
        self.config = dict(config or {})
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.python = python
        self._workdir = Path(tempfile.mkdtemp(prefix="aoai-sim-"))
        self.ready_file = self._workdir / "ready.json"
        self.log_file = Path(log_file) if log_file else self._workdir / "simulator.log"
        self._proc: Optional[subprocess.Popen] = None
        self._log_handle = None
        self.url: str = ""
        self.ca_path: Path = Path()
        self._admin: Optional[AdminClient] = None

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "devstack.simulator", "--host", self.host, "--port", str(self.port),
               "--certs-dir", str(self.certs_dir), "--ready-file", str(self.ready_file)]
        if self.state_file:
            cmd += ["--state-file", str(self.state_file)]
        for key, value in self.config.items():
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                text = str(value).lower()
            elif isinstance(value, (list, dict)):  # accounts, token_subscriptions, region_availability
                text = json.dumps(value)
            else:
                text = str(value)
            cmd += [flag, text]
        return cmd + self.extra_args

    def start(self) -> "SimulatorProcess":
        if self._proc is not None:
            raise RuntimeError("already started")
        self.ready_file.unlink(missing_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        self._log_handle = open(self.log_file, "ab")
        self._proc = subprocess.Popen(self.command(), cwd=str(_REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
                                      stdout=self._log_handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.ready_file.is_file():
                try:
                    ready = json.loads(self.ready_file.read_text())
                    break
                except ValueError:
                    pass
            if self._proc.poll() is not None:
                raise RuntimeError(f"the simulator exited with {self._proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the simulator did not become ready in {self.startup_timeout}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)
        self.url = ready["url"]
        self.ca_path = Path(ready["ca"])
        self._admin = AdminClient(self.url, self.ca_path)
        return self

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise RuntimeError("the simulator is not started")
        return self._admin

    def endpoint(self, account: Optional[str] = None) -> str:
        """The data-plane endpoint of ``account`` (``azure_endpoint`` of ``AzureOpenAI``): ``<url>/accounts/
        <name>``; the simulator's URL (the default account's data plane) without one."""
        return f"{self.url}/accounts/{account}" if account else self.url

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        self._admin = None

    def __enter__(self) -> "SimulatorProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
