"""A local certificate authority for the development stack.

The simulator serves HTTPS with a server certificate for ``127.0.0.1`` and
``localhost`` issued by a CA generated here with ``trustme``; clients are
pointed at ``ca.pem`` (nothing turns certificate checks off). The files are
generated once per directory and reused afterwards, so every process of the
stack trusts the same CA.
"""
from __future__ import annotations

import os
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = ["CertPaths", "ensure_certs"]

CA_FILE = "ca.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
IDENTITIES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class CertPaths:
    ca_pem: Path
    server_cert_pem: Path  # the server certificate followed by its chain
    server_key_pem: Path

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the local CA (and only it)."""
        return ssl.create_default_context(cafile=str(self.ca_pem))


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Serialise generation between processes that start at the same time."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        yield
        return
    with open(directory / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def ensure_certs(directory: Path) -> CertPaths:
    """Return the CA and server certificate in ``directory``, generating them
    (with trustme) if any of the three files is missing."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = CertPaths(
        ca_pem=directory / CA_FILE,
        server_cert_pem=directory / SERVER_CERT_FILE,
        server_key_pem=directory / SERVER_KEY_FILE,
    )
    if all(p.is_file() for p in (paths.ca_pem, paths.server_cert_pem, paths.server_key_pem)):
        return paths
    with _exclusive(directory):
        if all(p.is_file() for p in (paths.ca_pem, paths.server_cert_pem, paths.server_key_pem)):
            return paths
        import trustme

        ca = trustme.CA(organization_name="devstack local CA")
        leaf = ca.issue_cert(*IDENTITIES, common_name="127.0.0.1")
        chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
        # Key and certificate first, the CA last: a reader that finds the CA
        # finds a complete set.
        _write_atomic(paths.server_key_pem, leaf.private_key_pem.bytes(), 0o600)
        _write_atomic(paths.server_cert_pem, chain)
        _write_atomic(paths.ca_pem, ca.cert_pem.bytes())
    return paths
