"""The client against a real aiohttp.web server on 127.0.0.1: what goes over the wire, what
comes back as what, and how failures are retried."""

from __future__ import annotations

import itertools
import json
import math
import socket
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from _samples import (
    ACCESS_TOKEN,
    APP_TOKEN,
    CUSTOMER_ID,
    HTML_502,
    LIST_PATH,
    REPAIRED_LIST,
    SOURCE_ID,
    SOURCE_PATH,
)
from _server import (
    LocalServer,
    drop_connection,
    hang,
    lean_error,
    reply,
    truncated,
)

from lean_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    LeanClient,
    LeanError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    __version__,
)
from lean_async.models import decode_payment_sources

# Backoff slow enough that a test can tell an honoured Retry-After from a backoff wait.
SLOW_BACKOFF = RetryPolicy(max_retries=1, initial_delay=3.0, max_delay=3.0)

MakeClient = Callable[..., LeanClient]


def _gaps(server: LocalServer) -> list[float]:
    times = [request.at for request in server.requests]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


# -- what is sent ----------------------------------------------------------------------


async def test_list_decodes_the_bare_array(server: LocalServer, make_client: MakeClient) -> None:
    server.script(LIST_PATH, reply(body=REPAIRED_LIST.encode()))
    sources = await make_client().payment_sources.list(CUSTOMER_ID)
    assert sources == decode_payment_sources(REPAIRED_LIST.encode())
    assert server.requests[0].method == "GET"
    assert server.requests[0].path == LIST_PATH


async def test_app_token_request_carries_only_the_app_token_header(
    server: LocalServer, make_client: MakeClient
) -> None:
    await make_client().payment_sources.list(CUSTOMER_ID)
    headers = server.requests[0].headers
    assert headers.getall("lean-app-token") == [APP_TOKEN]
    assert "Authorization" not in headers


async def test_access_token_request_carries_only_the_bearer_header(
    server: LocalServer, make_client: MakeClient
) -> None:
    await make_client(access_token=ACCESS_TOKEN).payment_sources.list(CUSTOMER_ID)
    headers = server.requests[0].headers
    assert headers.getall("Authorization") == [f"Bearer {ACCESS_TOKEN}"]
    assert "lean-app-token" not in headers


async def test_user_agent_names_the_library_and_version(
    server: LocalServer, make_client: MakeClient
) -> None:
    await make_client().payment_sources.list(CUSTOMER_ID)
    assert server.requests[0].headers["User-Agent"] == f"lean-async/{__version__}"
    assert server.requests[0].headers["Accept"] == "application/json"


async def test_get_requests_one_source(server: LocalServer, make_client: MakeClient) -> None:
    server.script(SOURCE_PATH, reply(json_body={"id": SOURCE_ID, "status": "ACTIVE"}))
    source = await make_client().payment_sources.get(CUSTOMER_ID, SOURCE_ID)
    assert source.id == SOURCE_ID
    assert (server.requests[0].method, server.requests[0].path) == ("GET", SOURCE_PATH)


async def test_delete_sends_the_user_requested_reason(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(SOURCE_PATH, reply(json_body={}))
    assert await make_client().payment_sources.delete(CUSTOMER_ID, SOURCE_ID) is None
    seen = server.requests[0]
    assert seen.method == "DELETE"
    assert json.loads(seen.body) == {"reason": "USER_REQUESTED"}
    assert seen.headers["Content-Type"] == "application/json"


async def test_delete_sends_the_tpp_requested_reason_when_asked(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(SOURCE_PATH, reply(json_body={}))
    await make_client().payment_sources.delete(CUSTOMER_ID, SOURCE_ID, reason="TPP_REQUESTED")
    assert json.loads(server.requests[0].body) == {"reason": "TPP_REQUESTED"}


async def test_delete_with_empty_reason_is_refused_before_sending(
    server: LocalServer, make_client: MakeClient
) -> None:
    with pytest.raises(ValueError):
        await make_client().payment_sources.delete(CUSTOMER_ID, SOURCE_ID, reason=" ")
    assert server.requests == []


async def test_get_sends_no_body(server: LocalServer, make_client: MakeClient) -> None:
    await make_client().payment_sources.list(CUSTOMER_ID)
    assert server.requests[0].body == b""
    assert "Content-Type" not in server.requests[0].headers


# -- delete outcomes ---------------------------------------------------------------------


@pytest.mark.parametrize("answer", [reply(200, json_body={}), reply(204)], ids=["200", "204"])
async def test_delete_succeeds_on_200_and_204(
    answer: object, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(SOURCE_PATH, answer)  # type: ignore[arg-type]
    await make_client().payment_sources.delete(CUSTOMER_ID, SOURCE_ID)
    assert len(server.requests) == 1


async def test_delete_first_attempt_404_is_not_found(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(SOURCE_PATH, lean_error(404, "UNKNOWN_PAYMENT_SOURCE", "not found"))
    with pytest.raises(NotFoundError) as info:
        await make_client().payment_sources.delete(CUSTOMER_ID, SOURCE_ID)
    assert info.value.code == "UNKNOWN_PAYMENT_SOURCE"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "first",
    [
        lean_error(500, "INTERNAL_SERVER_ERROR", "boom"),
        reply(502, body=HTML_502, content_type="text/html"),
        hang(),
        drop_connection(),
    ],
    ids=["500", "502", "timeout", "connection-lost"],
)
async def test_delete_retry_finding_404_after_a_maybe_delivered_attempt_is_success(
    first: object, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(SOURCE_PATH, first, lean_error(404, "UNKNOWN_PAYMENT_SOURCE", "gone"))  # type: ignore[arg-type]
    await make_client(timeout=0.3).payment_sources.delete(CUSTOMER_ID, SOURCE_ID)
    assert len(server.requests) == 2


async def test_delete_404_after_a_429_is_not_found(
    server: LocalServer, make_client: MakeClient
) -> None:
    # A 429 means the first attempt was not acted on, so the 404 is the real answer.
    server.script(SOURCE_PATH, reply(429), lean_error(404, "UNKNOWN_PAYMENT_SOURCE", "gone"))
    with pytest.raises(NotFoundError):
        await make_client().payment_sources.delete(CUSTOMER_ID, SOURCE_ID)


async def test_delete_404_after_an_attempt_that_never_connected_is_not_found(
    server: LocalServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refused connection sent nothing: the resend's 404 is the real answer, not proof
    # that an earlier attempt deleted the source.
    connect = aiohttp.TCPConnector._create_connection
    refusals = []

    async def refuse_once(self: aiohttp.TCPConnector, req: Any, *args: Any) -> Any:
        if not refusals:
            refusals.append(req.url)
            raise aiohttp.ClientConnectorError(
                req.connection_key, ConnectionRefusedError(111, "refused")
            )
        return await connect(self, req, *args)

    monkeypatch.setattr(aiohttp.TCPConnector, "_create_connection", refuse_once)
    server.script(SOURCE_PATH, lean_error(404, "UNKNOWN_PAYMENT_SOURCE", "gone"))
    with pytest.raises(NotFoundError):
        await make_client().payment_sources.delete(CUSTOMER_ID, SOURCE_ID)
    assert len(refusals) == 1 and len(server.requests) == 1


async def test_get_404_after_a_5xx_is_still_not_found(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(SOURCE_PATH, reply(503), lean_error(404, "UNKNOWN_PAYMENT_SOURCE", "gone"))
    with pytest.raises(NotFoundError):
        await make_client().payment_sources.get(CUSTOMER_ID, SOURCE_ID)


# -- errors ------------------------------------------------------------------------------


async def test_lean_error_becomes_the_typed_error_with_request_id(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(SOURCE_PATH, lean_error(404, "UNKNOWN_PAYMENT_SOURCE", "nope", request_id="c-9"))
    with pytest.raises(NotFoundError) as info:
        await make_client().payment_sources.get(CUSTOMER_ID, SOURCE_ID)
    error = info.value
    assert (error.status_code, error.code, error.message, error.request_id) == (
        404,
        "UNKNOWN_PAYMENT_SOURCE",
        "nope",
        "c-9",
    )
    assert error.headers["lean-trace-id"] == "trace-1"
    assert json.loads(error.body)["status"] == "UNKNOWN_PAYMENT_SOURCE"


async def test_html_502_from_a_proxy_is_a_server_error(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(502, body=HTML_502, content_type="text/html"))
    with pytest.raises(ServerError) as info:
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert info.value.status_code == 502
    assert info.value.body == HTML_502
    assert len(server.requests) == 3


async def test_invalid_json_on_success_is_a_decode_error_not_retried(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(body=b'[{"id": "x"'))
    with pytest.raises(DecodeError):
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert len(server.requests) == 1


async def test_static_token_401_is_final(server: LocalServer, make_client: MakeClient) -> None:
    server.script(LIST_PATH, lean_error(401, "CERTIFICATE_TOKEN_MISMATCH", "bad token"))
    with pytest.raises(AuthenticationError):
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert len(server.requests) == 1


async def test_response_larger_than_the_limit_is_refused(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(body=b"[" + b" " * 2048 + b"]"))
    with pytest.raises(DecodeError, match="max_response_bytes"):
        await make_client(max_response_bytes=1024).payment_sources.list(CUSTOMER_ID)


async def test_redirect_is_not_followed_and_no_credentials_reach_the_other_host(
    server: LocalServer, make_server: Callable[..., object], make_client: MakeClient
) -> None:
    other: LocalServer = await make_server()  # type: ignore[misc]
    server.script(LIST_PATH, reply(302, headers={"Location": other.url + LIST_PATH}))
    with pytest.raises(APIError) as info:
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert info.value.status_code == 302
    assert other.requests == []
    assert len(server.requests) == 1


async def test_truncated_body_is_a_connection_error_after_retries(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, truncated(1000, b'[{"id": "'))
    with pytest.raises(APIConnectionError) as info:
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert not isinstance(info.value, aiohttp.ClientError)
    assert len(server.requests) == 3


async def test_truncated_body_then_success_recovers(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, truncated(1000, b"[{"), reply(json_body=[]))
    assert await make_client().payment_sources.list(CUSTOMER_ID) == []


async def test_lost_connection_is_retried_by_the_policy_alone(
    server: LocalServer, make_client: MakeClient
) -> None:
    # aiohttp would resend a GET on its own once; each attempt must be one request.
    server.script(LIST_PATH, drop_connection())
    with pytest.raises(APIConnectionError):
        await make_client(max_retries=1).payment_sources.list(CUSTOMER_ID)
    assert len(server.requests) == 2


async def test_timeout_is_an_api_timeout_error_after_retries(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, hang())
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await make_client(timeout=0.2).payment_sources.list(CUSTOMER_ID)
    assert len(server.requests) == 3
    assert time.monotonic() - started < 2.0


async def test_client_timeout_object_bounds_each_attempt(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, hang())
    with pytest.raises(APITimeoutError):
        await make_client(timeout=aiohttp.ClientTimeout(total=0.2)).payment_sources.list(
            CUSTOMER_ID
        )


async def test_connection_refused_is_a_connection_error(make_client: MakeClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(APIConnectionError) as info:
        await client.payment_sources.list(CUSTOMER_ID)
    assert not isinstance(info.value, APITimeoutError)
    assert isinstance(info.value, LeanError)


# -- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_status_is_retried_max_retries_times(
    status: int, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(status))
    with pytest.raises(APIError) as info:
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert info.value.status_code == status
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 405, 409, 422])
async def test_other_4xx_is_never_retried(
    status: int, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(status))
    with pytest.raises(APIError):
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert len(server.requests) == 1


async def test_bad_request_carries_lean_code(server: LocalServer, make_client: MakeClient) -> None:
    server.script(LIST_PATH, lean_error(400, "INVALID_PARAMETERS", "bad"))
    with pytest.raises(BadRequestError, match="INVALID_PARAMETERS"):
        await make_client().payment_sources.list(CUSTOMER_ID)


async def test_retry_then_success_returns_the_result(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(503), reply(500), reply(json_body=[{"id": SOURCE_ID}]))
    [source] = await make_client().payment_sources.list(CUSTOMER_ID)
    assert source.id == SOURCE_ID
    assert len(server.requests) == 3


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_max_retries_bounds_the_attempts(
    max_retries: int, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(503))
    with pytest.raises(ServerError):
        await make_client(max_retries=max_retries).payment_sources.list(CUSTOMER_ID)
    assert len(server.requests) == max_retries + 1


async def test_default_backoff_waits_about_half_a_second_first(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(503), reply(json_body=[]))
    await make_client(retry=RetryPolicy()).payment_sources.list(CUSTOMER_ID)
    [gap] = _gaps(server)
    assert 0.35 <= gap <= 0.5 + 0.4


async def test_retry_after_seconds_is_honoured(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(429, headers={"Retry-After": "0.4"}), reply(json_body=[]))
    await make_client(retry=SLOW_BACKOFF).payment_sources.list(CUSTOMER_ID)
    [gap] = _gaps(server)
    assert 0.38 <= gap <= 0.4 + 0.6


async def test_retry_after_on_503_is_honoured(server: LocalServer, make_client: MakeClient) -> None:
    server.script(LIST_PATH, reply(503, headers={"Retry-After": "0.2"}), reply(json_body=[]))
    await make_client(retry=SLOW_BACKOFF).payment_sources.list(CUSTOMER_ID)
    [gap] = _gaps(server)
    assert 0.18 <= gap <= 0.2 + 0.6


async def test_retry_after_http_date_is_honoured(
    server: LocalServer, make_client: MakeClient
) -> None:
    # HTTP dates have whole seconds: aim at the next whole second but one.
    target = math.ceil(time.time()) + 1
    header = formatdate(target, usegmt=True)
    server.script(LIST_PATH, reply(429, headers={"Retry-After": header}), reply(json_body=[]))
    await make_client(retry=SLOW_BACKOFF).payment_sources.list(CUSTOMER_ID)
    first, second = server.requests
    assert second.wall_at >= target - 0.05
    assert second.wall_at - first.wall_at <= 2.0 + 0.6


async def test_retry_after_beyond_a_minute_fails_at_once_carrying_it(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, lean_error(429, "RATE_LIMIT_EXCEEDED", "slow down"))
    server.script(LIST_PATH, reply(429, headers={"Retry-After": "120"}))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await make_client().payment_sources.list(CUSTOMER_ID)
    assert info.value.retry_after == 120.0
    assert len(server.requests) == 1
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("header", ["soon", "-3", "nan", ""])
async def test_unusable_retry_after_falls_back_to_backoff(
    header: str, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(429, headers={"Retry-After": header}), reply(json_body=[]))
    retry = RetryPolicy(max_retries=1, initial_delay=0.2, max_delay=0.2)
    await make_client(retry=retry).payment_sources.list(CUSTOMER_ID)
    [gap] = _gaps(server)
    assert 0.14 <= gap <= 0.2 + 0.6  # backoff: 0.2 s less up to a quarter of jitter


async def test_connection_refused_is_retried_with_backoff(make_client: MakeClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    retry = RetryPolicy(max_retries=2, initial_delay=0.1, max_delay=0.1)
    started = time.monotonic()
    with pytest.raises(APIConnectionError):
        await make_client(base_url=f"http://127.0.0.1:{port}", retry=retry).payment_sources.list(
            CUSTOMER_ID
        )
    assert time.monotonic() - started >= 2 * 0.075  # two backoff waits happened


async def test_a_path_prefix_in_the_base_url_is_kept(
    server: LocalServer, make_client: MakeClient
) -> None:
    prefixed = "/lean-proxy" + LIST_PATH
    server.script(prefixed, reply(json_body=[]))
    assert (
        await make_client(base_url=server.url + "/lean-proxy/").payment_sources.list(CUSTOMER_ID)
        == []
    )
    assert len(server.seen(prefixed)) == 1


# -- the environment ---------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
async def test_proxy_variables_in_the_environment_are_not_followed(
    variable: str, server: LocalServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # trust_env=False: the credential headers never go to a proxy (nor ~/.netrc's login
    # into them) because of what some process put in the environment.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, dead_proxy)
    server.script(LIST_PATH, reply(200, json_body=[]))
    assert await make_client(max_retries=0).payment_sources.list(CUSTOMER_ID) == []
    assert len(server.requests) == 1
