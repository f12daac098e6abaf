"""Flags shared by the commands, and the LeanClient they describe."""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping

from .._client import LeanClient
from .._config import ClientConfig
from .._constants import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ENV_ACCESS_TOKEN,
    ENV_APP_TOKEN,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENVIRONMENTS,
    REGIONS,
)
from .._exceptions import ConfigurationError
from .._observe import OnRetry
from .._retry import RetryPolicy, backoff_delay
from .errors import UsageError

__all__ = [
    "client_config_from_args",
    "client_flags",
    "client_from_args",
    "positive_int",
    "verbosity_flags",
]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive_number(what: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0, refused as "expected ``what`` > 0"."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected {what} > 0, got {text!r}")
        return value

    return parse


positive_seconds = _positive_number("a number of seconds")
positive_rate = _positive_number("a number of requests per second")


def whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def worst_case_seconds(timeout: float, max_retries: int) -> float:
    """The longest a call can take when every attempt times out: each attempt's timeout
    and the longest backoff waits between them (without Retry-After or a token fetch)."""
    policy = RetryPolicy(max_retries=max_retries)
    waits = sum(backoff_delay(retry, policy, 0.0) for retry in range(max_retries))
    return (max_retries + 1) * timeout + waits


def verbosity_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log the client's retries to stderr; -vv: every request",
    )
    return parent


def client_flags() -> argparse.ArgumentParser:
    """Credentials, target and behaviour of the client, for the commands that call Lean."""
    parent = argparse.ArgumentParser(add_help=False)
    credentials = parent.add_argument_group(
        "credentials",
        "One scheme: an app token, an access token, or OAuth2 client credentials.\n"
        f"Without these flags: the environment variables {ENV_APP_TOKEN}, "
        f"{ENV_ACCESS_TOKEN},\nor {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}. "
        "Prefer the environment for secrets: a value\non the command line stays in the "
        "shell's history and shows in process lists.",
    )
    credentials.add_argument("--app-token", metavar="TOKEN", help=f"(env {ENV_APP_TOKEN})")
    credentials.add_argument(
        "--access-token", metavar="TOKEN", help=f"a Bearer token (env {ENV_ACCESS_TOKEN})"
    )
    credentials.add_argument("--client-id", metavar="ID", help=f"(env {ENV_CLIENT_ID})")
    credentials.add_argument(
        "--client-secret",
        metavar="SECRET",
        help=f"(env {ENV_CLIENT_SECRET}, also with --client-id)",
    )
    target = parent.add_argument_group("target")
    target.add_argument("--environment", choices=ENVIRONMENTS, default="sandbox")
    target.add_argument("--region", choices=REGIONS, default="uae")
    target.add_argument(
        "--base-url", metavar="URL", help="the API's URL instead of the environment's"
    )
    target.add_argument(
        "--auth-url", metavar="URL", help="the OAuth2 token URL instead of the environment's"
    )
    behaviour = parent.add_argument_group("requests")
    worst = worst_case_seconds(DEFAULT_TIMEOUT, DEFAULT_MAX_RETRIES)
    behaviour.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="per attempt (default %(default)s). A call that keeps failing makes 1 + "
        f"--max-retries attempts with waits between: at most about {worst:.0f} s with the "
        "defaults "
        "(more when the server asks for a wait with Retry-After, up to 60 s each; with "
        "OAuth2, plus a token request when one is due). Each retry is one line on stderr",
    )
    behaviour.add_argument(
        "--max-retries",
        type=whole_number,
        default=DEFAULT_MAX_RETRIES,
        metavar="N",
        help="retries of a failed request (default %(default)s)",
    )
    behaviour.add_argument(
        "--rate-limit",
        type=positive_rate,
        metavar="PER_SECOND",
        help="start at most this many requests per second (default: no limit)",
    )
    return parent


def client_config_from_args(
    args: argparse.Namespace,
    *,
    concurrency: int = 1,
    environ: Mapping[str, str] | None = None,
    on_retry: OnRetry | None = None,
) -> ClientConfig:
    """The client configuration the flags describe (``environ``, default ``os.environ``,
    for what they leave out), with the command's own ``on_retry`` hook; UsageError (one
    sentence, in terms of the flags) when they don't describe one."""
    env = os.environ if environ is None else environ
    client_id, client_secret = args.client_id, args.client_secret
    if (client_id is None) != (client_secret is None):
        # The other half of the pair may come from the environment, to keep the secret
        # out of the shell's history.
        client_id = client_id or env.get(ENV_CLIENT_ID) or None
        client_secret = client_secret or env.get(ENV_CLIENT_SECRET) or None
    try:
        return ClientConfig.build(
            app_token=args.app_token,
            access_token=args.access_token,
            client_id=client_id,
            client_secret=client_secret,
            environment=args.environment,
            region=args.region,
            base_url=args.base_url,
            auth_url=args.auth_url,
            timeout=args.timeout,
            max_retries=args.max_retries,
            rate_limit=args.rate_limit,
            max_connections=max(DEFAULT_MAX_CONNECTIONS, concurrency),
            environ=env,
            on_retry=on_retry,
        )
    except ConfigurationError as exc:
        raise UsageError(in_flag_terms(str(exc))) from None


def client_from_args(
    args: argparse.Namespace, *, concurrency: int = 1, on_retry: OnRetry | None = None
) -> LeanClient:
    """The client the flags describe, with the command's own ``on_retry`` hook; UsageError
    when they don't."""
    return LeanClient(
        config=client_config_from_args(args, concurrency=concurrency, on_retry=on_retry)
    )


# The client's keyword arguments that are flags of the same name on the command line.
CLIENT_OPTIONS = (
    "app_token",
    "access_token",
    "client_id",
    "client_secret",
    "base_url",
    "auth_url",
    "timeout",
    "max_retries",
    "rate_limit",
)


def in_flag_terms(message: str, names: Iterable[str] = CLIENT_OPTIONS) -> str:
    """``message``, from the library, with the keyword arguments ``names`` (``app_token=``
    or ``app_token``) named as the flags that set them (``--app-token``)."""
    keyword = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b=?")
    return keyword.sub(lambda match: "--" + match[1].replace("_", "-"), message)
