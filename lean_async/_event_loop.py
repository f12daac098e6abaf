"""The event loop the command-line entry points run on."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def event_loop_runner() -> Callable[[Coroutine[Any, Any, T]], T]:
    """``uvloop.run`` when the "speed" extra is installed, else ``asyncio.run``."""
    with contextlib.suppress(ImportError):
        runner: Callable[[Coroutine[Any, Any, T]], T] = importlib.import_module("uvloop").run
        return runner
    return asyncio.run
