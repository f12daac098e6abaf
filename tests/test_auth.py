"""OAuth2 token handling without a server: lifetime margins, reuse, single flight, 401s."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import sys
from collections.abc import Mapping
from typing import Any

import msgspec
import pytest

from lean_async import ClientClosedError, ConfigurationError, DecodeError
from lean_async._auth import (
    ClientCredentialsAuth,
    Credentials,
    StaticAuth,
    _being_cancelled,
    make_auth,
    refresh_after,
    token_form,
)

BASE = {"User-Agent": "lean-async/test"}
TOKEN_URL = "https://auth.example/oauth2/token"
CREDENTIALS = Credentials(client_id="client-1", client_secret="secret-1")


class FakeTokenEndpoint:
    """A "post a form, get bytes" function: hands out token-1, token-2, ... after
    ``delay`` seconds, keeping each form it was sent."""

    def __init__(self, expires_in: float | None = 3600, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.forms: list[tuple[str, dict[str, str]]] = []

    @property
    def scopes(self) -> list[str]:
        return [form["scope"] for _, form in self.forms]

    async def __call__(self, url: str, form: Mapping[str, str]) -> bytes:
        self.forms.append((url, dict(form)))
        await asyncio.sleep(self.delay)
        token = {"access_token": f"token-{len(self.forms)}", "token_type": "bearer"}
        if self.expires_in is not None:
            token["expires_in"] = self.expires_in  # type: ignore[assignment]
        return msgspec.json.encode(token)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _auth(endpoint: FakeTokenEndpoint, clock: Clock | None = None) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(BASE, endpoint, TOKEN_URL, CREDENTIALS, clock=clock or Clock())


@pytest.mark.parametrize(
    ("expires_in", "after"),
    [
        (3599, 3539.0),  # an hour's token: refreshed a minute early
        (600, 540.0),
        (60, 54.0),
        (10, 9.0),  # short-lived tokens keep most of their life
        (2, 1.8),
        (0.5, 0.45),
        (0, 0.0),
        (-0.5, 0.0),
        (-5, 0.0),
        (None, float("inf")),
    ],
)
def test_refresh_margin_scales_with_lifetime(expires_in: float | None, after: float) -> None:
    assert refresh_after(expires_in) == pytest.approx(after)


def test_the_grant_form_carries_the_client_credentials_and_the_scope() -> None:
    assert token_form(CREDENTIALS, "customer.42") == {
        "client_id": "client-1",
        "client_secret": "secret-1",
        "grant_type": "client_credentials",
        "scope": "customer.42",
    }


async def test_token_is_fetched_on_first_use_with_scope_api() -> None:
    endpoint = FakeTokenEndpoint()
    headers = await _auth(endpoint).headers()
    assert endpoint.forms == [(TOKEN_URL, token_form(CREDENTIALS, "api"))]
    assert headers["Authorization"] == "Bearer token-1"
    assert headers["User-Agent"] == BASE["User-Agent"]
    assert "lean-app-token" not in headers


async def test_token_is_reused_until_shortly_before_expiry() -> None:
    endpoint, clock = FakeTokenEndpoint(expires_in=100), Clock()
    auth = _auth(endpoint, clock)
    await auth.headers()
    clock.now += 89.9
    assert (await auth.headers())["Authorization"] == "Bearer token-1"
    clock.now += 0.2
    assert (await auth.headers())["Authorization"] == "Bearer token-2"
    assert len(endpoint.scopes) == 2


async def test_concurrent_callers_share_one_token_request() -> None:
    endpoint = FakeTokenEndpoint(delay=0.02)
    auth = _auth(endpoint)
    results = await asyncio.gather(*(auth.headers() for _ in range(100)))
    assert len(endpoint.scopes) == 1
    assert {headers["Authorization"] for headers in results} == {"Bearer token-1"}


async def test_one_caller_cancelled_does_not_cancel_the_shared_fetch() -> None:
    endpoint = FakeTokenEndpoint(delay=0.05)
    auth = _auth(endpoint)
    first = asyncio.ensure_future(auth.headers())
    second = asyncio.ensure_future(auth.headers())
    await asyncio.sleep(0.01)
    first.cancel()
    assert (await second)["Authorization"] == "Bearer token-1"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(endpoint.scopes) == 1


async def test_failed_fetch_reaches_every_waiter_and_the_next_call_tries_again() -> None:
    calls = 0

    async def failing_then_working(url: str, form: Mapping[str, str]) -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise RuntimeError("token endpoint down")
        return b'{"access_token": "token-ok", "expires_in": 3600}'

    auth = ClientCredentialsAuth(BASE, failing_then_working, TOKEN_URL, CREDENTIALS)
    results = await asyncio.gather(*(auth.headers() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert (await auth.headers())["Authorization"] == "Bearer token-ok"
    assert calls == 2


async def test_invalidate_drops_the_rejected_token() -> None:
    endpoint = FakeTokenEndpoint()
    auth = _auth(endpoint)
    used = await auth.headers()
    auth.invalidate(used)
    assert (await auth.headers())["Authorization"] == "Bearer token-2"


async def test_invalidate_with_an_older_token_keeps_the_newer_one() -> None:
    endpoint = FakeTokenEndpoint()
    auth = _auth(endpoint)
    old = await auth.headers()
    auth.invalidate(old)
    await auth.headers()  # token-2 replaces it
    auth.invalidate(old)  # a late 401 for a request sent with token-1
    assert (await auth.headers())["Authorization"] == "Bearer token-2"
    assert len(endpoint.scopes) == 2


async def test_token_without_lifetime_is_kept() -> None:
    endpoint, clock = FakeTokenEndpoint(expires_in=None), Clock()
    auth = _auth(endpoint, clock)
    await auth.headers()
    clock.now += 1e6
    await auth.headers()
    assert len(endpoint.scopes) == 1


async def test_static_auth_sends_the_same_headers_every_time() -> None:
    auth = StaticAuth(BASE, "lean-app-token", "secret-app-token")
    assert await auth.headers() == {**BASE, "lean-app-token": "secret-app-token"}
    auth.invalidate(await auth.headers())
    assert (await auth.headers())["lean-app-token"] == "secret-app-token"
    assert "secret-app-token" not in repr(auth)


async def test_oauth_auth_repr_shows_no_token() -> None:
    auth = _auth(FakeTokenEndpoint())
    await auth.headers()
    assert "token-1" not in repr(auth)


@pytest.mark.parametrize(
    "answer",
    [b"", b"not json", b'{"token_type": "bearer"}', b'{"access_token": 42}', b"[]"],
)
async def test_an_answer_that_is_not_a_token_is_a_decode_error_naming_no_secret(
    answer: bytes,
) -> None:
    async def endpoint(url: str, form: Mapping[str, str]) -> bytes:
        return answer

    auth = ClientCredentialsAuth(BASE, endpoint, TOKEN_URL, CREDENTIALS)
    with pytest.raises(DecodeError) as raised:
        await auth.headers()
    assert "secret-1" not in str(raised.value)


async def test_a_failed_grant_leaves_no_token_and_the_next_call_fetches_again() -> None:
    answers = [b"garbage", b'{"access_token": "token-ok", "expires_in": 60}']

    async def endpoint(url: str, form: Mapping[str, str]) -> bytes:
        return answers.pop(0)

    auth = ClientCredentialsAuth(BASE, endpoint, TOKEN_URL, CREDENTIALS)
    with pytest.raises(DecodeError):
        await auth.headers()
    assert (await auth.headers())["Authorization"] == "Bearer token-ok"
    assert answers == []


async def test_a_token_is_refreshed_exactly_at_its_refresh_time_and_that_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, clock = FakeTokenEndpoint(expires_in=100), Clock()
    auth = _auth(endpoint, clock)
    with caplog.at_level(logging.INFO, logger="lean_async"):
        await auth.headers()
        assert not caplog.records  # the first token is no refresh
        clock.now += refresh_after(100)
        assert (await auth.headers())["Authorization"] == "Bearer token-2"
    assert [r.getMessage() for r in caplog.records] == [
        "refreshing the access token shortly before it expires"
    ]


@pytest.mark.parametrize(
    ("credentials", "name", "value"),
    [
        (Credentials(app_token="app-1"), "lean-app-token", "app-1"),
        (Credentials(access_token="bearer-1"), "Authorization", "Bearer bearer-1"),
    ],
)
async def test_a_static_credential_sends_its_header_and_is_never_refreshed(
    credentials: Credentials, name: str, value: str
) -> None:
    endpoint = FakeTokenEndpoint()
    auth = make_auth(credentials, BASE, endpoint, TOKEN_URL)
    assert await auth.headers() == {**BASE, name: value}
    assert auth.refreshable is False  # a 401 is final
    assert endpoint.forms == []


async def test_client_credentials_get_tokens_from_the_token_url_and_can_be_refreshed() -> None:
    endpoint = FakeTokenEndpoint()
    auth = make_auth(CREDENTIALS, BASE, endpoint, TOKEN_URL)
    assert (await auth.headers())["Authorization"] == "Bearer token-1"
    assert auth.refreshable is True
    assert [url for url, _ in endpoint.forms] == [TOKEN_URL]


def test_credentials_cannot_be_changed_after_they_are_resolved() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CREDENTIALS.client_secret = "other"  # type: ignore[misc]


@pytest.mark.parametrize("secret", ["token\n", "tok\ren", "to\x00ken"])
def test_a_secret_with_a_control_character_is_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="control character"):
        Credentials.resolve(
            app_token=secret, access_token=None, client_id=None, client_secret=None, environ={}
        )


async def test_closing_during_a_token_fetch_ends_its_waiters_with_client_closed_error() -> None:
    endpoint = FakeTokenEndpoint(delay=30)
    auth = _auth(endpoint)
    waiter = asyncio.ensure_future(auth.headers())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(auth.aclose(), 2)  # cancels the fetch; does not raise
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(waiter, 2)


async def test_closing_returns_only_once_the_token_fetch_it_cancelled_has_ended() -> None:
    ended: list[bool] = []

    async def slow(url: str, form: Mapping[str, str]) -> bytes:
        try:
            await asyncio.sleep(30)
        finally:
            ended.append(True)
        return b""

    auth = ClientCredentialsAuth(BASE, slow, TOKEN_URL, CREDENTIALS)
    waiter = asyncio.ensure_future(auth.headers())
    await asyncio.sleep(0.01)
    # Awaited directly (pytest-timeout bounds it): wait_for's own task would give the
    # cancelled fetch the loop turns that aclose() must wait for itself.
    await auth.aclose()
    assert ended == [True]
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(waiter, 2)


async def test_a_waiter_cancelled_itself_while_closing_stays_cancelled() -> None:
    endpoint = FakeTokenEndpoint(delay=30)
    auth = _auth(endpoint)
    waiter = asyncio.ensure_future(auth.headers())
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.wait_for(auth.aclose(), 2)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 2)


async def test_being_cancelled_is_true_only_once_a_cancellation_is_requested() -> None:
    seen: list[bool] = []

    async def probe() -> None:
        seen.append(_being_cancelled())
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        seen.append(_being_cancelled())
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(probe())
    # Python 3.10's tasks do not tell whether a cancellation is pending: always False there.
    assert seen == [False, sys.version_info >= (3, 11)]


async def test_a_failed_fetch_that_nobody_awaits_any_more_is_not_reported_as_lost() -> None:
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:

        async def failing(url: str, form: Mapping[str, str]) -> bytes:
            await asyncio.sleep(0.02)
            raise RuntimeError("token endpoint down")

        auth = ClientCredentialsAuth(BASE, failing, TOKEN_URL, CREDENTIALS)
        waiter = asyncio.ensure_future(auth.headers())
        await asyncio.sleep(0.005)
        waiter.cancel()  # the only waiter goes away; the fetch fails later
        await asyncio.sleep(0.05)
        del waiter
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert reported == []
