"""An embedded fake Lean server for tests, benchmarks and offline development.

``async with FakeLean(customers=100, seed=1) as server:`` serves Lean's Payment Sources
API and its OAuth2 token endpoint on 127.0.0.1, with ``Faults`` to inject. Also a pytest
plugin (``pytest_plugins = ["lean_async.testing.pytest_plugin"]``) and a process
(``python -m lean_async.testing``).
"""

from ._data import BANKS, Bank, DataSet
from ._faults import Faults
from ._server import FakeLean, serve
from ._stats import Stats
from ._webhooks import Delivery

__all__ = ["BANKS", "Bank", "DataSet", "Delivery", "FakeLean", "Faults", "Stats", "serve"]
