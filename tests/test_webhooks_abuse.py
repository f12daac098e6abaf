"""The receiver under clients that are not Lean: no or malformed signatures, bodies too
large, too slow, too many at once, and clients that hang up mid-body. Raw sockets on
127.0.0.1, so that a test controls every byte and when it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _apps import served

from lean_async import _webhook_receiver, webhooks
from lean_async._webhook_body import BodyBudget, FreedMemory, malloc_trim
from tests.test_webhooks_receiver import PATH, SECRET, Recorder, delivery, signature

pytestmark = pytest.mark.timeout(30)

WELL_FORMED = "sha512=" + "ab" * 64  # the right form, the wrong digest


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[tuple[int, webhooks.WebhookReceiver, Recorder]]:
    handler = Recorder()
    app = webhooks.receiver(SECRET, handler, path=PATH, **options)
    async with served(app) as port:
        yield port, app[webhooks.RECEIVER_KEY], handler


def request_head(length: int | None, signature_header: str | None) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {length}")
    if signature_header is not None:
        lines.append(f"{webhooks.SIGNATURE_HEADER}: {signature_header}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def status_and_close(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of the answer, and whether the server then closed the connection."""
    status_line = await asyncio.wait_for(reader.readline(), 5)
    status = int(status_line.split()[1])
    try:
        await asyncio.wait_for(reader.read(), 2)  # the rest of the answer, then EOF
        closed = True
    except ConnectionResetError:
        # Closed with some of our body unread, the server's kernel resets the connection.
        closed = True
    except asyncio.TimeoutError:
        closed = False
    return status, closed


@contextlib.asynccontextmanager
async def connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def post(port: int, body: bytes, signature_header: str | None = "sign") -> int:
    header = signature(body) if signature_header == "sign" else signature_header
    async with connection(port) as (reader, writer):
        writer.write(request_head(len(body), header) + body)
        status_line = await asyncio.wait_for(reader.readline(), 5)
        return int(status_line.split()[1])


# --- refused before the body is read ----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("", "empty"),
        ("sha512=not-a-digest", "not hex nor base64"),
        ("sha512=" + "ab" * 10, "too short"),
        ("sha256=" + "ab" * 32, "another algorithm"),
        ("ab" * 64, "no algorithm"),
    ],
)
async def test_a_signature_header_of_the_wrong_form_is_refused_before_the_body(
    header: str | None, why: str
) -> None:
    async with serving() as (port, receiver, handler), connection(port) as (reader, writer):
        writer.write(request_head(1000, header))  # and never the body
        status, closed = await status_and_close(reader)
    assert (status, closed) == (401, True), why
    assert receiver.stats.bad_signature == 1
    assert handler.events == []


async def test_a_declared_length_over_the_limit_is_refused_before_the_body() -> None:
    async with serving(max_body_size=1000) as (port, receiver, _), connection(port) as (r, w):
        w.write(request_head(1001, WELL_FORMED))
        assert await status_and_close(r) == (413, True)
    assert receiver.stats.too_large == 1


async def test_a_well_formed_header_with_the_wrong_digest_is_refused_after_the_body() -> None:
    async with serving() as (port, receiver, handler):
        assert await post(port, delivery(), WELL_FORMED) == 401
    assert receiver.stats.bad_signature == 1
    assert handler.events == []


# --- deadline -----------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_slower_than_the_deadline_is_answered_408_and_closed(chunked: bool) -> None:
    body = delivery()
    async with serving(body_timeout=0.3) as (port, receiver, handler):
        async with connection(port) as (reader, writer):
            writer.write(request_head(None if chunked else len(body), signature(body)))
            first = b"1\r\n" + body[:1] + b"\r\n" if chunked else body[:1]
            writer.write(first)  # a byte, then nothing
            started = asyncio.get_running_loop().time()
            status, closed = await status_and_close(reader)
            waited = asyncio.get_running_loop().time() - started
        assert (status, closed) == (408, True)
        assert 0.25 < waited < 2
        assert receiver.stats.too_slow == 1
        assert receiver.body_memory == 0
        # The receiver still serves others.
        assert await post(port, delivery("evt-after")) == 200
    assert handler.ids == ["evt-after"]


# --- memory budget ------------------------------------------------------------------------


async def test_large_bodies_beyond_the_budget_get_503_while_small_deliveries_still_get_200() -> (
    None
):
    large = 200_000  # each over the small-body size
    budget = 1_000_000  # room for three large bodies in the large share (750,000 bytes)
    async with serving(max_body_memory=budget, body_timeout=5) as (port, receiver, handler):
        held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            for _ in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request_head(large + 1, WELL_FORMED) + b"x" * large)
                held.append((reader, writer))
            for _ in range(100):  # until the server holds what they sent
                if receiver.body_memory >= 3 * large:
                    break
                await asyncio.sleep(0.02)
            assert receiver.body_memory == 3 * large
            async with connection(port) as (reader, writer):
                writer.write(request_head(large, WELL_FORMED) + b"x" * large)
                status, closed = await status_and_close(reader)
            assert (status, closed) == (503, True)
            assert receiver.stats.no_room == 1
            # A real delivery fits in the share kept for small bodies.
            assert await post(port, delivery("evt-small")) == 200
        finally:
            for _, writer in held:
                writer.close()
        for _ in range(100):
            if receiver.body_memory == 0:
                break
            await asyncio.sleep(0.02)
        assert receiver.body_memory == 0
    assert handler.ids == ["evt-small"]


@pytest.mark.parametrize(
    ("used", "held", "more", "fits"),
    [
        (0, 0, 100, True),
        (900, 0, 100, True),  # a small body may use the whole budget
        (901, 0, 100, False),
        (700, 0, 100, True),  # a small body growing within small_body: whole budget
        (600, 100, 100, True),  # a large body within the large share (750)
        (700, 100, 100, False),  # a large body past the large share
        (0, 200, 800, False),  # larger than the large share on its own
    ],
)
def test_body_budget(used: int, held: int, more: int, fits: bool) -> None:
    budget = BodyBudget(limit=1000, small_body=150)
    budget.used = used
    assert budget.take(held, more) is fits
    assert budget.used == used + (more if fits else 0)


@pytest.mark.parametrize(
    ("used", "declared", "admitted"),
    [
        (1000, None, True),  # undeclared (chunked): checked as it arrives
        (1000, 150, True),  # small: checked as it arrives
        (0, 750, True),
        (1, 750, False),  # large and more than the large share has left
        (600, 151, False),
    ],
)
def test_body_budget_admits_a_declared_large_body_only_if_it_fits(
    used: int, declared: int | None, admitted: bool
) -> None:
    budget = BodyBudget(limit=1000, small_body=150)
    budget.used = used
    assert budget.admits(declared) is admitted


# --- clients that hang up -----------------------------------------------------------------


async def test_a_client_hanging_up_mid_body_is_logged_in_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = delivery()
    caplog.set_level(logging.DEBUG)
    async with serving() as (port, receiver, handler):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_head(len(body), signature(body)) + body[:10])
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.transport.abort()
        for _ in range(100):
            if receiver.stats.disconnected:
                break
            await asyncio.sleep(0.02)
        assert receiver.stats.disconnected == 1
        assert receiver.body_memory == 0
        assert await post(port, delivery("evt-after")) == 200
    above_debug = [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert len([r for r in above_debug if "hung up" in r.getMessage()]) == 1
    assert [r for r in caplog.records if r.exc_info] == []
    assert handler.ids == ["evt-after"]


# --- after a flood ------------------------------------------------------------------------


async def test_freed_memory_goes_back_to_the_system_once_a_burst_is_over() -> None:
    trimmed = asyncio.Event()
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        loop.call_soon_threadsafe(trimmed.set)
        return 1

    loop = asyncio.get_running_loop()
    freed = FreedMemory(burst=1000, quiet=0.05, trim=trim)
    freed.note(600)
    await asyncio.sleep(0.1)
    assert calls == []  # no burst yet
    for _ in range(5):  # a burst still going on: not yet
        freed.note(600)
        await asyncio.sleep(0.02)
    assert calls == []
    await asyncio.wait_for(trimmed.wait(), 2)
    assert calls == [0]


def test_a_receiver_trims_with_glibcs_malloc_trim_where_there_is_one() -> None:
    trim = malloc_trim()
    assert trim is None or trim(0) in (0, 1)


async def test_each_kind_of_refusal_is_logged_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="lean_async.webhooks")
    async with serving() as (port, receiver, _):
        for _ in range(5):
            assert await post(port, delivery(), None) == 401
        assert await post(port, b"{}", "sign") == 400
        assert await post(port, delivery(), WELL_FORMED) == 401
    assert receiver.stats.bad_signature == 6
    messages = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(messages) == 2  # one 401, one 400


def test_a_refusal_after_a_quiet_interval_says_how_many_went_unlogged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(_webhook_receiver.time, "monotonic", lambda: now[0])
    log = _webhook_receiver._RefusalLog(interval=10)
    caplog.set_level(logging.WARNING, logger="lean_async.webhooks")
    for second in (0, 1, 2, 9, 11):
        now[0] = 100.0 + second
        log(logging.WARNING, "408", "slow body from %s", "x")
    assert [r.getMessage() for r in caplog.records] == [
        "slow body from x",
        "slow body from x (and 3 more since the last such line)",
    ]
