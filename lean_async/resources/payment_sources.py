"""``client.payment_sources``: list, get and delete a customer's payment sources."""

from __future__ import annotations

import builtins
import enum
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Coroutine, Iterable
from typing import Any, TypeVar, cast

import msgspec

from .._constants import DEFAULT_SWEEP_CONCURRENCY
from .._ids import CustomerLike, IdLike, validate_customer_id, validate_id
from .._sweep import SweepProgress, SweepResult, check_sweep, run_sweep
from .._transport import Transport
from ..types.payment_sources import (
    PaymentSource,
    decode_payment_source,
    decode_payment_sources,
    decode_raw_payment_sources,
)

__all__ = ["DeleteReason", "PaymentSources"]


class DeleteReason(str, enum.Enum):
    """Why a payment source is deleted (Lean's published values)."""

    USER_REQUESTED = "USER_REQUESTED"
    TPP_REQUESTED = "TPP_REQUESTED"

    def __str__(self) -> str:
        return self.value


Id = TypeVar("Id")
_Fetch = Callable[[Any], Coroutine[Any, Any, "builtins.list[PaymentSource]"]]

# The default reason's body, encoded once.
_DEFAULT_DELETE_BODY = msgspec.json.encode({"reason": DeleteReason.USER_REQUESTED.value})


def _list_path(customer: object) -> str:
    return f"/customers/v1/{validate_customer_id(customer)}/payment-sources"


def _ignore_body(body: bytes) -> None:
    """A delete's success (also a 404 after an attempt that may have deleted it)."""
    return None


class PaymentSources:
    """The Payment Sources API. Ids are UUID strings (any case, sent as given) or
    ``uuid.UUID``; anything else raises ``InvalidIdError`` before a request is made. A
    ``Customer`` stands for its ``customer_id``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def list(self, customer_id: CustomerLike) -> builtins.list[PaymentSource]:
        """All payment sources of a customer (an empty list when it has none)."""
        return await self._list(customer_id, retry_rate_limited=True)

    async def _list(
        self, customer_id: CustomerLike, *, retry_rate_limited: bool
    ) -> builtins.list[PaymentSource]:
        path = _list_path(customer_id)
        return await self._transport.request(
            "GET", path, decode_payment_sources, retry_rate_limited=retry_rate_limited
        )

    def _list_for_sweep(
        self, customer_id: CustomerLike
    ) -> Coroutine[Any, Any, builtins.list[PaymentSource]]:
        # The sweep handles 429s itself: it slows down and requeues the customer. A plain
        # function returning the request's coroutine: one frame less per customer.
        path = _list_path(customer_id)
        return self._transport.request(
            "GET", path, decode_payment_sources, retry_rate_limited=False, background=True
        )

    def sweep(
        self,
        customer_ids: Iterable[Id] | AsyncIterable[Id],
        *,
        concurrency: int = DEFAULT_SWEEP_CONCURRENCY,
        progress: SweepProgress | None = None,
    ) -> AsyncGenerator[SweepResult[Id], None]:
        """List the payment sources of many customers, yielding a ``SweepResult`` for each
        input id exactly once, as they complete.

        ``customer_ids`` (any iterable or async iterable of ids or ``Customer`` objects,
        such as ``client.customers.list()`` for every customer of the application) is read
        lazily, about ``concurrency`` ids ahead of what has been yielded; each result's
        ``customer_id`` is the input as given. An input that raises (a customer page
        that failed) ends the sweep with that error. At most ``concurrency``
        requests are in flight, started as the client's rate control allows (it learns
        the server's limit from 429s, shared with the client's other calls, which go
        first); a customer turned away with 429 is requeued, after its Retry-After.
        Failures (after the client's retries,
        including invalid ids) become results with ``error`` set; they never end the
        sweep, except when the API cannot be reached at all: then the sweep raises
        ``APIConnectionError`` after its first few customers. Pass a ``SweepProgress``
        to watch counters while it runs. Leaving the
        loop early cancels what is in flight: wrap the sweep in
        ``contextlib.aclosing()`` to make that clean-up deterministic.
        """
        return self._sweep_with(self._list_for_sweep, customer_ids, concurrency, progress)

    def _sweep_raw(
        self,
        customer_ids: Iterable[Id] | AsyncIterable[Id],
        *,
        concurrency: int = DEFAULT_SWEEP_CONCURRENCY,
        progress: SweepProgress | None = None,
    ) -> AsyncGenerator[SweepResult[Id], None]:
        """``sweep()``, but each result's ``sources`` holds Lean's JSON of each payment
        source as it came (``msgspec.Raw``, unknown fields included), checked as ``list()``
        checks it: for output that must not lose what the structs leave out."""
        # The sweep passes sources through without looking inside.
        fetch = cast(_Fetch, self._list_raw_for_sweep)
        return self._sweep_with(fetch, customer_ids, concurrency, progress)

    def _list_raw_for_sweep(
        self, customer_id: CustomerLike
    ) -> Coroutine[Any, Any, builtins.list[msgspec.Raw]]:
        path = _list_path(customer_id)
        return self._transport.request(
            "GET", path, decode_raw_payment_sources, retry_rate_limited=False, background=True
        )

    def _sweep_with(
        self,
        fetch: _Fetch,
        customer_ids: Iterable[Id] | AsyncIterable[Id],
        concurrency: int,
        progress: SweepProgress | None,
    ) -> AsyncGenerator[SweepResult[Id], None]:
        check_sweep(customer_ids, concurrency)
        return run_sweep(
            fetch,
            customer_ids,
            concurrency=concurrency,
            policy=self._transport.retry,
            control=self._transport.rate_control,
            progress=progress,
        )

    async def list_many(
        self,
        customer_ids: Iterable[Id] | AsyncIterable[Id],
        *,
        concurrency: int = DEFAULT_SWEEP_CONCURRENCY,
        progress: SweepProgress | None = None,
    ) -> dict[Id, SweepResult[Id]]:
        """Sweep ``customer_ids`` and return every result at once, keyed by id as given
        (for small jobs; a repeated id keeps its last result)."""
        results: dict[Id, SweepResult[Id]] = {}
        sweep = self.sweep(customer_ids, concurrency=concurrency, progress=progress)
        try:
            async for result in sweep:
                results[result.customer_id] = result
        finally:
            await sweep.aclose()
        return results

    async def get(self, customer_id: CustomerLike, payment_source_id: IdLike) -> PaymentSource:
        """One payment source; ``NotFoundError`` when absent or not this customer's."""
        path = self._source_path(customer_id, payment_source_id)
        return await self._transport.request("GET", path, decode_payment_source)

    async def delete(
        self,
        customer_id: CustomerLike,
        payment_source_id: IdLike,
        *,
        reason: DeleteReason | str = DeleteReason.USER_REQUESTED,
    ) -> None:
        """Delete a payment source, revoking its Account-on-File consent.

        If an earlier attempt may have reached Lean (a lost connection, a timeout, a 5xx)
        and the retry finds the source gone, the delete counts as done.
        """
        path = self._source_path(customer_id, payment_source_id)
        reason = str(reason.value if isinstance(reason, DeleteReason) else reason)
        if not reason or not reason.strip():
            raise ValueError("reason must be a non-empty string such as 'USER_REQUESTED'")
        body = (
            _DEFAULT_DELETE_BODY
            if reason == DeleteReason.USER_REQUESTED.value
            else msgspec.json.encode({"reason": reason})
        )
        await self._transport.request(
            "DELETE", path, _ignore_body, json_body=body, missing_ok_after_retry=True
        )

    @staticmethod
    def _source_path(customer_id: CustomerLike, payment_source_id: IdLike) -> str:
        source = validate_id(payment_source_id, "payment_source_id")
        return f"{_list_path(customer_id)}/{source}"
