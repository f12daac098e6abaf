"""Bodies that are not what they claim: each success body that is not a payment source is a
DecodeError, never retried; each error body of any shape still gives the typed error; and
no body is read past max_response_bytes, however it is framed or compressed."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable

import pytest
from _pool import connections_in_use
from _samples import CUSTOMER_ID, LIST_PATH, SOURCE_ID, SOURCE_PATH
from _server import LocalServer, RawServer, endless_chunks, reply, response_head

from lean_async import DecodeError, LeanClient, ResponseTooLargeError, ServerError
from lean_async._constants import DEFAULT_MAX_RESPONSE_BYTES

MakeClient = Callable[..., LeanClient]
DEEPLY_NESTED = b"[" * 100_000 + b"]" * 100_000

NOT_A_PAYMENT_SOURCE = {
    "html from a proxy": b"<html><body><h1>Welcome to the captive portal</h1></body></html>",
    "empty": b"",
    "whitespace": b" \r\n",
    "invalid utf-8": b'[{"id": "\xff\xfe\xfd"}]',
    "invalid utf-8 outside strings": b"[\xff]",
    "invalid utf-8 in an error-shaped object": b'{"status": "\xff", "message": "\xfe"}',
    "null": b"null",
    "number": b"42",
    "string": b'"ok"',
    "list of numbers": b"[1, 2, 3]",
    "id of the wrong type": b'[{"id": 7}]',
    "deeply nested": DEEPLY_NESTED,
    "trailing garbage": b"[] []",
}


@pytest.mark.parametrize("body", NOT_A_PAYMENT_SOURCE.values(), ids=NOT_A_PAYMENT_SOURCE.keys())
async def test_list_answered_200_with_a_body_that_is_no_list_is_a_decode_error_sent_once(
    body: bytes, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(body=body, content_type="text/html"))
    client = make_client()
    with pytest.raises(DecodeError):
        await client.payment_sources.list(CUSTOMER_ID)
    assert len(server.requests) == 1
    assert connections_in_use(client) == 0


@pytest.mark.parametrize("body", NOT_A_PAYMENT_SOURCE.values(), ids=NOT_A_PAYMENT_SOURCE.keys())
async def test_get_answered_200_with_a_body_that_is_no_source_is_a_decode_error_sent_once(
    body: bytes, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(SOURCE_PATH, reply(body=body))
    with pytest.raises(DecodeError):
        await make_client().payment_sources.get(CUSTOMER_ID, SOURCE_ID)
    assert len(server.requests) == 1


@pytest.mark.parametrize("body", NOT_A_PAYMENT_SOURCE.values(), ids=NOT_A_PAYMENT_SOURCE.keys())
async def test_error_status_with_a_body_of_any_shape_is_the_typed_error(
    body: bytes, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(503, body=body))
    with pytest.raises(ServerError) as info:
        await make_client(max_retries=0).payment_sources.list(CUSTOMER_ID)
    assert info.value.body == body
    assert info.value.code is None


async def test_decode_error_message_is_short_whatever_the_body(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(body=b"<html>" + b"x" * 100_000))
    with pytest.raises(DecodeError) as info:
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert len(str(info.value)) < 300


# -- bodies larger than any real answer ----------------------------------------------------


async def test_default_cap_is_a_few_mib() -> None:
    assert 1 * 1024 * 1024 <= DEFAULT_MAX_RESPONSE_BYTES <= 16 * 1024 * 1024


async def test_declared_length_past_the_cap_is_refused_before_the_body_is_read(
    make_client: MakeClient,
) -> None:
    async def conversation(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await raw.read_request(reader)
        writer.write(response_head(length=1024**3) + b"[")
        await asyncio.sleep(60)  # the gigabyte never comes; the client must not wait for it

    async with RawServer(conversation) as raw:
        client = make_client(base_url=raw.url)
        started = time.monotonic()
        with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
            await client.payment_sources.list(CUSTOMER_ID)
        assert time.monotonic() - started < 1.0
        assert raw.requests == 1  # not retried
        assert connections_in_use(client) == 0


async def test_chunked_body_past_the_cap_is_cut_off_at_the_cap(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, endless_chunks(), reply(json_body=[{"id": SOURCE_ID}]))
    client = make_client(max_response_bytes=256 * 1024)
    with pytest.raises(ResponseTooLargeError):
        await asyncio.wait_for(client.payment_sources.list(CUSTOMER_ID), 5)
    assert connections_in_use(client) == 0
    # The next call reads its own answer, not the rest of the endless one.
    [source] = await client.payment_sources.list(CUSTOMER_ID)
    assert source.id == SOURCE_ID


async def test_chunked_body_past_the_default_cap_is_refused(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, endless_chunks())
    with pytest.raises(ResponseTooLargeError):
        await asyncio.wait_for(make_client().payment_sources.list(CUSTOMER_ID), 10)


async def test_compressed_body_inflating_past_the_cap_is_refused(
    server: LocalServer, make_client: MakeClient
) -> None:
    # A few KiB on the wire, 64 MiB once inflated: Content-Length alone says nothing.
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", 9)
    assert len(bomb) < 1024 * 1024
    server.script(LIST_PATH, reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(ResponseTooLargeError):
        await make_client(max_response_bytes=1024 * 1024).payment_sources.list(CUSTOMER_ID)


async def test_compressed_body_within_the_cap_is_decoded(
    server: LocalServer, make_client: MakeClient
) -> None:
    body = gzip.compress(b'[{"id": "%s"}]' % SOURCE_ID.encode())
    server.script(LIST_PATH, reply(body=body, headers={"Content-Encoding": "gzip"}))
    [source] = await make_client().payment_sources.list(CUSTOMER_ID)
    assert source.id == SOURCE_ID


async def test_body_of_exactly_the_cap_is_read(
    server: LocalServer, make_client: MakeClient
) -> None:
    body = b"[" + b" " * 1022 + b"]"
    server.script(LIST_PATH, reply(body=body))
    assert await make_client(max_response_bytes=1024).payment_sources.list(CUSTOMER_ID) == []
