"""An event loop with a virtual clock, for tests of timing logic: the clock stands still
while callbacks run and jumps to the next timer when nothing else is ready, so a wait of
30 s takes no time and times can be asserted exactly. A wait that nothing can end (no
callback ready, no timer, no I/O) raises Stalled at once instead of hanging: every wait
needs a waker. Only for code that does no real I/O (no sockets)."""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Stalled(RuntimeError):
    """Every task waits, and nothing is left that could wake one."""


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = selectors.DefaultSelector()
        super().__init__(selector)
        self._virtual_now = 0.0
        poll = selector.select

        def select(timeout: float | None = None) -> list[Any]:
            events = poll(0)  # never blocks: the time a real loop would sleep passes at once
            if events or timeout == 0:
                return events
            if timeout is None:
                raise Stalled("every task waits and nothing can wake one")
            self._virtual_now += timeout
            return events

        selector.select = select  # type: ignore[method-assign]

    def time(self) -> float:
        return self._virtual_now


def run_in_virtual_time(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs ``main()`` to its end on a VirtualTimeLoop (the virtual clock starts at 0),
    then cancels what is left and closes the loop, as ``asyncio.run`` does (by hand:
    ``asyncio.Runner`` and its ``loop_factory`` are Python 3.11+)."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:  # (an empty gather would make its future on another loop in 3.10)
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def in_virtual_time(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """An async test run on a VirtualTimeLoop (a plain function to pytest)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        run_in_virtual_time(lambda: test(*args, **kwargs))

    return run
