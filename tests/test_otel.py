"""OpenTelemetry's aiohttp instrumentation, as the README sets it up, traces every attempt of
the client against the fake server, and no span holds a credential: not by default, and not
with every request header captured once the credential headers are sanitized."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from lean_async import LeanClient, RetryPolicy
from lean_async.testing import FakeLean, Faults

CAPTURE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"
CAPTURE_RESPONSE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE"
SANITIZE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"
# What the README's program adds to the sanitized fields.
README_SANITIZED = "authorization,lean-app-token"

Instrument = Callable[[dict[str, str]], InMemorySpanExporter]


@pytest.fixture
def instrument(monkeypatch: pytest.MonkeyPatch) -> Iterator[Instrument]:
    """``instrument(environ)``: aiohttp instrumented with the OTEL_* variables ``environ``
    (read when instrumenting), spans kept in memory; uninstrumented after the test."""
    instrumentor = AioHttpClientInstrumentor()

    def start(environ: dict[str, str]) -> InMemorySpanExporter:
        for name in (CAPTURE, CAPTURE_RESPONSE, SANITIZE):
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor.instrument(tracer_provider=provider)
        return exporter

    yield start
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
async def server() -> AsyncIterator[FakeLean]:
    async with FakeLean(customers=3, seed=5) as fake:
        yield fake


def _texts(span: ReadableSpan) -> list[str]:
    """Every text a span exports: its name, attribute values, events and their attributes."""
    texts = [span.name]
    attribute_sets = [span.attributes or {}]
    for event in span.events:
        texts.append(event.name)
        attribute_sets.append(event.attributes or {})
    for attributes in attribute_sets:
        for value in attributes.values():
            texts.extend(map(str, value) if isinstance(value, (list, tuple)) else [str(value)])
    return texts


def _secrets(server: FakeLean) -> list[str]:
    # The fake server's tokens are JWTs: base64 of '{"...', which starts "eyJ".
    return [server.app_token, server.client_secret, "Bearer ", "eyJ"]


async def _calls(client: LeanClient, server: FakeLean) -> int:
    """A few calls; the number of HTTP requests the server saw for them."""
    async with client:
        async for customer in client.customers.list(page_size=2):
            await client.payment_sources.list(customer.customer_id)
    return server.stats.requests


CREDENTIALS = {"app token": False, "oauth": True}
CAPTURES: dict[str, dict[str, str]] = {
    "default": {},
    "every header, README's sanitizing": {CAPTURE: ".*", SANITIZE: README_SANITIZED},
    "every header both ways, README's sanitizing": {
        CAPTURE: ".*",
        CAPTURE_RESPONSE: ".*",
        SANITIZE: README_SANITIZED,
    },
    "credential headers by name, README's sanitizing": {
        CAPTURE: "Authorization,LEAN-APP-TOKEN,user-agent",
        SANITIZE: README_SANITIZED,
    },
}


@pytest.mark.parametrize("oauth", CREDENTIALS.values(), ids=CREDENTIALS.keys())
@pytest.mark.parametrize("environ", CAPTURES.values(), ids=CAPTURES.keys())
async def test_every_request_is_a_span_and_no_span_holds_a_credential(
    instrument: Instrument, server: FakeLean, oauth: bool, environ: dict[str, str]
) -> None:
    exporter = instrument(environ)
    requests = await _calls(server.client(oauth=oauth), server)
    spans = exporter.get_finished_spans()
    assert requests == 5 + oauth  # two pages of customers, three customers' sources (+ token)
    assert len(spans) == requests
    assert all(span.attributes and span.attributes.get("http.status_code") == 200 for span in spans)
    leaked = [
        (span.name, text)
        for span in spans
        for text in _texts(span)
        for secret in _secrets(server)
        if secret in text
    ]
    assert leaked == []


@pytest.mark.parametrize(
    ("oauth", "header"),
    [(False, "http.request.header.lean_app_token"), (True, "http.request.header.authorization")],
    ids=["app token", "oauth"],
)
async def test_captured_credential_header_is_recorded_redacted(
    instrument: Instrument, server: FakeLean, oauth: bool, header: str
) -> None:
    exporter = instrument({CAPTURE: ".*", SANITIZE: README_SANITIZED})
    await _calls(server.client(oauth=oauth), server)
    api_spans = [s for s in exporter.get_finished_spans() if "/oauth2/" not in str(s.attributes)]
    assert api_spans
    assert {tuple(span.attributes[header]) for span in api_spans} == {("[REDACTED]",)}  # type: ignore[index]


@pytest.mark.parametrize("oauth", CREDENTIALS.values(), ids=CREDENTIALS.keys())
async def test_without_sanitizing_capture_of_every_header_exports_the_credential(
    instrument: Instrument, server: FakeLean, oauth: bool
) -> None:
    # Why the README adds the credential headers to the sanitized fields (and a check
    # that the search for secrets above finds one when it is there).
    exporter = instrument({CAPTURE: ".*"})
    await _calls(server.client(oauth=oauth), server)
    texts = [text for span in exporter.get_finished_spans() for text in _texts(span)]
    found = {secret for secret in _secrets(server) for text in texts if secret in text}
    assert found == ({"Bearer ", "eyJ"} if oauth else {server.app_token})


async def test_each_retry_is_a_span_of_its_own(instrument: Instrument, server: FakeLean) -> None:
    exporter = instrument({})
    server.faults = Faults(error_rate=0.4, error_statuses=(503,), seed=2)
    client = server.client(retry=RetryPolicy(max_retries=20, initial_delay=0, max_delay=0))
    requests = await _calls(client, server)
    statuses = [span.attributes["http.status_code"] for span in exporter.get_finished_spans()]  # type: ignore[index]
    assert len(statuses) == requests
    assert 503 in statuses
    assert statuses.count(200) == 5  # one answered attempt per call
