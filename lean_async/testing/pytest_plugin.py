"""pytest fixtures for a fake Lean server: enable with
``pytest_plugins = ["lean_async.testing.pytest_plugin"]`` (needs pytest-asyncio).

``fake_lean`` is a started FakeLean, ``lean_client`` a LeanClient wired to it; both last
one test. Override the ``fake_lean_options`` fixture to pass keyword arguments to
FakeLean, e.g. ``return {"customers": 5, "faults": Faults(error_rate=0.1)}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .._client import LeanClient
from ._server import FakeLean

__all__ = ["fake_lean", "fake_lean_options", "lean_client"]


@pytest.fixture
def fake_lean_options() -> dict[str, Any]:
    """Keyword arguments for the ``fake_lean`` server; none by default."""
    return {}


@pytest_asyncio.fixture
async def fake_lean(fake_lean_options: dict[str, Any]) -> AsyncIterator[FakeLean]:
    async with FakeLean(**fake_lean_options) as server:
        yield server


@pytest_asyncio.fixture
async def lean_client(fake_lean: FakeLean) -> AsyncIterator[LeanClient]:
    async with fake_lean.client() as client:
        yield client
