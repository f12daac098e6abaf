"""Running a command's coroutine: uvloop when installed, and SIGINT/SIGTERM as a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from .._event_loop import event_loop_runner

__all__ = ["Interrupted", "run"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """The command was stopped by a signal; ``exit_status`` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_status = 128 + signum
        super().__init__(signal.Signals(signum).name)


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run ``main()`` to its exit status. SIGINT and SIGTERM cancel it, so that its
    ``finally`` blocks run, and then raise ``Interrupted``."""
    return event_loop_runner()(_stoppable(main))


async def _stoppable(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def stop(signum: int) -> None:
        if not received:
            received.append(signum)
            task.cancel()

    installed = []
    for signum in _STOP_SIGNALS:
        # Not on Windows: there Ctrl-C stays a KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop, signum)
            installed.append(signum)
    try:
        return await main()
    except asyncio.CancelledError:
        if not received:
            raise
        raise Interrupted(received[0]) from None
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
