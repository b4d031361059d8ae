"""Start and stop Azurite (the npm package pinned in package.json) on free loopback ports.

Used by ``make run``, the demo and the tests. Data lives in a temporary folder
unless a location is given, so every start is clean unless asked otherwise.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# The well-known Azurite development key (public, documented, emulator only).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _azurite_bin() -> Path:
    path = ROOT / "node_modules" / ".bin" / "azurite"
    if not path.exists():
        raise RuntimeError(f"Azurite is not installed at {path}: run `npm ci` (make install does it)")
    return path


@dataclass
class AzuriteEndpoints:
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def blob_url(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_url(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def table_url(self) -> str:
        return f"http://127.0.0.1:{self.table_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_url};QueueEndpoint={self.queue_url};TableEndpoint={self.table_url};"
        )


class Azurite:
    """One Azurite process. ``start()`` waits until all three services accept connections."""

    def __init__(self, location: Path | None = None, ports: AzuriteEndpoints | None = None,
                 log_file: Path | None = None) -> None:
        self._own_location = location is None
        self.location = Path(location) if location else Path(tempfile.mkdtemp(prefix="azurite-"))
        self.endpoints = ports or AzuriteEndpoints(free_port(), free_port(), free_port())
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "Azurite":
        self.location.mkdir(parents=True, exist_ok=True)
        e = self.endpoints
        args = [
            str(_azurite_bin()), "--silent", "--location", str(self.location),
            "--blobHost", "127.0.0.1", "--blobPort", str(e.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(e.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(e.table_port),
            # The Python SDKs may speak a newer storage API version than this Azurite knows.
            "--skipApiVersionCheck", "--disableProductStyleUrl",
        ]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        pending = {e.blob_port, e.queue_port, e.table_port}
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Azurite exited with code {self.proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Azurite did not listen on ports {sorted(pending)} within {timeout:.0f}s")
            for port in list(pending):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        pending.discard(port)
                except OSError:
                    pass
            if pending:
                time.sleep(0.1)
        return self

    def stop(self, remove_data: bool | None = None, grace: float = 3.0) -> None:
        """Asks Azurite to exit; it waits for clients' keep-alive connections to close,
        which SDK connection pools never do, so after ``grace`` seconds it is killed. (It
        writes each change to its files as it happens, and its table metadata at least
        every 5 s: a caller that must keep recent table writes waits that long first.)"""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if remove_data if remove_data is not None else self._own_location:
            shutil.rmtree(self.location, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same ports and data (for fault tests)."""
        self.stop(remove_data=False)
        self.start()

    def __enter__(self) -> "Azurite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def node_available() -> bool:
    return shutil.which("node") is not None or bool(os.environ.get("NODE"))
