"""A real aiohttp.web server on 127.0.0.1 for the tests: scripted answers per path, and
what the server saw (headers, bodies, counts, arrival times, concurrency, client ports)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    client_port: int
    at: float  # time.monotonic() on arrival
    wall_at: float  # time.time() on arrival


def reply(
    status: int = 200,
    *,
    json_body: Any = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
    delay: float = 0.0,
) -> Answer:
    """An ordinary answer; ``json_body`` is serialised, ``body`` sent as is."""
    payload = body if body is not None else b"" if json_body is None else json.dumps(json_body)

    async def answer(request: web.Request) -> web.StreamResponse:
        if delay:
            await asyncio.sleep(delay)
        return web.Response(
            status=status,
            body=payload,
            headers=CIMultiDict({"Content-Type": content_type, **(headers or {})}),
        )

    return answer


def lean_error(status: int, code: str, message: str, *, request_id: str = "req-1") -> Answer:
    """An error in Lean's own shape, with its correlation id header."""
    return reply(
        status,
        json_body={"timestamp": "2024-01-01T00:00:00Z", "status": code, "message": message},
        headers={"lean-correlation-id": request_id, "lean-trace-id": "trace-1"},
    )


def hang(seconds: float = 30.0) -> Answer:
    """Answer nothing for ``seconds`` (the client's timeout or cancellation ends it first)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=200, body=b"[]")

    return answer


def drop_connection() -> Answer:
    """Read the request, then close the connection without answering."""

    async def answer(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(1)  # the closed transport ends this handler
        raise AssertionError("unreachable")

    return answer


def truncated(declared: int, sent: bytes) -> Answer:
    """Promise ``declared`` bytes in Content-Length, send ``sent``, then close."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = declared
        await response.prepare(request)
        await response.write(sent)
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(1)
        raise AssertionError("unreachable")

    return answer


def issue_tokens(*, expires_in: float = 3599, prefix: str = "issued-token", delay: float = 0.0):
    """An OAuth2 token endpoint that answers each request with a new token."""
    numbers = itertools.count(1)

    async def answer(request: web.Request) -> web.StreamResponse:
        if delay:
            await asyncio.sleep(delay)
        token = f"{prefix}-{next(numbers)}"
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "scope": "api",
                "expires_in": expires_in,
            }
        )

    return answer


class LocalServer:
    """Serves scripted answers on 127.0.0.1 at a free port and records every request.

    ``script(path, a, b, c)`` answers the first request to ``path`` with ``a``, the second
    with ``b``, and every later one with ``c``; unscripted paths get ``default``.
    """

    def __init__(
        self, default: Answer | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.default = default or reply(json_body=[])
        self.ssl_context = ssl_context  # serve HTTPS with it
        self.requests: list[SeenRequest] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._scripts: dict[str, list[Answer]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def script(self, path: str, *answers: Answer) -> None:
        self._scripts[path] = list(answers)

    def seen(self, path: str | None = None) -> list[SeenRequest]:
        return [r for r in self.requests if path is None or r.path == path]

    @property
    def client_ports(self) -> set[int]:
        return {r.client_port for r in self.requests}

    async def start(self) -> LocalServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Handlers are cancelled when the client goes away, so hanging answers end at once.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            SeenRequest(
                method=request.method,
                path=request.path,
                headers=request.headers,
                body=await request.read(),
                client_port=peer[1] if peer else 0,
                at=time.monotonic(),
                wall_at=time.time(),
            )
        )
        answers = self._scripts.get(request.path)
        answer = self.default
        if answers:
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await answer(request)
        finally:
            self.in_flight -= 1


def trickle(body: bytes, *, chunk: int = 1, delay: float = 0.05) -> Answer:
    """Declare ``body``'s length, then send it ``chunk`` bytes every ``delay`` seconds."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        for start in range(0, len(body), chunk):
            await asyncio.sleep(delay)
            await response.write(body[start : start + chunk])
        await response.write_eof()
        return response

    return answer


def endless_chunks(chunk: bytes = b" " * 65536) -> Answer:
    """A chunked answer (no Content-Length) that never ends: ``[`` then ``chunk`` forever."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"[")
        while True:  # ends when the client goes away and the handler is cancelled
            await response.write(chunk)
            await asyncio.sleep(0)

    return answer


# -- a bare TCP server, for what aiohttp.web will not do ---------------------------------

Conversation = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 request's head and body; None when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


def response_head(status: int = 200, *, length: int | None, **headers: str) -> bytes:
    """A status line and headers; ``length=None`` sends no Content-Length."""
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of an orderly FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class RawServer:
    """A bare asyncio TCP server on 127.0.0.1 that hands each accepted connection to
    ``conversation(server, reader, writer)``: resets, silence, trickles and idle closes that an
    HTTP framework will not produce on request. Counts connections and requests."""

    def __init__(self, conversation: Conversation) -> None:
        self._conversation = conversation
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.requests = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        request = await read_request(reader)
        if request is not None:
            self.requests += 1
        return request

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._conversation(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: that is what these tests provoke
        finally:
            self._tasks.discard(task)
            writer.transport.abort()


@contextlib.asynccontextmanager
async def serve_route(path: str, handler: Answer) -> AsyncIterator[str]:
    """A server on 127.0.0.1 answering GET ``path`` (a route pattern) with ``handler``;
    yields its base URL. Requests in flight are cancelled when it stops."""
    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
