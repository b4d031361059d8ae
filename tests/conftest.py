"""Shared fixtures: one real Azurite for the whole run (started and stopped here)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    from devstack.azurite import Azurite

    az = Azurite(location=tmp_path_factory.mktemp("azurite"),
                 log_file=tmp_path_factory.mktemp("logs") / "azurite.log")
    az.start()
    yield az
    az.stop(remove_data=True)


@pytest.fixture
def storage_conn(azurite) -> str:
    return azurite.endpoints.connection_string


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names, so tests sharing one Azurite do not collide."""
    return uuid.uuid4().hex[:10]
