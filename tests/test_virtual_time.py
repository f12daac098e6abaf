"""The virtual-clock loop the sweep's timing tests run on: it must itself be able to fail."""

from __future__ import annotations

import asyncio
import time

import pytest
from _virtual_time import Stalled, run_in_virtual_time

pytestmark = pytest.mark.timeout(30)


def test_an_hour_of_timers_passes_in_no_real_time_and_exactly_on_the_virtual_clock() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen = [loop.time()]
        await asyncio.sleep(3600)
        seen.append(loop.time())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(100), 2.5)
        seen.append(loop.time())
        return seen

    started = time.monotonic()
    assert run_in_virtual_time(main) == [0.0, 3600.0, 3602.5]
    assert time.monotonic() - started < 5  # no real hour: a generous bound for a busy machine


def test_a_wait_that_nothing_can_end_fails_at_once() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # no waker

    with pytest.raises(Stalled):
        run_in_virtual_time(main)


def test_the_clock_stands_still_while_callbacks_run() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        before = loop.time()
        time.sleep(0.01)  # noqa: ASYNC251 (real time passes; the virtual clock does not)
        await asyncio.sleep(0)
        return loop.time() - before

    assert run_in_virtual_time(main) == 0.0
