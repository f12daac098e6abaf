"""The on_request/on_retry hooks: what each attempt and each retry tells them, against a
local server."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import pytest
from _samples import (
    APP_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    CUSTOMER_ID,
    LIST_PATH,
    SECRETS,
    SOURCE_ID,
    SOURCE_PATH,
    TOKEN_PATH,
)
from _server import LocalServer, drop_connection, issue_tokens, lean_error, reply

from lean_async import (
    APIConnectionError,
    AuthenticationError,
    LeanClient,
    RequestEvent,
    RetryEvent,
    ServerError,
)

MakeClient = Callable[..., LeanClient]


class Recorder:
    def __init__(self) -> None:
        self.requests: list[RequestEvent] = []
        self.retries: list[RetryEvent] = []

    def hooks(self) -> dict[str, Any]:
        return {"on_request": self.requests.append, "on_retry": self.retries.append}


async def test_a_503_then_success_gives_two_request_events_and_one_retry_event(
    server: LocalServer, make_client: MakeClient
) -> None:
    seen = Recorder()
    server.script(
        LIST_PATH,
        lean_error(503, "UNAVAILABLE", "busy", request_id="req-a"),
        reply(json_body=[], headers={"lean-correlation-id": "req-b"}),
    )
    assert await make_client(**seen.hooks()).payment_sources.list(CUSTOMER_ID) == []
    first, second = seen.requests
    assert (first.method, first.path, first.attempt, first.status) == ("GET", LIST_PATH, 1, 503)
    assert first.request_id == "req-a"
    assert isinstance(first.error, ServerError)
    assert (second.attempt, second.status, second.request_id, second.error) == (
        2,
        200,
        "req-b",
        None,
    )
    assert all(event.elapsed >= 0 for event in seen.requests)
    (retry,) = seen.retries
    assert (retry.method, retry.path, retry.attempt, retry.cause, retry.status) == (
        "GET",
        LIST_PATH,
        1,
        "HTTP 503",
        503,
    )
    assert retry.error is first.error
    assert retry.wait >= 0


async def test_a_connection_error_gives_status_none_and_its_class_as_cause(
    server: LocalServer, make_client: MakeClient
) -> None:
    seen = Recorder()
    server.script(SOURCE_PATH, drop_connection(), reply(204))
    await make_client(**seen.hooks()).payment_sources.delete(CUSTOMER_ID, SOURCE_ID)
    assert [(e.status, type(e.error)) for e in seen.requests] == [
        (None, APIConnectionError),
        (204, type(None)),
    ]
    assert seen.requests[0].request_id is None
    (retry,) = seen.retries
    assert (retry.status, retry.cause) == (None, "APIConnectionError")


async def test_a_401_refresh_is_an_attempt_with_no_retry_event(
    server: LocalServer, make_client: MakeClient
) -> None:
    seen = Recorder()
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **seen.hooks())
    server.script(TOKEN_PATH, issue_tokens())
    server.script(LIST_PATH, reply(401), reply(json_body=[]))
    await client.payment_sources.list(CUSTOMER_ID)
    calls = [(e.method, e.path, e.attempt, e.status) for e in seen.requests]
    assert calls == [
        ("POST", TOKEN_PATH, 1, 200),
        ("GET", LIST_PATH, 1, 401),
        ("POST", TOKEN_PATH, 1, 200),
        ("GET", LIST_PATH, 2, 200),
    ]
    assert isinstance(seen.requests[1].error, AuthenticationError)
    assert seen.retries == []


async def test_the_last_failed_attempt_has_a_request_event_and_no_retry_event(
    server: LocalServer, make_client: MakeClient
) -> None:
    seen = Recorder()
    server.script(LIST_PATH, reply(500))
    with pytest.raises(ServerError):
        await make_client(max_retries=2, **seen.hooks()).payment_sources.list(CUSTOMER_ID)
    assert [e.attempt for e in seen.requests] == [1, 2, 3]
    assert [e.attempt for e in seen.retries] == [1, 2]


@pytest.mark.parametrize("which", ["on_request", "on_retry", "both"])
async def test_a_hook_that_raises_does_not_break_the_call_and_is_logged_once(
    server: LocalServer,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
    which: str,
) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("broken hook")

    hooks = {"on_request": broken, "on_retry": broken}
    if which != "both":
        hooks = {which: broken}
    client = make_client(**hooks)
    server.script(LIST_PATH, reply(503), reply(503), reply(json_body=[]))
    with caplog.at_level(logging.DEBUG, logger="lean_async"):
        assert await client.payment_sources.list(CUSTOMER_ID) == []
        assert await client.payment_sources.list(CUSTOMER_ID) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(hooks)
    assert all("hook" in r.getMessage() for r in warnings)
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno == logging.DEBUG]
    assert tracebacks and all("broken hook" in str(r.exc_info[1]) for r in tracebacks)


@pytest.mark.parametrize("oauth", [False, True])
async def test_no_credential_reaches_any_event_field(
    server: LocalServer, make_client: MakeClient, oauth: bool
) -> None:
    seen = Recorder()
    options: dict[str, Any] = seen.hooks()
    if oauth:
        options.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        server.script(TOKEN_PATH, reply(503), issue_tokens())
    server.script(LIST_PATH, reply(401) if oauth else reply(503), reply(json_body=[]))
    await make_client(**options).payment_sources.list(CUSTOMER_ID)
    events: list[Any] = [*seen.requests, *seen.retries]
    assert seen.retries
    for event in events:
        for field in dataclasses.fields(event):
            value = getattr(event, field.name)
            text = f"{value!r} {value}"
            if value is not None and hasattr(value, "headers"):
                text += repr(dict(value.headers)) + repr(getattr(value, "body", b""))
            for secret in (*SECRETS, APP_TOKEN, CLIENT_ID + ":" + CLIENT_SECRET):
                assert secret not in text, (field.name, secret)


async def test_without_hooks_nothing_is_called(
    server: LocalServer, make_client: MakeClient
) -> None:
    client = make_client()
    server.script(LIST_PATH, reply(503), reply(json_body=[]))
    assert await client.payment_sources.list(CUSTOMER_ID) == []
    assert client._transport._on_request is None and client._transport._on_retry is None
