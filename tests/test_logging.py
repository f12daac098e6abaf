"""What the client logs under ``lean_async``, and that no secret ever reaches a log record,
a repr, or an exception chain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import pytest
from _samples import (
    ACCESS_TOKEN,
    APP_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    CUSTOMER_ID,
    LIST_PATH,
    SECRETS,
    TOKEN_PATH,
)
from _server import LocalServer, drop_connection, issue_tokens, lean_error, reply

from lean_async import LeanClient, LeanError

MakeClient = Callable[..., LeanClient]


def _exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _texts(caplog: pytest.LogCaptureFixture, *extra: object) -> list[str]:
    texts = [repr(thing) for thing in extra] + [str(thing) for thing in extra]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
    return texts


def _assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {text!r}"


async def test_each_exchange_is_logged_at_debug_with_its_details(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(LIST_PATH, lean_error(404, "UNKNOWN_PAYMENT_SOURCE", "x", request_id="corr-77"))
    caplog.set_level(logging.DEBUG, logger="lean_async")
    with pytest.raises(LeanError):
        await make_client().payment_sources.list(CUSTOMER_ID)
    [record] = [r for r in caplog.records if r.levelno == logging.DEBUG and " -> " in r.msg]
    assert record.name == "lean_async"
    message = record.getMessage()
    for part in ("GET", LIST_PATH, "404", "attempt 1", "corr-77", " ms"):
        assert part in message


async def test_retries_are_logged_at_info(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(LIST_PATH, reply(503), reply(429), reply(json_body=[]))
    caplog.set_level(logging.INFO, logger="lean_async")
    await make_client().payment_sources.list(CUSTOMER_ID)
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(retries) == 2
    assert "HTTP 503" in retries[0] and "HTTP 429" in retries[1]


async def test_retry_records_carry_their_cause_for_counting(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(LIST_PATH, reply(503), drop_connection(), reply(json_body=[]))
    caplog.set_level(logging.INFO, logger="lean_async")
    await make_client().payment_sources.list(CUSTOMER_ID)
    causes = [getattr(r, "retry_cause", None) for r in caplog.records if r.levelno == logging.INFO]
    assert causes == ["HTTP 503", "APIConnectionError"]


async def test_a_call_that_gives_up_says_so_at_debug(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(LIST_PATH, drop_connection(), drop_connection(), drop_connection())
    caplog.set_level(logging.DEBUG, logger="lean_async")
    with pytest.raises(LeanError):
        await make_client(max_retries=2).payment_sources.list(CUSTOMER_ID)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert sum("connection failed" in m and "(attempt" in m for m in messages) == 3
    assert any("failed after 3 attempt(s)" in m for m in messages)


async def test_nothing_is_logged_above_debug_for_a_clean_call(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await make_client().payment_sources.list(CUSTOMER_ID)
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


async def test_a_token_refreshed_before_it_expires_is_one_info_record_without_the_token(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """What ``-v`` shows as a token refresh; the first fetch of a token is no refresh."""
    caplog.set_level(logging.DEBUG)
    server.script(TOKEN_PATH, issue_tokens(expires_in=0.2))
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await client.payment_sources.list(CUSTOMER_ID)
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
    await asyncio.sleep(0.25)  # past its refresh time (shortly before it runs out)
    await client.payment_sources.list(CUSTOMER_ID)
    assert len(server.seen(TOKEN_PATH)) == 2
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1, [r.getMessage() for r in infos]
    assert "refreshing the access token" in infos[0].getMessage()
    assert "issued-token" not in infos[0].getMessage()
    _assert_no_secret(_texts(caplog, client))


async def test_failing_oauth_flow_leaks_no_secret(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's included
    server.script(TOKEN_PATH, reply(503), issue_tokens())  # a retried token fetch
    server.script(LIST_PATH, reply(401), drop_connection(), reply(500))
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with pytest.raises(LeanError) as info:
        await client.payment_sources.list(CUSTOMER_ID)
    assert len(server.seen(TOKEN_PATH)) >= 2
    _assert_no_secret(_texts(caplog, client, client._transport, *_exception_chain(info.value)))


async def test_rejected_client_credentials_leak_no_secret(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"error": "invalid_client", "error_description": "bad client"}
    server.script(TOKEN_PATH, reply(401, json_body=body))
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with pytest.raises(LeanError) as info:
        await client.customer_token(CUSTOMER_ID)
    _assert_no_secret(_texts(caplog, client, *_exception_chain(info.value)))


async def test_malformed_token_answer_leaks_no_token(
    server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(TOKEN_PATH, reply(body=b'{"access_token": "issued-token-9" "expires_in": 1}'))
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with pytest.raises(LeanError) as info:
        await client.payment_sources.list(CUSTOMER_ID)
    _assert_no_secret(_texts(caplog, *_exception_chain(info.value)))


@pytest.mark.parametrize(
    "options", [{"app_token": APP_TOKEN}, {"access_token": ACCESS_TOKEN}], ids=["app", "bearer"]
)
async def test_failing_requests_with_static_credentials_leak_no_secret(
    options: dict[str, str],
    server: LocalServer,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(LIST_PATH, reply(500), drop_connection(), lean_error(401, "X", "denied"))
    client = make_client(**options)
    with pytest.raises(LeanError) as info:
        await client.payment_sources.list(CUSTOMER_ID)
    _assert_no_secret(_texts(caplog, client, *_exception_chain(info.value)))
