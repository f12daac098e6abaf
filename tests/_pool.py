"""How many pooled connections a client has checked out: 0 once every call has ended, or
a connection was left half-read (or leaked) by a failure or a cancellation."""

from __future__ import annotations

from lean_async import LeanClient


def connections_in_use(client: LeanClient) -> int:
    connector = client._transport.session.connector
    assert connector is not None
    # aiohttp has no public count of checked-out connections; its connector keeps them here.
    return len(connector._acquired)  # type: ignore[attr-defined]
