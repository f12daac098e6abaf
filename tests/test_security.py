"""Secrets and customer data stay out of logs, reprs, messages and tracebacks; TLS
certificates are verified unless the caller says otherwise, loudly.

Complements test_logging.py (which covers retried OAuth flows, rejected credentials and
static-credential failures): here the failures are timeouts and resets on both the token
endpoint and the API, and the text searched includes formatted tracebacks and suppressed
exception contexts, what an error tracker would show."""

from __future__ import annotations

import asyncio
import logging
import ssl
import traceback
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import trustme
from _samples import (
    APP_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    CUSTOMER_ID,
    LIST_PATH,
    SECRETS,
    TOKEN_PATH,
)
from _server import (
    Answer,
    LocalServer,
    RawServer,
    drop_connection,
    hang,
    issue_tokens,
    reply,
    truncated,
)

from lean_async import (
    AccessToken,
    Account,
    APIConnectionError,
    LeanClient,
    LeanError,
    RetryPolicy,
)
from lean_async.testing import FakeLean, Faults

MakeClient = Callable[..., LeanClient]
FAST = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.01)


def _every_exception(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and everything hanging off it, suppressed contexts included."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__]


def _everything_said(caplog: pytest.LogCaptureFixture, error: BaseException | None) -> str:
    texts = [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    texts += [record.exc_text or "" for record in caplog.records]
    for exc in _every_exception(error):
        texts += [str(exc), repr(exc), repr(exc.args)]
        texts += traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "\n".join(texts)


FAILURES: dict[str, tuple[Answer, Answer]] = {
    # (token endpoint, API)
    "token endpoint times out": (hang(), reply(json_body=[])),
    "token endpoint drops the connection": (drop_connection(), reply(json_body=[])),
    "token endpoint cuts its answer short": (
        truncated(200, b'{"access_token": "issued-token-'),
        reply(json_body=[]),
    ),
    "API times out": (issue_tokens(), hang()),
    "API drops the connection": (issue_tokens(), drop_connection()),
    "API answers 401 twice": (issue_tokens(), reply(401)),
}


@pytest.mark.parametrize(("token_answer", "api_answer"), FAILURES.values(), ids=FAILURES.keys())
async def test_failing_oauth_flow_leaks_no_secret_even_in_tracebacks_at_debug(
    token_answer: Answer,
    api_answer: Answer,
    server: LocalServer,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: aiohttp's and asyncio's too
    for name in ("aiohttp", "aiohttp.client", "aiohttp.internal", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    server.script(TOKEN_PATH, token_answer)
    server.script(LIST_PATH, api_answer)
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, timeout=0.3, retry=FAST)
    with pytest.raises(LeanError) as info:
        await client.payment_sources.list(CUSTOMER_ID)
    said = _everything_said(caplog, info.value) + repr(client) + repr(client._transport)
    for secret in SECRETS:
        assert secret not in said


# -- customer data -----------------------------------------------------------------------


async def test_account_numbers_and_ibans_are_never_logged_at_any_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = Faults(error_rate=0.1, truncate_rate=0.1, malformed_rate=0.1, drop_rate=0.05, seed=3)
    async with FakeLean(customers=60, seed=11, faults=faults) as server:
        errors: list[BaseException] = []
        async with server.client(retry=FAST) as client:
            for customer_id in server.customer_ids[:20]:
                calls = [client.payment_sources.list(customer_id)] + [
                    client.payment_sources.get(customer_id, source.id)
                    for source in server.data.payment_sources(customer_id)
                ]
                outcomes = await asyncio.gather(*calls, return_exceptions=True)
                errors += [o for o in outcomes if isinstance(o, BaseException)]
            results = [r async for r in client.payment_sources.sweep(server.customer_ids)]
            errors += [r.error for r in results if r.error is not None]
        numbers = [
            value
            for source in server.data.all_payment_sources()
            for account in source.accounts
            for value in (account.account_number, account.iban)
            if value
        ]
    assert len(numbers) > 50 and errors  # the data was there, and so were failures
    assert all(isinstance(error, LeanError) for error in errors)
    said = "\n".join(_everything_said(caplog, error) for error in errors)
    said += "\n".join(record.getMessage() for record in caplog.records)
    assert [number for number in numbers if number in said] == []


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def https_server(certificate_authority: trustme.CA) -> AsyncIterator[LocalServer]:
    """A local HTTPS server whose certificate no system trust store knows."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(context)
    server = await LocalServer(ssl_context=context).start()
    yield server
    await server.close()


async def test_tls_certificates_are_verified_by_default(
    https_server: LocalServer, make_client: MakeClient
) -> None:
    client = make_client(base_url=https_server.url, max_retries=0)
    with pytest.raises(APIConnectionError, match="certificate"):
        await client.payment_sources.list(CUSTOMER_ID)
    assert https_server.requests == []  # the credentials never left the client


async def test_a_certificate_that_fails_verification_is_not_retried(
    https_server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lean_async")
    client = make_client(base_url=https_server.url, max_retries=2)
    with pytest.raises(APIConnectionError) as info:
        await client.payment_sources.list(CUSTOMER_ID)
    assert info.value.retryable is False
    assert [r for r in caplog.records if hasattr(r, "retry_cause")] == []


async def test_ssl_context_trusting_the_certificate_connects(
    https_server: LocalServer, make_client: MakeClient, certificate_authority: trustme.CA
) -> None:
    context = ssl.create_default_context()
    certificate_authority.configure_trust(context)
    client = make_client(base_url=https_server.url, ssl=context)
    assert await client.payment_sources.list(CUSTOMER_ID) == []


async def test_disabling_verification_connects_to_an_untrusted_certificate(
    https_server: LocalServer, make_client: MakeClient
) -> None:
    client = make_client(base_url=https_server.url, insecure_disable_tls_verification=True)
    assert await client.payment_sources.list(CUSTOMER_ID) == []


async def test_disabling_verification_logs_one_warning_naming_the_option(
    https_server: LocalServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lean_async")
    client = make_client(base_url=https_server.url, insecure_disable_tls_verification=True)
    await asyncio.gather(*(client.payment_sources.list(CUSTOMER_ID) for _ in range(3)))
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.levelno == logging.WARNING
    assert "insecure_disable_tls_verification" in warning.getMessage()


async def test_verified_client_logs_no_warning(
    https_server: LocalServer,
    make_client: MakeClient,
    certificate_authority: trustme.CA,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lean_async")
    context = ssl.create_default_context()
    certificate_authority.configure_trust(context)
    await make_client(base_url=https_server.url, ssl=context).payment_sources.list(CUSTOMER_ID)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_malformed_status_line_leaves_no_secret_in_the_exception_chain(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def conversation(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await raw.read_request(reader)
        # aiohttp's own error for this keeps the request's headers in its request info.
        writer.write(b"HTTP/1.1 2x0 Garbage\r\nContent-Length: 2\r\n\r\n[]")
        await writer.drain()
        writer.close()

    async with RawServer(conversation) as raw:
        client = make_client(base_url=raw.url, app_token=APP_TOKEN, max_retries=0)
        with pytest.raises(APIConnectionError) as info:
            await client.payment_sources.list(CUSTOMER_ID)
    said = _everything_said(caplog, info.value)
    assert APP_TOKEN not in said
    # aiohttp's ClientResponseError keeps the request's headers in its request info: it
    # must not hang off the library's error (Python 3.10 may still chain aiohttp's inner,
    # header-less HttpProcessingError as the context).
    assert not any(hasattr(exc, "request_info") for exc in _every_exception(info.value))


def test_rich_representations_mask_account_numbers_ibans_and_tokens() -> None:
    account = Account(id="a", account_number="1015528734001", iban="AE340260001015528734001")
    token = AccessToken(access_token="eyJ-secret-token", expires_in=3599)
    shown = repr([*account.__rich_repr__(), *token.__rich_repr__(), account, token])
    for secret in ("1015528734001", "AE340260001015528734001", "eyJ-secret-token"):
        assert secret not in shown
    assert "8734001"[-4:] in repr(account)  # the last four digits stay, to tell accounts apart
