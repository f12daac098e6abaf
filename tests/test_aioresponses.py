"""How a user mocks the client with aioresponses: no server, just canned answers."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from _samples import APP_TOKEN, CUSTOMER_ID, FAST_RETRY, LIST_PATH, SOURCE_ID, SOURCE_PATH
from aiohttp import ClientResponse
from aioresponses import aioresponses
from yarl import URL

from lean_async import LeanClient, NotFoundError, ServerError

BASE_URL = "https://sandbox.leantech.me"
LIST_URL = BASE_URL + LIST_PATH
SOURCE_URL = BASE_URL + SOURCE_PATH


class _ResponseWithStreamWriter(ClientResponse):
    """aioresponses 0.7.9 builds responses without the stream_writer argument that
    aiohttp 3.14 requires (pnuckowski/aioresponses#289); this supplies it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    monkeypatch.setattr("aioresponses.core.ClientResponse", _ResponseWithStreamWriter)
    with aioresponses() as mock:
        yield mock


async def test_list_is_decoded(mocked: aioresponses) -> None:
    mocked.get(LIST_URL, payload=[{"id": SOURCE_ID, "status": "ACTIVE", "bank_identifier": "X"}])
    async with LeanClient(app_token=APP_TOKEN, environ={}) as client:
        [source] = await client.payment_sources.list(CUSTOMER_ID)
    assert (source.id, source.status, source.bank_identifier) == (SOURCE_ID, "ACTIVE", "X")
    [request] = mocked.requests[("GET", URL(LIST_URL))]
    assert request.kwargs["headers"]["lean-app-token"] == APP_TOKEN


async def test_404_is_typed(mocked: aioresponses) -> None:
    mocked.get(
        SOURCE_URL,
        status=404,
        payload={"status": "UNKNOWN_PAYMENT_SOURCE", "message": "not found"},
        headers={"lean-correlation-id": "corr-1"},
    )
    async with LeanClient(app_token=APP_TOKEN, environ={}) as client:
        with pytest.raises(NotFoundError) as info:
            await client.payment_sources.get(CUSTOMER_ID, SOURCE_ID)
    assert info.value.code == "UNKNOWN_PAYMENT_SOURCE"
    assert info.value.request_id == "corr-1"


async def test_retries_are_counted(mocked: aioresponses) -> None:
    mocked.get(LIST_URL, status=503, repeat=True)
    async with LeanClient(app_token=APP_TOKEN, retry=FAST_RETRY, environ={}) as client:
        with pytest.raises(ServerError):
            await client.payment_sources.list(CUSTOMER_ID)
    assert len(mocked.requests[("GET", URL(LIST_URL))]) == FAST_RETRY.max_retries + 1


async def test_delete_sends_its_reason(mocked: aioresponses) -> None:
    mocked.delete(SOURCE_URL, status=204)
    async with LeanClient(app_token=APP_TOKEN, environ={}) as client:
        await client.payment_sources.delete(CUSTOMER_ID, SOURCE_ID)
    [request] = mocked.requests[("DELETE", URL(SOURCE_URL))]
    assert request.kwargs["data"] == b'{"reason":"USER_REQUESTED"}'
