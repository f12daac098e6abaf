"""The handler of the kill test's receiver process: takes a while, and journals when each
run starts and ends (one line each, appended with one write, which a SIGKILL cannot split)."""

from __future__ import annotations

import asyncio
import os
import random

from lean_async import webhooks

_JOURNAL = os.open(os.environ["KILL_JOURNAL"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
_PID = os.getpid()


def _note(what: str, event_id: str) -> None:
    os.write(_JOURNAL, f"{what} {event_id} {_PID}\n".encode())


async def handle(event: webhooks.WebhookEvent) -> None:
    _note("start", event.event_id)
    await asyncio.sleep(random.uniform(0.02, 0.08))
    _note("end", event.event_id)
