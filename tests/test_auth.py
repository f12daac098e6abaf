"""OAuth2 token handling without a server: lifetime margins, reuse, single flight, 401s."""

from __future__ import annotations

import asyncio

import pytest

from lean_async import AccessToken
from lean_async._auth import ClientCredentialsAuth, StaticAuth, refresh_after

BASE = {"User-Agent": "lean-async/test"}


class FakeTokenEndpoint:
    """Hands out token-1, token-2, ... after ``delay`` seconds, counting the requests."""

    def __init__(self, expires_in: float | None = 3600, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.scopes: list[str] = []

    async def __call__(self, scope: str) -> AccessToken:
        self.scopes.append(scope)
        await asyncio.sleep(self.delay)
        return AccessToken(access_token=f"token-{len(self.scopes)}", expires_in=self.expires_in)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _auth(endpoint: FakeTokenEndpoint, clock: Clock | None = None) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(BASE, endpoint, clock=clock or Clock())


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
        (-5, 0.0),
        (None, float("inf")),
    ],
)
def test_refresh_margin_scales_with_lifetime(expires_in: float | None, after: float) -> None:
    assert refresh_after(expires_in) == pytest.approx(after)


async def test_token_is_fetched_on_first_use_with_scope_api() -> None:
    endpoint = FakeTokenEndpoint()
    headers = await _auth(endpoint).headers()
    assert endpoint.scopes == ["api"]
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

    async def failing_then_working(scope: str) -> AccessToken:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise RuntimeError("token endpoint down")
        return AccessToken(access_token="token-ok", expires_in=3600)

    auth = ClientCredentialsAuth(BASE, failing_then_working)
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
