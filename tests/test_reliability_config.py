"""Configuration mistakes are caught at construction, before any I/O, each with one clear
sentence that names the option (and never echoes a secret). The plain accept/refuse cases
are in test_client_config.py; these are the ones that would otherwise surface late."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from _samples import ACCESS_TOKEN, APP_TOKEN, CLIENT_ID, CLIENT_SECRET

from lean_async import ConfigurationError, LeanClient

MISTAKES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown environment": ({"environment": "staging"}, "environment"),
    "unknown region": ({"region": "uk"}, "region"),
    "two credential schemes": ({"access_token": ACCESS_TOKEN}, "exactly one"),
    "negative timeout": ({"timeout": -1}, "timeout"),
    "negative retry count": ({"max_retries": -1}, "max_retries"),
    "plain http to a remote host": ({"base_url": "http://api.leantech.me"}, "base_url"),
    "plain http token url": ({"auth_url": "http://auth.leantech.me/t"}, "auth_url"),
    "negative total in a ClientTimeout": (
        {"timeout": aiohttp.ClientTimeout(total=-1)},
        "timeout.total",
    ),
    "zero read timeout in a ClientTimeout": (
        {"timeout": aiohttp.ClientTimeout(total=5, sock_read=0)},
        "timeout.sock_read",
    ),
    "nan connect timeout in a ClientTimeout": (
        {"timeout": aiohttp.ClientTimeout(sock_connect=float("nan"))},
        "timeout.sock_connect",
    ),
    "app token with a trailing newline": ({"app_token": APP_TOKEN + "\n"}, "app_token"),
    "app token with a header injection": (
        {"app_token": APP_TOKEN + "\r\nX-Evil: 1"},
        "app_token",
    ),
}


def _client(**options: Any) -> LeanClient:
    options.setdefault("app_token", APP_TOKEN)
    return LeanClient(environ={}, **options)


@pytest.mark.parametrize(("options", "named"), MISTAKES.values(), ids=MISTAKES.keys())
def test_mistake_is_a_configuration_error_in_one_sentence_naming_the_option(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _client(**options)
    message = str(info.value)
    assert named in message
    assert "\n" not in message
    assert APP_TOKEN not in message and ACCESS_TOKEN not in message


@pytest.mark.parametrize(
    "options",
    [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET + "\n"},
        {"app_token": None, "access_token": "\t" + ACCESS_TOKEN},
    ],
    ids=["client secret", "access token"],
)
def test_any_credential_with_a_control_character_is_refused_without_echoing_it(
    options: dict[str, Any],
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _client(**options)
    assert CLIENT_SECRET not in str(info.value)
    assert ACCESS_TOKEN not in str(info.value)


def test_credential_from_the_environment_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="app_token"):
        LeanClient(environ={"LEAN_APP_TOKEN": APP_TOKEN + "\n"})


def test_client_timeout_without_any_bound_is_allowed_as_an_explicit_choice() -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=None)
    assert _client(timeout=timeout)._transport._timeout is timeout
