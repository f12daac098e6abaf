"""LeanClient construction: credentials, hosts, options; no I/O and no event loop needed."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import pytest
from _samples import ACCESS_TOKEN, APP_TOKEN, CLIENT_ID, CLIENT_SECRET

from lean_async import ConfigurationError, LeanClient, RetryPolicy


def _client(**options: Any) -> LeanClient:
    options.setdefault("environ", {})
    if not {"app_token", "access_token", "client_id", "client_secret"} & options.keys():
        options["app_token"] = APP_TOKEN
    return LeanClient(**options)


@pytest.mark.parametrize(
    ("environment", "region", "base_url", "auth_url"),
    [
        ("sandbox", "uae", "https://sandbox.leantech.me", "https://auth.sandbox.leantech.me/oauth2/token"),
        ("production", "uae", "https://api2.leantech.me", "https://auth.leantech.me/oauth2/token"),
        ("sandbox", "ksa", "https://sandbox.sa.leantech.me", "https://auth.sandbox.sa.leantech.me/oauth2/token"),
        ("production", "ksa", "https://api2.sa.leantech.me", "https://auth.sa.leantech.me/oauth2/token"),
    ],
)  # fmt: skip
def test_environment_and_region_resolve_the_hosts(
    environment: str, region: str, base_url: str, auth_url: str
) -> None:
    client = _client(environment=environment, region=region)
    assert client.base_url == base_url
    assert client.auth_url == auth_url


def test_defaults_are_uae_sandbox() -> None:
    assert _client().base_url == "https://sandbox.leantech.me"


@pytest.mark.parametrize(
    "options",
    [
        {"environment": "staging"},
        {"environment": "Sandbox"},
        {"region": "uk"},
        {"region": "UAE"},
    ],
)
def test_unknown_environment_or_region_is_a_value_error(options: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        _client(**options)


def test_base_url_and_auth_url_override_the_hosts() -> None:
    client = _client(base_url="https://api.leantech.me/", auth_url="https://auth.example/token")
    assert client.base_url == "https://api.leantech.me"
    assert client.auth_url == "https://auth.example/token"


@pytest.mark.parametrize(
    "url",
    [
        "http://api.leantech.me",
        "http://10.0.0.1:8080",
        "http://localhost.evil.example",
        "ftp://api.leantech.me",
        "api.leantech.me",
        "https://user:pw@api.leantech.me",
        "https://api.leantech.me?x=1",
    ],
)
@pytest.mark.parametrize("option", ["base_url", "auth_url"])
def test_unsafe_or_malformed_url_is_a_configuration_error(option: str, url: str) -> None:
    with pytest.raises(ConfigurationError):
        _client(**{option: url})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "http://127.0.0.2"]
)
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    assert _client(base_url=url, auth_url=url + "/token").base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@api.leantech.me",
        "http://user:hunter2@api.leantech.me",
        "ftp://user:hunter2@api.leantech.me",
    ],
)
def test_url_error_does_not_echo_user_info(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        _client(base_url=url)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("options", "scheme"),
    [
        ({"app_token": APP_TOKEN}, "app_token"),
        ({"access_token": ACCESS_TOKEN}, "access_token"),
        ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, "client_credentials"),
    ],
)
def test_one_credential_scheme_is_accepted(options: dict[str, str], scheme: str) -> None:
    assert f"auth={scheme!r}" in repr(_client(**options))


@pytest.mark.parametrize(
    "options",
    [
        {"app_token": APP_TOKEN, "access_token": ACCESS_TOKEN},
        {"app_token": APP_TOKEN, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        {"access_token": ACCESS_TOKEN, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        {"access_token": ACCESS_TOKEN, "client_secret": CLIENT_SECRET},
    ],
)
def test_two_credential_schemes_are_a_value_error(options: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _client(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"client_id": CLIENT_ID},
        {"client_secret": CLIENT_SECRET},
        {"app_token": ""},
        {"app_token": "   "},
        {"access_token": ""},
        {"app_token": 12345},
    ],
)
def test_incomplete_or_empty_credentials_are_a_value_error(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _client(**options)


def test_no_credentials_anywhere_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no credentials"):
        LeanClient(environ={})


@pytest.mark.parametrize(
    ("environ", "scheme"),
    [
        ({"LEAN_APP_TOKEN": APP_TOKEN}, "app_token"),
        ({"LEAN_ACCESS_TOKEN": ACCESS_TOKEN}, "access_token"),
        ({"LEAN_CLIENT_ID": CLIENT_ID, "LEAN_CLIENT_SECRET": CLIENT_SECRET}, "client_credentials"),
        ({"LEAN_APP_TOKEN": APP_TOKEN, "LEAN_ACCESS_TOKEN": ""}, "app_token"),
    ],
)
def test_environment_variables_supply_credentials(environ: dict[str, str], scheme: str) -> None:
    assert f"auth={scheme!r}" in repr(LeanClient(environ=environ))


def test_two_schemes_in_the_environment_are_a_value_error() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        LeanClient(environ={"LEAN_APP_TOKEN": APP_TOKEN, "LEAN_ACCESS_TOKEN": ACCESS_TOKEN})


def test_explicit_credentials_win_over_the_environment() -> None:
    environ = {"LEAN_ACCESS_TOKEN": ACCESS_TOKEN, "LEAN_CLIENT_ID": CLIENT_ID}
    assert "auth='app_token'" in repr(LeanClient(app_token=APP_TOKEN, environ=environ))


def test_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEAN_APP_TOKEN", "LEAN_ACCESS_TOKEN", "LEAN_CLIENT_ID", "LEAN_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEAN_ACCESS_TOKEN", ACCESS_TOKEN)
    assert "auth='access_token'" in repr(LeanClient())


@pytest.mark.parametrize(
    "options",
    [
        {"app_token": APP_TOKEN},
        {"access_token": ACCESS_TOKEN},
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    ],
)
def test_repr_shows_no_secret(options: dict[str, str]) -> None:
    client = _client(**options)
    for text in (repr(client), repr(client._transport), repr(client._transport._credentials)):
        for secret in (APP_TOKEN, ACCESS_TOKEN, CLIENT_SECRET):
            assert secret not in text


def test_configuration_error_shows_no_secret() -> None:
    with pytest.raises(ConfigurationError) as info:
        _client(app_token=APP_TOKEN, client_secret=CLIENT_SECRET)
    assert APP_TOKEN not in str(info.value)
    assert CLIENT_SECRET not in str(info.value)


def test_construction_needs_no_event_loop_and_opens_no_session() -> None:
    client = _client()  # a plain (sync) test: no loop is running here
    assert client._transport._session is None
    assert not client.closed


def test_max_retries_defaults_to_two() -> None:
    assert _client().retry.max_retries == 2


def test_max_retries_overrides_the_retry_policy_count_only() -> None:
    client = _client(max_retries=5, retry=RetryPolicy(initial_delay=0.01, max_delay=0.02))
    assert client.retry == RetryPolicy(max_retries=5, initial_delay=0.01, max_delay=0.02)


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"timeout": "30"},
        {"timeout": True},
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_connections": 0},
        {"max_connections": True},
        {"max_response_bytes": 0},
        {"retry": "fast"},
        {"session": "not a session"},
        {"ssl": True},
        {"ssl": ssl.create_default_context(), "insecure_disable_tls_verification": True},
        {"rate_limit": 0},
    ],
    ids=repr,
)
def test_bad_option_is_a_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        _client(**options)


def test_timeout_in_seconds_bounds_each_attempt() -> None:
    timeout = _client(timeout=2.5)._transport._timeout
    assert timeout.total == 2.5
    assert timeout.sock_connect == 2.5


def test_client_timeout_is_used_as_given() -> None:
    given = aiohttp.ClientTimeout(total=7, sock_read=3)
    assert _client(timeout=given)._transport._timeout is given


def test_ssl_context_is_passed_to_every_request() -> None:
    context = ssl.create_default_context()
    assert _client(ssl=context)._transport._request_options["ssl"] is context


def test_redirects_are_never_followed() -> None:
    assert _client()._transport._request_options["allow_redirects"] is False


def test_lean_base_url_and_auth_url_in_the_environment_override_the_hosts() -> None:
    environ = {
        "LEAN_APP_TOKEN": "t",
        "LEAN_BASE_URL": "http://127.0.0.1:8080/",
        "LEAN_AUTH_URL": "http://127.0.0.1:8080/oauth2/token",
    }
    client = LeanClient(environ=environ)
    assert client.base_url == "http://127.0.0.1:8080"
    assert client.auth_url == "http://127.0.0.1:8080/oauth2/token"


def test_explicit_hosts_win_over_the_environment() -> None:
    environ = {"LEAN_BASE_URL": "http://127.0.0.1:8080"}
    client = LeanClient(app_token="t", base_url="https://proxy.example", environ=environ)
    assert client.base_url == "https://proxy.example"


def test_a_plain_http_host_in_the_environment_is_refused_like_an_argument() -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        LeanClient(app_token="t", environ={"LEAN_BASE_URL": "http://lean.example"})


OAUTH = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
PROXY = "https://proxy.example"
PROXY_TOKENS = "https://proxy.example/oauth2/token"


@pytest.mark.parametrize("credentials", ["oauth", "app_token"])
@pytest.mark.parametrize("base", ["default", "argument", "environment", "lean's own"])
@pytest.mark.parametrize("auth", ["default", "argument", "environment"])
def test_oauth_with_the_api_host_overridden_needs_the_token_host_too(
    credentials: str, base: str, auth: str
) -> None:
    options: dict[str, Any] = dict(OAUTH) if credentials == "oauth" else {"app_token": APP_TOKEN}
    environ: dict[str, str] = {}
    if base == "argument":
        options["base_url"] = PROXY
    elif base == "environment":
        environ["LEAN_BASE_URL"] = PROXY
    elif base == "lean's own":
        options["base_url"] = "https://sandbox.leantech.me/"
    if auth == "argument":
        options["auth_url"] = PROXY_TOKENS
    elif auth == "environment":
        environ["LEAN_AUTH_URL"] = PROXY_TOKENS
    overridden = base in ("argument", "environment")
    if credentials == "oauth" and overridden and auth == "default":
        with pytest.raises(ConfigurationError, match=r"pass auth_url= \(or set LEAN_AUTH_URL\)"):
            LeanClient(environ=environ, **options)
        return
    client = LeanClient(environ=environ, **options)
    assert client.auth_url == (
        PROXY_TOKENS if auth != "default" else "https://auth.sandbox.leantech.me/oauth2/token"
    )
