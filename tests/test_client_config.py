"""Client configuration: ClientConfig.build resolves and checks every option once, before any
I/O and without an event loop; LeanClient(...), LeanClient(config=), the CLI's flags and
FakeLean.client() all go through it. Mistakes are one-sentence ConfigurationErrors (a
ValueError) that name the option and never echo a secret."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import re
import ssl
from typing import Any

import aiohttp
import pytest
from _samples import ACCESS_TOKEN, APP_TOKEN, CLIENT_ID, CLIENT_SECRET, SECRETS

from lean_async import ClientConfig, ConfigurationError, LeanClient, RetryPolicy
from lean_async._cli.args import client_config_from_args, client_flags
from lean_async._cli.errors import UsageError
from lean_async._constants import ENVIRONMENTS, HOSTS, REGIONS
from lean_async._observe import RequestEvent, RetryEvent
from lean_async.testing import FakeLean

APP = {"app_token": APP_TOKEN}
OAUTH = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
PROXY = "https://proxy.example"
PROXY_TOKENS = "https://proxy.example/oauth2/token"


def _config(**options: Any) -> ClientConfig:
    """ClientConfig.build with an app token (unless credentials are given) and no
    environment variables (unless ``environ=`` is given)."""
    options.setdefault("environ", {})
    if not {"app_token", "access_token", "client_id", "client_secret"} & options.keys():
        options["app_token"] = APP_TOKEN
    return ClientConfig.build(**options)


def _on_request(event: RequestEvent) -> None:
    pass


def _on_retry(event: RetryEvent) -> None:
    pass


# -- hosts -------------------------------------------------------------------------------


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
    config = _config(environment=environment, region=region)
    assert (config.base_url, config.auth_url) == (base_url, auth_url)


def test_defaults_are_uae_sandbox() -> None:
    config = _config()
    assert (config.environment, config.region) == ("sandbox", "uae")
    assert config.base_url == "https://sandbox.leantech.me"


def test_environments_and_regions_are_the_host_tables_keys() -> None:
    assert set(HOSTS) == {(e, r) for e in ENVIRONMENTS for r in REGIONS}
    assert ENVIRONMENTS == ("sandbox", "production")
    assert REGIONS == ("uae", "ksa")


def test_cli_offers_exactly_the_configs_environments_and_regions() -> None:
    choices = {action.dest: action.choices for action in client_flags()._actions}
    assert tuple(choices["environment"]) == ENVIRONMENTS
    assert tuple(choices["region"]) == REGIONS


@pytest.mark.parametrize(
    ("options", "environ", "base_url", "auth_url"),
    [
        ({"base_url": "https://api.leantech.me/", "auth_url": "https://auth.example/token/"},
         {}, "https://api.leantech.me", "https://auth.example/token"),
        ({}, {"LEAN_BASE_URL": "http://127.0.0.1:8080/", "LEAN_AUTH_URL": "http://127.0.0.1:8080/oauth2/token"},
         "http://127.0.0.1:8080", "http://127.0.0.1:8080/oauth2/token"),
        ({"base_url": PROXY}, {"LEAN_BASE_URL": "http://127.0.0.1:8080"},
         PROXY, "https://auth.sandbox.leantech.me/oauth2/token"),
        ({"auth_url": PROXY_TOKENS}, {"LEAN_AUTH_URL": "http://127.0.0.1:8080/t"},
         "https://sandbox.leantech.me", PROXY_TOKENS),
        ({"base_url": "https://api.leantech.me/v2"}, {},
         "https://api.leantech.me/v2", "https://auth.sandbox.leantech.me/oauth2/token"),
    ],
    ids=["arguments, trailing slash dropped", "environment", "argument wins over the environment",
         "token argument wins over the environment", "path prefix kept"],
)  # fmt: skip
def test_hosts_come_from_arguments_then_the_environment_then_the_table(
    options: dict[str, str], environ: dict[str, str], base_url: str, auth_url: str
) -> None:
    config = _config(environ={"LEAN_APP_TOKEN": APP_TOKEN, **environ}, **options)
    assert (config.base_url, config.auth_url) == (base_url, auth_url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "http://127.0.0.2"]
)
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    assert _config(base_url=url, auth_url=url + "/token").base_url == url


@pytest.mark.parametrize("credentials", ["oauth", "app_token"])
@pytest.mark.parametrize("base", ["default", "argument", "environment", "lean's own"])
@pytest.mark.parametrize("auth", ["default", "argument", "environment"])
def test_oauth_with_the_api_host_overridden_needs_the_token_host_too(
    credentials: str, base: str, auth: str
) -> None:
    options: dict[str, Any] = dict(OAUTH) if credentials == "oauth" else dict(APP)
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
            ClientConfig.build(environ=environ, **options)
        return
    config = ClientConfig.build(environ=environ, **options)
    assert config.auth_url == (
        PROXY_TOKENS if auth != "default" else "https://auth.sandbox.leantech.me/oauth2/token"
    )


# -- credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "environ", "scheme"),
    [
        (APP, {}, "app_token"),
        ({"access_token": ACCESS_TOKEN}, {}, "access_token"),
        (OAUTH, {}, "client_credentials"),
        ({}, {"LEAN_APP_TOKEN": APP_TOKEN}, "app_token"),
        ({}, {"LEAN_ACCESS_TOKEN": ACCESS_TOKEN}, "access_token"),
        ({}, {"LEAN_CLIENT_ID": CLIENT_ID, "LEAN_CLIENT_SECRET": CLIENT_SECRET},
         "client_credentials"),
        ({}, {"LEAN_APP_TOKEN": APP_TOKEN, "LEAN_ACCESS_TOKEN": ""}, "app_token"),
        (APP, {"LEAN_ACCESS_TOKEN": ACCESS_TOKEN, "LEAN_CLIENT_ID": CLIENT_ID}, "app_token"),
    ],
    ids=["app token", "access token", "client credentials", "env app token",
         "env access token", "env client credentials", "env empty variable ignored",
         "arguments win over the environment"],
)  # fmt: skip
def test_exactly_one_credential_scheme_is_taken(
    options: dict[str, str], environ: dict[str, str], scheme: str
) -> None:
    config = ClientConfig.build(environ=environ, **options)
    assert config.credentials.scheme == scheme
    assert f"auth={scheme!r}" in repr(LeanClient(config=config))


def test_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEAN_APP_TOKEN", "LEAN_ACCESS_TOKEN", "LEAN_CLIENT_ID", "LEAN_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEAN_ACCESS_TOKEN", ACCESS_TOKEN)
    assert ClientConfig.build().credentials.access_token == ACCESS_TOKEN
    assert "auth='access_token'" in repr(LeanClient())


@pytest.mark.parametrize(
    "options", [APP, {"access_token": ACCESS_TOKEN}, OAUTH], ids=["app", "bearer", "oauth"]
)
def test_no_repr_shows_a_secret(options: dict[str, str]) -> None:
    client = LeanClient(environ={}, **options)
    texts = (repr(client), repr(client.config), repr(client._transport))
    assert not [secret for secret in SECRETS for text in texts if secret in text]


# -- mistakes ----------------------------------------------------------------------------

# options (with an app token unless they give credentials) and environ -> a word the
# message must hold. Each is refused at construction, in one sentence.
MISTAKES: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {
    "unknown environment": ({"environment": "staging"}, {}, "environment must be one of"),
    "environment is case-sensitive": ({"environment": "Sandbox"}, {}, "environment"),
    "unknown region": ({"region": "uk"}, {}, "region must be one of"),
    "region is case-sensitive": ({"region": "UAE"}, {}, "region"),
    "no credentials anywhere": ({"app_token": None}, {}, "no credentials"),
    "two schemes": ({**APP, "access_token": ACCESS_TOKEN}, {}, "exactly one"),
    "app token and client credentials": ({**APP, **OAUTH}, {}, "exactly one"),
    "bearer and client credentials": (
        {"access_token": ACCESS_TOKEN, **OAUTH}, {}, "exactly one",
    ),
    "bearer and a client secret": (
        {"access_token": ACCESS_TOKEN, "client_secret": CLIENT_SECRET},
        {}, "exactly one",
    ),
    "two schemes in the environment": (
        {"app_token": None}, {"LEAN_APP_TOKEN": APP_TOKEN, "LEAN_ACCESS_TOKEN": ACCESS_TOKEN},
        "exactly one",
    ),
    "client id alone": ({"client_id": CLIENT_ID}, {}, "client_secret= is missing"),
    "client secret alone": ({"client_secret": CLIENT_SECRET}, {}, "client_id= is missing"),
    "empty app token": ({"app_token": ""}, {}, "app_token must be a non-empty string"),
    "blank app token": ({"app_token": "   "}, {}, "app_token must be a non-empty string"),
    "empty access token": ({"access_token": ""}, {}, "access_token must be a non-empty"),
    "app token not a string": ({"app_token": 12345}, {}, "app_token must be a non-empty"),
    "app token with a trailing newline": ({"app_token": APP_TOKEN + "\n"}, {}, "app_token"),
    "app token with a header injection": (
        {"app_token": APP_TOKEN + "\r\nX-Evil: 1"}, {}, "app_token contains a line break",
    ),
    "client secret with a newline": (
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET + "\n"}, {}, "client_secret",
    ),
    "access token with a tab": (
        {"access_token": "\t" + ACCESS_TOKEN}, {}, "access_token",
    ),
    "environment token with a newline": (
        {"app_token": None}, {"LEAN_APP_TOKEN": APP_TOKEN + "\n"}, "app_token",
    ),
    "plain http in the environment": (
        {}, {"LEAN_BASE_URL": "http://lean.example"}, "base_url 'http://lean.example' is plain",
    ),
    "base url not a string": ({"base_url": 8080}, {}, "base_url must be a string URL"),
    "timeout zero": ({"timeout": 0}, {}, "timeout must be a number of seconds > 0"),
    "timeout negative": ({"timeout": -1}, {}, "timeout must be"),
    "timeout nan": ({"timeout": float("nan")}, {}, "timeout must be"),
    "timeout infinite": ({"timeout": float("inf")}, {}, "timeout must be"),
    "timeout a string": ({"timeout": "30"}, {}, "timeout must be"),
    "timeout a bool": ({"timeout": True}, {}, "timeout must be"),
    "ClientTimeout negative total": (
        {"timeout": aiohttp.ClientTimeout(total=-1)}, {}, "timeout.total",
    ),
    "ClientTimeout zero connect": (
        {"timeout": aiohttp.ClientTimeout(total=5, connect=0)}, {}, "timeout.connect",
    ),
    "ClientTimeout zero read": (
        {"timeout": aiohttp.ClientTimeout(total=5, sock_read=0)}, {}, "timeout.sock_read",
    ),
    "ClientTimeout nan connect": (
        {"timeout": aiohttp.ClientTimeout(sock_connect=float("nan"))}, {}, "timeout.sock_connect",
    ),
    "max_retries negative": ({"max_retries": -1}, {}, "max_retries must be a whole number >= 0"),
    "max_retries a fraction": ({"max_retries": 1.5}, {}, "max_retries must be"),
    "max_retries a bool": ({"max_retries": True}, {}, "max_retries must be"),
    "retry not a policy": ({"retry": "fast"}, {}, "retry must be a lean_async.RetryPolicy"),
    "retry not a policy, with max_retries": (
        {"retry": "fast", "max_retries": 1}, {}, "retry must be a lean_async.RetryPolicy",
    ),
    "max_connections zero": ({"max_connections": 0}, {}, "max_connections must be a whole"),
    "max_connections a bool": ({"max_connections": True}, {}, "max_connections"),
    "max_connections a fraction": ({"max_connections": 2.5}, {}, "max_connections"),
    "max_response_bytes zero": ({"max_response_bytes": 0}, {}, "max_response_bytes must be"),
    "session not a session": ({"session": "not a session"}, {}, "session must be an aiohttp"),
    "ssl not a context": ({"ssl": True}, {}, "ssl must be an ssl.SSLContext"),
    "ssl and insecure": (
        {"ssl": ssl.create_default_context(), "insecure_disable_tls_verification": True},
        {}, "either ssl= or insecure_disable_tls_verification=True",
    ),
    "insecure not a bool": (
        {"insecure_disable_tls_verification": "yes"}, {}, "insecure_disable_tls_verification",
    ),
    "rate_limit zero": ({"rate_limit": 0}, {}, "rate_limit must be > 0"),
    "rate_limit a string": ({"rate_limit": "10"}, {}, "rate_limit must be a number"),
    "rate_limit a bool": ({"rate_limit": True}, {}, "rate_limit must be a number"),
    "rate_limit infinite": ({"rate_limit": float("inf")}, {}, "rate_limit must be > 0"),
    "on_request not callable": ({"on_request": "print"}, {}, "on_request must be a callable"),
    "on_retry not callable": ({"on_retry": 3}, {}, "on_retry must be a callable"),
}  # fmt: skip

UNSAFE_URLS = [
    ("http://api.leantech.me", "plain http to a non-loopback host"),
    ("http://10.0.0.1:8080", "plain http to a non-loopback host"),
    ("http://localhost.evil.example", "plain http to a non-loopback host"),
    ("ftp://api.leantech.me", "must be an http(s) URL with a host"),
    ("api.leantech.me", "must be an http(s) URL with a host"),
    ("https://", "must be an http(s) URL with a host"),
    ("https://user:pw@api.leantech.me", "must not carry a query, fragment or user info"),
    ("https://user@api.leantech.me", "must not carry a query, fragment or user info"),
    ("https://api.leantech.me?x=1", "must not carry a query, fragment or user info"),
    ("https://api.leantech.me#top", "must not carry a query, fragment or user info"),
]
for _url, _words in UNSAFE_URLS:
    for _option in ("base_url", "auth_url"):
        MISTAKES[f"{_option} {_url}"] = ({_option: _url}, {}, f"{_option} ")
        MISTAKES[f"{_option} {_url}: why"] = ({_option: _url}, {}, _words)


@pytest.mark.parametrize(("options", "environ", "words"), MISTAKES.values(), ids=MISTAKES.keys())
def test_mistake_is_one_sentence_naming_the_option_and_no_secret(
    options: dict[str, Any], environ: dict[str, str], words: str
) -> None:
    if not {"app_token", "access_token", "client_id", "client_secret"} & options.keys():
        options = {**APP, **options}
    with pytest.raises(ConfigurationError) as info:
        ClientConfig.build(environ=environ, **options)
    message = str(info.value)
    assert words in message
    assert "\n" not in message
    assert not [secret for secret in SECRETS if secret in message]
    # LeanClient(...) takes the same options and refuses them with the same sentence.
    with pytest.raises(ConfigurationError, match="^" + re.escape(message) + "$"):
        LeanClient(environ=environ, **options)


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
        _config(base_url=url)
    assert "hunter2" not in str(info.value)


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        _config(environment="staging")


# -- resolved values ---------------------------------------------------------------------


def test_timeout_in_seconds_bounds_each_attempt_and_connecting_to_ten_seconds() -> None:
    assert _config(timeout=2.5).timeout == aiohttp.ClientTimeout(total=2.5, sock_connect=2.5)
    assert _config(timeout=45).timeout == aiohttp.ClientTimeout(total=45.0, sock_connect=10.0)
    assert _config().timeout == aiohttp.ClientTimeout(total=30.0, sock_connect=10.0)


# The smallest values each bound accepts, and what the config holds for them.
SMALLEST: dict[str, tuple[dict[str, Any], str, Any]] = {
    "half a second timeout": (
        {"timeout": 0.5}, "timeout", aiohttp.ClientTimeout(total=0.5, sock_connect=0.5),
    ),
    "ClientTimeout of half a second": (
        {"timeout": aiohttp.ClientTimeout(sock_read=0.5)}, "timeout",
        aiohttp.ClientTimeout(sock_read=0.5),
    ),
    "one connection": ({"max_connections": 1}, "max_connections", 1),
    "one response byte": ({"max_response_bytes": 1}, "max_response_bytes", 1),
    "no retries": ({"max_retries": 0}, "retry", RetryPolicy(max_retries=0)),
    "a slow rate": ({"rate_limit": 0.1}, "rate_limit", 0.1),
}  # fmt: skip


@pytest.mark.parametrize(("options", "field", "value"), SMALLEST.values(), ids=SMALLEST.keys())
def test_smallest_allowed_value_is_taken(options: dict[str, Any], field: str, value: Any) -> None:
    assert getattr(_config(**options), field) == value


@pytest.mark.parametrize(
    "given",
    [
        aiohttp.ClientTimeout(total=7, sock_read=3),
        aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=None),
    ],
    ids=["bounds", "no bound at all, as an explicit choice"],
)
def test_client_timeout_is_used_as_given(given: aiohttp.ClientTimeout) -> None:
    client = LeanClient(config=_config(timeout=given))
    assert client.config.timeout is given
    assert client._transport._request_options["timeout"] is given


@pytest.mark.parametrize(
    ("options", "policy"),
    [
        ({}, RetryPolicy(max_retries=2)),
        ({"max_retries": 0}, RetryPolicy(max_retries=0)),
        ({"max_retries": 5, "retry": RetryPolicy(initial_delay=0.01, max_delay=0.02)},
         RetryPolicy(max_retries=5, initial_delay=0.01, max_delay=0.02)),
        ({"retry": RetryPolicy(max_retries=4, max_retry_after=9)},
         RetryPolicy(max_retries=4, max_retry_after=9)),
        ({"max_retries": 1, "retry": RetryPolicy(max_retries=4, max_retry_after=9)},
         RetryPolicy(max_retries=1, max_retry_after=9)),
    ],
    ids=["default two", "max_retries", "max_retries overrides the count only",
         "policy as given", "max_retries keeps max_retry_after"],
)  # fmt: skip
def test_max_retries_sets_the_retry_policys_count(
    options: dict[str, Any], policy: RetryPolicy
) -> None:
    config = _config(**options)
    assert config.retry == policy
    assert LeanClient(config=config).retry == policy


def test_rate_limit_is_a_float_and_reaches_the_rate_control() -> None:
    config = _config(rate_limit=12)
    assert config.rate_limit == 12.0 and isinstance(config.rate_limit, float)
    assert _config().rate_limit is None


def test_hooks_are_kept_and_reach_the_transport() -> None:
    client = LeanClient(app_token=APP_TOKEN, environ={}, on_request=_on_request, on_retry=_on_retry)
    assert (client.config.on_request, client.config.on_retry) == (_on_request, _on_retry)
    assert (client._transport._on_request, client._transport._on_retry) == (_on_request, _on_retry)


def test_ssl_context_is_passed_to_every_request() -> None:
    context = ssl.create_default_context()
    assert LeanClient(config=_config(ssl=context))._transport._request_options["ssl"] is context


def test_default_tls_verification_passes_no_ssl_option() -> None:
    assert "ssl" not in LeanClient(config=_config())._transport._request_options


def test_disabled_verification_passes_ssl_false_and_warns_once_per_config(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="lean_async")
    config = _config(insecure_disable_tls_verification=True)
    clients = [LeanClient(config=config) for _ in range(3)]
    assert [c._transport._request_options["ssl"] for c in clients] == [False] * 3
    [warning] = caplog.records
    assert "insecure_disable_tls_verification" in warning.getMessage()


def test_redirects_are_never_followed() -> None:
    assert LeanClient(config=_config())._transport._request_options["allow_redirects"] is False


def test_construction_needs_no_event_loop_and_opens_no_session() -> None:
    client = LeanClient(config=_config())  # a plain (sync) test: no loop is running here
    assert client._transport._session is None
    assert not client.closed


async def test_a_callers_session_is_kept_and_left_open() -> None:
    async with aiohttp.ClientSession() as session:
        client = LeanClient(config=_config(session=session))
        assert client.config.session is session
        await client.close()
        assert not session.closed


async def test_a_session_carrying_a_credential_header_is_refused() -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer x"}) as session:
        with pytest.raises(ConfigurationError, match="session's default headers carry"):
            _config(session=session)


# -- the frozen object -------------------------------------------------------------------


def test_config_is_frozen() -> None:
    config = _config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.base_url = "https://elsewhere.example"  # type: ignore[misc]


def test_config_has_slots_and_no_room_for_other_attributes() -> None:
    config = _config()
    assert not hasattr(config, "__dict__")
    with pytest.raises(AttributeError):
        object.__setattr__(config, "api_key", APP_TOKEN)


REPLACEMENTS: dict[str, tuple[dict[str, Any], str]] = {
    "plain http host": ({"base_url": "http://lean.example"}, "base_url"),
    "token url with a password": ({"auth_url": "https://u:p@lean.example"}, "auth_url"),
    "unknown environment": ({"environment": "staging"}, "environment"),
    "unknown region": ({"region": "uk"}, "region"),
    "credentials not Credentials": ({"credentials": APP_TOKEN}, "credentials"),
    "timeout a number": ({"timeout": 5}, "timeout"),
    "retry not a policy": ({"retry": 3}, "retry"),
    "no connections": ({"max_connections": 0}, "max_connections"),
    "no response bytes": ({"max_response_bytes": 0}, "max_response_bytes"),
    "negative rate": ({"rate_limit": -1.0}, "rate_limit"),
    "ssl a bool": ({"ssl": False}, "ssl"),
    "hook not callable": ({"on_retry": "log"}, "on_retry"),
}


@pytest.mark.parametrize(("changes", "named"), REPLACEMENTS.values(), ids=REPLACEMENTS.keys())
def test_a_replaced_field_is_checked_like_a_built_one(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        dataclasses.replace(_config(), **changes)


def test_a_valid_replacement_is_taken() -> None:
    config = dataclasses.replace(_config(), base_url="https://proxy.example")
    assert LeanClient(config=config).base_url == "https://proxy.example"


def test_one_config_serves_many_clients() -> None:
    config = _config(base_url=PROXY, max_retries=4)
    first, second = LeanClient(config=config), LeanClient(config=config)
    assert first.config is second.config is config
    assert first._transport is not second._transport
    assert first._transport.rate_control is not second._transport.rate_control


@pytest.mark.parametrize(
    "options",
    [APP, {"environment": "production"}, {"timeout": 5}, {"environ": {}}, {"on_retry": _on_retry}],
    ids=["credentials", "environment", "timeout", "environ", "hook"],
)
def test_config_and_other_options_together_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=f"config= and {next(iter(options))}="):
        LeanClient(config=_config(), **options)


def test_lean_client_takes_exactly_the_options_of_client_config_build() -> None:
    # LeanClient(...) hands its keyword arguments to ClientConfig.build: same names, same
    # defaults, same types (config= aside).
    def options(function: Any) -> list[tuple[str, Any, Any]]:
        parameters = inspect.signature(function).parameters.values()
        return [(p.name, p.default, p.annotation) for p in parameters if p.name != "config"]

    assert options(LeanClient.__init__)[1:] == options(ClientConfig.build)


def test_a_clients_config_cannot_be_swapped() -> None:
    client = LeanClient(config=_config())
    with pytest.raises(AttributeError):
        client.config = _config(base_url=PROXY)  # type: ignore[misc]


def test_config_that_is_not_a_client_config_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"config must be a lean_async\.ClientConfig"):
        LeanClient(config={"app_token": APP_TOKEN})  # type: ignore[arg-type]


# -- every way of making a client makes the same config ----------------------------------


def _cli_config(argv: list[str], environ: dict[str, str]) -> ClientConfig:
    parser = argparse.ArgumentParser(parents=[client_flags()])
    return client_config_from_args(parser.parse_args(argv), environ=environ)


CREDENTIALS: dict[str, tuple[list[str], dict[str, str], dict[str, str]]] = {
    # name: (flags, environment, the same as keyword arguments)
    "app token flag": (["--app-token", APP_TOKEN], {}, APP),
    "access token flag": (["--access-token", ACCESS_TOKEN], {}, {"access_token": ACCESS_TOKEN}),
    "client credentials flags": (
        ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET], {}, OAUTH,
    ),
    "secret from the environment": (
        ["--client-id", CLIENT_ID], {"LEAN_CLIENT_SECRET": CLIENT_SECRET}, OAUTH,
    ),
    "app token from the environment": ([], {"LEAN_APP_TOKEN": APP_TOKEN}, {}),
}  # fmt: skip
BEHAVIOUR: dict[str, tuple[list[str], dict[str, Any]]] = {
    "defaults": ([], {}),
    "timeout, retries and rate": (
        ["--timeout", "4.5", "--max-retries", "0", "--rate-limit", "7"],
        {"timeout": 4.5, "max_retries": 0, "rate_limit": 7},
    ),
    "production ksa": (
        ["--environment", "production", "--region", "ksa", "--max-retries", "5"],
        {"environment": "production", "region": "ksa", "max_retries": 5},
    ),
}


@pytest.mark.parametrize("credentials", CREDENTIALS.values(), ids=CREDENTIALS.keys())
@pytest.mark.parametrize("behaviour", BEHAVIOUR.values(), ids=BEHAVIOUR.keys())
async def test_cli_fake_server_and_client_make_equal_configs(
    credentials: tuple[list[str], dict[str, str], dict[str, str]],
    behaviour: tuple[list[str], dict[str, Any]],
) -> None:
    flags, environ, keywords = credentials
    behaviour_flags, options = behaviour
    async with FakeLean(customers=1) as server:
        hosts = {"base_url": server.url, "auth_url": server.token_url}
        argv = ["--base-url", server.url, "--auth-url", server.token_url]
        from_cli = _cli_config(argv + flags + behaviour_flags, environ)
        # The fake server's client always carries credentials: the same as the environment's.
        from_server = server.client_config(environ=environ, **(keywords or APP), **options)
        client = LeanClient(environ=environ, **hosts, **keywords, **options)
        assert from_cli.base_url == server.url
    assert from_cli == from_server == client.config
    # Not equal by accident: what the inputs said is in it.
    assert from_cli.retry.max_retries == options.get("max_retries", 2)
    assert from_cli.timeout.total == options.get("timeout", 30.0)


async def test_fake_server_client_uses_its_config() -> None:
    async with FakeLean(customers=1) as server:
        config = server.client_config(oauth=True, max_retries=1)
        async with server.client(oauth=True, max_retries=1) as client:
            assert client.config == config
            assert config.credentials.client_secret == server.client_secret
            assert await client.customers.get(server.customer_ids[0])  # a token was granted


def test_cli_reports_a_configuration_error_in_flag_terms() -> None:
    with pytest.raises(UsageError, match="--app-token"):
        _cli_config(["--app-token", APP_TOKEN + "\n"], {})
