"""FakeLean: the fake server's lifecycle, its credentials, and what tests do to its data."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
from aiohttp import web

from .._client import LeanClient
from .._config import ClientConfig
from ..types.customers import Customer
from ..types.payment_sources import BeneficiaryStatus, PaymentSource, PaymentSourceStatus
from ._app import TOKEN_PATH, LeanApp
from ._data import BANKS_BY_ID, DataSet, new_payment_source
from ._faults import Faults
from ._stats import Stats
from ._tokens import TokenIssuer
from ._webhooks import DEFAULT_RETRY_DELAYS, WebhookSender, beneficiary_event, source_event

__all__ = ["DEFAULT_TOKEN_TTL", "EVERY_ADDRESS", "FakeLean", "serve"]

DEFAULT_TOKEN_TTL = 3599.0  # what Lean's token endpoint answers
_SHUTDOWN_TIMEOUT = 0.5  # a fake server need not wait long for slow answers to finish


class FakeLean:
    """A fake Lean API on 127.0.0.1 (a free port by default), like stripe-mock for Stripe.

    ``async with FakeLean(customers=100, seed=1) as server:`` then ``server.client()`` is a
    LeanClient wired to it. The data is generated from ``seed`` unless ``data`` (a DataSet
    or the path of one saved with ``save_data``) is given. Credentials derive from the seed
    too, unless given.
    """

    def __init__(
        self,
        *,
        customers: int = 10,
        seed: int = 0,
        data: DataSet | str | Path | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        delete_status: int = 200,
        unknown_customer_404: bool = False,
        customer_page_cap: int | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        app_token: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        if delete_status not in (200, 204):
            raise ValueError(f"delete_status must be 200 or 204, got {delete_status!r}")
        if (webhook_url is None) != (webhook_secret is None):
            raise ValueError("give both webhook_url and webhook_secret, or neither")
        _check_page_cap(customer_page_cap)
        if isinstance(data, (str, Path)):
            data = DataSet.load(data)
        self.data = data if data is not None else DataSet.generate(customers, seed)
        secrets = random.Random(f"lean-async fake credentials {seed}")
        self.app_token = app_token or secrets.randbytes(16).hex()
        # Lean's client_id is the application id.
        self.client_id = self.data.app_id
        self.client_secret = client_secret or secrets.randbytes(24).hex()
        self.host = host
        self._port = port
        self._rng = random.Random(f"lean-async fake runtime {seed}")
        self.webhooks = (
            None
            if webhook_url is None or webhook_secret is None
            else WebhookSender(webhook_url, webhook_secret, retry_delays=webhook_retry_delays)
        )
        self._app = LeanApp(
            data=self.data,
            tokens=TokenIssuer(self.client_id, self.client_secret, token_ttl),
            app_token=self.app_token,
            faults=faults or Faults(),
            delete_status=delete_status,
            unknown_customer_404=unknown_customer_404,
            customer_page_cap=customer_page_cap,
            on_delete=self._deleted,
        )
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("this FakeLean is already started")
        runner = web.AppRunner(
            self._app.application(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop answering, abandon webhook deliveries under way, close everything."""
        runner, self._runner = self._runner, None
        if self.webhooks is not None:
            await self.webhooks.close()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeLean:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- where and who -------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:54321``: one that reaches the server
        from this machine, also when it listens on every address (``0.0.0.0``, ``::``)."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def customer_ids(self) -> list[str]:
        return self.data.customer_ids

    @property
    def customers(self) -> list[Customer]:
        """Every customer, in the order of the customer list."""
        return self.data.customers

    def add_customer(self, app_user_id: str | None = None) -> Customer:
        """A new customer, as ``POST /customers/v1/`` makes (app user id ``user-<its
        id>`` unless given); ValueError if ``app_user_id`` has one already."""
        customer_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        return self.data.add_customer(customer_id, app_user_id or f"user-{customer_id}")

    def client(self, *, oauth: bool = False, **overrides: Any) -> LeanClient:
        """A LeanClient wired to this server: with the app token, or with ``oauth=True``
        the OAuth2 client credentials; ``overrides`` are LeanClient's keyword arguments."""
        return LeanClient(config=self.client_config(oauth=oauth, **overrides))

    def client_config(self, *, oauth: bool = False, **overrides: Any) -> ClientConfig:
        """The configuration of :meth:`client`, e.g. to build several clients from."""
        options: dict[str, Any] = {"base_url": self.url, "auth_url": self.token_url}
        if oauth:
            options.update(client_id=self.client_id, client_secret=self.client_secret)
        elif not {"app_token", "access_token", "client_id", "client_secret"} & overrides.keys():
            options["app_token"] = self.app_token
        options.update(overrides)
        return ClientConfig.build(**options)

    # -- knobs and counters --------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._app.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        """Takes effect from the next request; the fault RNG restarts from ``faults.seed``."""
        self._app.faults = faults

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event this server created, oldest first, as it sends them by webhook and
        lists them on ``GET /events/v1``."""
        return self._app.events.events

    @property
    def stats(self) -> Stats:
        return self._app.stats

    @property
    def delete_status(self) -> int:
        return self._app.delete_status

    @delete_status.setter
    def delete_status(self, status: int) -> None:
        self._app.delete_status = status

    @property
    def unknown_customer_404(self) -> bool:
        return self._app.unknown_customer_404

    @unknown_customer_404.setter
    def unknown_customer_404(self, value: bool) -> None:
        self._app.unknown_customer_404 = value

    @property
    def customer_page_cap(self) -> int | None:
        """The largest page of customers served (the answer's ``page.size`` says so), or
        None for no cap."""
        return self._app.customer_page_cap

    @customer_page_cap.setter
    def customer_page_cap(self, cap: int | None) -> None:
        self._app.customer_page_cap = _check_page_cap(cap)

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (a client then gets 401)."""
        self._app.tokens.revoke_all()

    def save_data(self, path: str | Path) -> None:
        self.data.save(path)

    # -- what the LinkSDK and the banks would do -----------------------------------

    def add_payment_source(
        self,
        customer_id: str,
        *,
        bank_identifier: str | None = None,
        payment_destination_id: str | None = None,
        cool_off: bool = True,
    ) -> PaymentSource:
        """A new payment source with one beneficiary, as the LinkSDK's createPaymentSource
        makes (the customer is created if new); sends ``payment_source.created`` and
        ``payment_source.beneficiary.created``. With ``cool_off`` the beneficiary awaits
        its bank cool-off until ``activate_beneficiary``."""
        bank = None
        if bank_identifier is not None:
            bank = BANKS_BY_ID.get(bank_identifier)
            if bank is None:
                raise ValueError(f"unknown bank_identifier {bank_identifier!r}")
        status = (
            PaymentSourceStatus.AWAITING_BENEFICIARY_COOL_OFF
            if cool_off
            else PaymentSourceStatus.ACTIVE
        )
        source = new_payment_source(
            self._rng,
            app_id=self.data.app_id,
            customer_id=customer_id,
            destinations=[payment_destination_id or self.data.destinations[0]],
            created_at=_now(),
            bank=bank,
            status=status.value,
        )
        self.data.put(customer_id, source)
        self._send(
            source_event("payment_source.created", source, "A payment source was created"),
            *(
                beneficiary_event(
                    "payment_source.beneficiary.created",
                    source,
                    beneficiary,
                    "A beneficiary was added to a payment source",
                )
                for beneficiary in source.beneficiaries
            ),
        )
        return source

    def activate_beneficiary(
        self, customer_id: str, payment_source_id: str, beneficiary_id: str | None = None
    ) -> PaymentSource:
        """End a beneficiary's bank cool-off (by default the first one still waiting): it
        becomes ACTIVE, and ``payment_source.beneficiary.updated`` is sent."""
        source = self.data.find(customer_id, payment_source_id)
        if source is None:
            raise LookupError(f"no payment source {payment_source_id} for {customer_id}")
        index = next(
            (
                i
                for i, b in enumerate(source.beneficiaries)
                if (b.id.lower() == beneficiary_id.lower() if beneficiary_id else not b.is_active)
            ),
            None,
        )
        if index is None:
            raise LookupError(f"no beneficiary to activate in payment source {source.id}")
        now = _now()
        active = BeneficiaryStatus.ACTIVE.value
        beneficiaries = list(source.beneficiaries)
        beneficiary = msgspec.structs.replace(
            beneficiaries[index], status=active, beneficiary_cool_off_expiry=now
        )
        beneficiaries[index] = beneficiary
        changes: dict[str, Any] = {"beneficiaries": beneficiaries}
        if index == 0:  # the deprecated top-level fields follow the first beneficiary
            changes.update(status=active, beneficiary_cool_off_expiry=now)
        source = msgspec.structs.replace(source, **changes)
        self.data.put(customer_id, source)
        self._send(
            beneficiary_event(
                "payment_source.beneficiary.updated",
                source,
                beneficiary,
                "A beneficiary's cool-off period has ended",
            )
        )
        return source

    async def webhooks_idle(self) -> None:
        """Wait until every webhook sent so far was delivered or given up."""
        if self.webhooks is not None:
            await self.webhooks.idle()

    def _deleted(self, source: PaymentSource) -> None:
        # Lean does not document what follows a delete; this server announces the source
        # as REVOKED (the OpenAPI's status for a withdrawn consent) with payment_source.updated.
        revoked = msgspec.structs.replace(source, status=PaymentSourceStatus.REVOKED.value)
        self._send(source_event("payment_source.updated", revoked, "A payment source was revoked"))

    def _send(self, *events: dict[str, Any]) -> None:
        self._app.events.record(events)
        if self.webhooks is not None:
            self.webhooks.send(events)

    def __repr__(self) -> str:
        where = self.url if self._runner is not None else "not started"
        return f"FakeLean({where}, customers={len(self.data.customer_ids)})"


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    customers: int = 100,
    seed: int = 0,
    faults: Faults | None = None,
    data: DataSet | str | Path | None = None,
    token_ttl: float = DEFAULT_TOKEN_TTL,
    delete_status: int = 200,
    unknown_customer_404: bool = False,
    customer_page_cap: int | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    ready: Callable[[FakeLean], object] | None = None,
) -> None:
    """Run a FakeLean until cancelled; ``ready(server)`` is called once it listens (to
    print its URL and credentials: this function prints nothing)."""
    server = FakeLean(
        customers=customers,
        seed=seed,
        data=data,
        faults=faults,
        host=host,
        port=port,
        token_ttl=token_ttl,
        delete_status=delete_status,
        unknown_customer_404=unknown_customer_404,
        customer_page_cap=customer_page_cap,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )
    async with server:
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()


def _check_page_cap(cap: int | None) -> int | None:
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ValueError(f"customer_page_cap must be a whole number >= 1 or None, got {cap!r}")
    return cap


# Addresses that mean "every address", and the loopback by which a client here reaches them.
EVERY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def _url_host(host: str) -> str:
    """``host`` as it goes into a URL that reaches a server listening on it from this
    machine: a loopback address for a wildcard one, an IPv6 address in brackets."""
    host = EVERY_ADDRESS.get(host, host)
    return f"[{host}]" if ":" in host else host
