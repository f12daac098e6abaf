"""The fake Lean server answers as LEAN_API_NOTES.md and the seed spec describe."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from lean_async import (
    AuthenticationError,
    NotFoundError,
    PaymentSource,
    RetryPolicy,
    decode_payment_source,
    decode_payment_sources,
)
from lean_async.testing import DataSet, FakeLean, Faults
from lean_async.testing._data import iban
from lean_async.testing._faults import Fault, plan
from lean_async.testing._mock_flags import server_options

pytestmark = pytest.mark.timeout(30)

APP_TOKEN = "lean-app-token"
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
MICROSECONDS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NANOSECONDS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
FAST_RETRY = RetryPolicy(max_retries=6, initial_delay=0.001, max_delay=0.01)

SOURCE_FIELDS = {
    "id",
    "customer_id",
    "app_id",
    "status",
    "bank_identifier",
    "beneficiary_cool_off_expiry",
    "consent_id",
    "account_iban_last4",
    "currency",
    "created_at",
    "end_user_ids",
    "beneficiaries",
    "accounts",
}
BENEFICIARY_FIELDS = {
    "id",
    "payment_destination_id",
    "status",
    "beneficiary_cool_off_expiry",
    "bank_identifier",
}
ACCOUNT_FIELDS = {
    "id",
    "account_id",
    "account_name",
    "account_number",
    "iban",
    "currency",
    "balance",
    "balance_last_updated",
}


# -- helpers -----------------------------------------------------------------------


class Answer(msgspec.Struct):
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture
async def server() -> AsyncIterator[FakeLean]:
    async with FakeLean(customers=30, seed=7) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def raw_sources(data: DataSet) -> Iterator[dict[str, Any]]:
    for customer_id in data.customer_ids:
        yield from json.loads(data.list_body(customer_id) or b"")


def list_url(server: FakeLean, customer_id: str) -> str:
    return f"{server.url}/customers/v1/{customer_id}/payment-sources"


def source_url(server: FakeLean, customer_id: str, source_id: str) -> str:
    return f"{list_url(server, customer_id)}/{source_id}"


def a_source(server: FakeLean) -> PaymentSource:
    return next(iter(server.data.all_payment_sources()))


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Answer:
    async with http.request(method, url, headers=headers, **kwargs) as response:
        return Answer(response.status, dict(response.headers), await response.read())


async def as_app(http: aiohttp.ClientSession, server: FakeLean, method: str, url: str) -> Answer:
    return await call(http, method, url, headers={APP_TOKEN: server.app_token})


async def fetch_token(http: aiohttp.ClientSession, server: FakeLean, **form: str) -> Answer:
    fields = {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "grant_type": "client_credentials",
        "scope": "api",
        **form,
    }
    return await call(http, "POST", server.token_url, data=fields)


async def bearer(http: aiohttp.ClientSession, server: FakeLean, scope: str = "api") -> str:
    answer = await fetch_token(http, server, scope=scope)
    assert answer.status == 200
    token: str = answer.json()["access_token"]
    return token


def mod97_is_valid(value: str) -> bool:
    rearranged = value[4:] + value[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# -- the data set ------------------------------------------------------------------


def test_generated_sources_carry_every_documented_field() -> None:
    sources = list(raw_sources(DataSet.generate(60, seed=1)))
    assert set().union(*sources) == SOURCE_FIELDS
    beneficiaries = [b for s in sources for b in s["beneficiaries"]]
    assert set().union(*beneficiaries) == BENEFICIARY_FIELDS
    accounts = [a for s in sources for a in s["accounts"]]
    assert set().union(*accounts) >= ACCOUNT_FIELDS


def test_generated_sources_have_every_status_of_both_seeds() -> None:
    sources = list(raw_sources(DataSet.generate(60, seed=1)))
    assert {s["status"] for s in sources} == {
        "ACTIVE",
        "AWAITING_BENEFICIARY_COOL_OFF",
        "EXPIRED",
        "REVOKED",
    }
    beneficiary_statuses = {b["status"] for s in sources for b in s["beneficiaries"]}
    assert beneficiary_statuses == {"ACTIVE", "AWAITING_BENEFICIARY_COOL_OFF"}


def test_some_beneficiary_ids_are_upper_case_as_in_leans_example() -> None:
    ids = [b["id"] for s in raw_sources(DataSet.generate(60, seed=1)) for b in s["beneficiaries"]]
    assert any(i == i.upper() for i in ids)
    assert any(i == i.lower() for i in ids)
    assert all(UUID_RE.fullmatch(i) for i in ids)


def test_generated_ibans_have_valid_check_digits_and_country_lengths() -> None:
    accounts = [a for s in raw_sources(DataSet.generate(60, seed=2)) for a in s["accounts"]]
    countries = {a["iban"][:2] for a in accounts}
    assert countries == {"AE", "SA"}
    for account in accounts:
        assert mod97_is_valid(account["iban"]), account["iban"]
        assert len(account["iban"]) == {"AE": 23, "SA": 24}[account["iban"][:2]]
        assert account["iban"].endswith(account["account_number"])


def test_iban_reproduces_leans_reference_example() -> None:
    assert iban("AE", "026", "1015528734001") == "AE340260001015528734001"
    assert iban("AE", "026", "0315528734002") == "AE790260000315528734002"


def test_generated_banks_are_uae_and_ksa_with_matching_currencies() -> None:
    sources = list(raw_sources(DataSet.generate(60, seed=3)))
    banks = {s["bank_identifier"] for s in sources}
    assert any(b.endswith("_UAE") for b in banks)
    assert any(b.endswith("_KSA") for b in banks)
    assert {a["currency"] for s in sources for a in s["accounts"]} == {"AED", "SAR", "USD"}
    for source in sources:
        assert source["account_iban_last4"] == source["accounts"][0]["iban"][-4:]


def test_generated_timestamps_have_microseconds() -> None:
    for source in raw_sources(DataSet.generate(20, seed=4)):
        stamps = [source["created_at"], source["beneficiary_cool_off_expiry"]]
        stamps += [b["beneficiary_cool_off_expiry"] for b in source["beneficiaries"]]
        stamps += [a["balance_last_updated"] for a in source["accounts"] if "balance" in a]
        assert all(MICROSECONDS_RE.match(stamp) for stamp in stamps), stamps


def test_same_seed_gives_the_same_data() -> None:
    first, again = DataSet.generate(25, seed=9), DataSet.generate(25, seed=9)
    assert first.customer_ids == again.customer_ids
    assert [first.list_body(c) for c in first.customer_ids] == [
        again.list_body(c) for c in again.customer_ids
    ]


def test_another_seed_gives_other_data() -> None:
    assert DataSet.generate(5, seed=1).customer_ids != DataSet.generate(5, seed=2).customer_ids


def test_some_customers_have_no_sources_and_others_several() -> None:
    data = DataSet.generate(60, seed=5)
    counts = {len(data.payment_sources(c)) for c in data.customer_ids}
    assert 0 in counts
    assert max(counts) >= 3


def test_data_set_round_trips_through_a_json_file(tmp_path: Any) -> None:
    data = DataSet.generate(15, seed=6)
    data.save(tmp_path / "data.json")
    loaded = DataSet.load(tmp_path / "data.json")
    assert loaded.customer_ids == data.customer_ids
    assert [loaded.list_body(c) for c in loaded.customer_ids] == [
        data.list_body(c) for c in data.customer_ids
    ]


async def test_server_serves_a_data_set_loaded_from_a_file(
    tmp_path: Any, http: aiohttp.ClientSession
) -> None:
    DataSet.generate(4, seed=8).save(tmp_path / "data.json")
    async with FakeLean(data=tmp_path / "data.json") as server:
        customer = server.customer_ids[0]
        answer = await as_app(http, server, "GET", list_url(server, customer))
    assert answer.body == DataSet.load(tmp_path / "data.json").list_body(customer)


# -- payment sources ---------------------------------------------------------------


async def test_every_list_answer_decodes_with_the_client_models(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    for customer in server.customer_ids:
        answer = await as_app(http, server, "GET", list_url(server, customer))
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert decode_payment_sources(answer.body) == server.data.payment_sources(customer)


async def test_get_answers_one_source_that_decodes_with_the_client_models(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    source = a_source(server)
    assert source.customer_id is not None
    answer = await as_app(http, server, "GET", source_url(server, source.customer_id, source.id))
    assert answer.status == 200
    assert decode_payment_source(answer.body) == source


async def test_customer_without_sources_lists_an_empty_array(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    customer = next(c for c in server.customer_ids if not server.data.payment_sources(c))
    answer = await as_app(http, server, "GET", list_url(server, customer))
    assert (answer.status, answer.body) == (200, b"[]")


async def test_unknown_customer_lists_an_empty_array_by_default(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    answer = await as_app(
        http, server, "GET", list_url(server, "6db94cb7-3a02-4a57-a03a-e2a92ce86406")
    )
    assert (answer.status, answer.body) == (200, b"[]")


async def test_unknown_customer_is_404_when_the_knob_is_set(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.unknown_customer_404 = True
    answer = await as_app(
        http, server, "GET", list_url(server, "6db94cb7-3a02-4a57-a03a-e2a92ce86406")
    )
    assert answer.status == 404
    assert answer.json()["status"] == "CUSTOMER_NOT_FOUND"


async def test_ids_are_matched_whatever_their_case(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    source = a_source(server)
    assert source.customer_id is not None
    url = source_url(server, source.customer_id.upper(), source.id.upper())
    assert (await as_app(http, server, "GET", url)).status == 200


async def test_another_customers_source_is_unknown(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    source = a_source(server)
    other = next(c for c in server.customer_ids if c != source.customer_id)
    answer = await as_app(http, server, "GET", source_url(server, other, source.id))
    assert answer.status == 404
    assert answer.json()["status"] == "UNKNOWN_PAYMENT_SOURCE"


@pytest.mark.parametrize(
    "path",
    [
        "/customers/v1/not-a-uuid/payment-sources",
        "/customers/v1/6db94cb7-3a02-4a57-a03a-e2a92ce86406/payment-sources/123",
        "/customers/v1/6db94cb73a024a57a03ae2a92ce86406/payment-sources",
    ],
)
async def test_malformed_uuid_in_path_is_400_invalid_parameters(
    server: FakeLean, http: aiohttp.ClientSession, path: str
) -> None:
    answer = await as_app(http, server, "GET", server.url + path)
    assert answer.status == 400
    assert answer.json()["status"] == "INVALID_PARAMETERS"


async def test_unknown_route_is_404_invalid_url(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    path = f"/customers/v1/{server.customer_ids[0]}/payment-source"  # singular: no such route
    answer = await as_app(http, server, "GET", server.url + path)
    assert answer.status == 404
    assert answer.json()["status"] == "INVALID_URL"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "list", {"GET"}),
        ("DELETE", "list", {"GET"}),
        ("PUT", "source", {"GET", "DELETE"}),
        ("PATCH", "source", {"GET", "DELETE"}),
        ("GET", "token", {"POST"}),
    ],
)
async def test_wrong_method_is_405_invalid_http_method_with_the_allow_header(
    server: FakeLean, http: aiohttp.ClientSession, method: str, path: str, allowed: set[str]
) -> None:
    customer = server.customer_ids[0]
    url = {
        "list": list_url(server, customer),
        "source": f"{list_url(server, customer)}/{uuid.uuid4()}",
        "token": server.token_url,
    }[path]
    answer = await as_app(http, server, method, url)
    assert answer.status == 405
    assert answer.json()["status"] == "INVALID_HTTP_METHOD"
    assert {m.strip() for m in answer.headers["Allow"].split(",")} == allowed


async def test_error_bodies_have_leans_shape(server: FakeLean, http: aiohttp.ClientSession) -> None:
    body = (await call(http, "GET", list_url(server, server.customer_ids[0]))).json()
    assert set(body) == {"timestamp", "status", "message", "metadata"}
    assert body["metadata"] is None
    assert MICROSECONDS_RE.match(body["timestamp"])


async def test_every_answer_carries_fresh_correlation_and_trace_ids(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    answers = [
        await as_app(http, server, "GET", list_url(server, server.customer_ids[0])),
        await as_app(http, server, "GET", server.url + "/nowhere"),
        await call(http, "POST", server.token_url, data={}),
    ]
    correlation_ids = {a.headers["lean-correlation-id"] for a in answers}
    assert len(correlation_ids) == 3
    assert all(UUID_RE.fullmatch(c) for c in correlation_ids)
    assert len({a.headers["lean-trace-id"] for a in answers}) == 3


async def test_the_real_client_lists_and_gets_through_the_server(server: FakeLean) -> None:
    source = a_source(server)
    assert source.customer_id is not None
    async with server.client() as client:
        assert await client.payment_sources.list(source.customer_id) == (
            server.data.payment_sources(source.customer_id)
        )
        assert await client.payment_sources.get(source.customer_id, source.id) == source


# -- delete ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "MISSING_PARAMETERS"),
        (b"{}", "MISSING_PARAMETERS"),
        (b'{"reason": "BORED"}', "INVALID_PARAMETERS"),
        (b"not json", "INVALID_PARAMETERS"),
        (b'["USER_REQUESTED"]', "INVALID_PARAMETERS"),
    ],
)
async def test_delete_without_a_valid_reason_is_400_and_keeps_the_source(
    server: FakeLean, http: aiohttp.ClientSession, body: bytes | None, code: str
) -> None:
    source = a_source(server)
    assert source.customer_id is not None
    url = source_url(server, source.customer_id, source.id)
    answer = await call(http, "DELETE", url, headers={APP_TOKEN: server.app_token}, data=body)
    assert answer.status == 400
    assert answer.json()["status"] == code
    assert server.data.find(source.customer_id, source.id) == source


@pytest.mark.parametrize("reason", ["USER_REQUESTED", "TPP_REQUESTED"])
async def test_delete_answers_200_empty_object_and_the_source_is_gone(
    server: FakeLean, http: aiohttp.ClientSession, reason: str
) -> None:
    source = a_source(server)
    assert source.customer_id is not None
    url = source_url(server, source.customer_id, source.id)
    headers = {APP_TOKEN: server.app_token}
    answer = await call(http, "DELETE", url, headers=headers, json={"reason": reason})
    assert (answer.status, answer.json()) == (200, {})
    assert (await as_app(http, server, "GET", url)).status == 404
    again = await call(http, "DELETE", url, headers=headers, json={"reason": reason})
    assert (again.status, again.json()["status"]) == (404, "UNKNOWN_PAYMENT_SOURCE")
    listed = (await as_app(http, server, "GET", list_url(server, source.customer_id))).json()
    assert source.id not in {s["id"] for s in listed}


async def test_delete_answers_204_when_the_knob_is_set(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.delete_status = 204
    source = a_source(server)
    assert source.customer_id is not None
    url = source_url(server, source.customer_id, source.id)
    answer = await call(
        http,
        "DELETE",
        url,
        headers={APP_TOKEN: server.app_token},
        json={"reason": "USER_REQUESTED"},
    )
    assert (answer.status, answer.body) == (204, b"")


async def test_the_real_client_deletes_through_the_server(server: FakeLean) -> None:
    source = a_source(server)
    assert source.customer_id is not None
    async with server.client() as client:
        await client.payment_sources.delete(source.customer_id, source.id)
        with pytest.raises(NotFoundError):
            await client.payment_sources.get(source.customer_id, source.id)


# -- authentication ----------------------------------------------------------------


async def test_both_credential_headers_are_400_with_leans_message(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    headers = {APP_TOKEN: server.app_token, "Authorization": f"Bearer {await bearer(http, server)}"}
    answer = await call(http, "GET", list_url(server, server.customer_ids[0]), headers=headers)
    assert answer.status == 400
    assert answer.json()["status"] == "INVALID_PARAMETERS"
    assert answer.json()["message"] == (
        "Do not supply a 'lean-app-token' header when providing an 'Authorization' header"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {APP_TOKEN: "wrong"},
        {"Authorization": "Bearer not-a-token-it-issued"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
async def test_missing_or_invalid_credentials_are_401(
    server: FakeLean, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    answer = await call(http, "GET", list_url(server, server.customer_ids[0]), headers=headers)
    assert answer.status == 401


async def test_token_endpoint_issues_a_jwt_shaped_bearer_token(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    answer = await fetch_token(http, server)
    body = answer.json()
    assert answer.status == 200
    assert (body["token_type"], body["scope"], body["expires_in"]) == ("Bearer", "api", 3599)
    assert jwt_part(body["access_token"], 0)["typ"] == "JWT"
    claims = jwt_part(body["access_token"], 1)
    assert (claims["sub"], claims["scope"]) == (server.client_id, "api")
    assert claims["exp"] - time.time() == pytest.approx(3599, abs=5)


async def test_an_issued_bearer_token_is_accepted(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bearer {await bearer(http, server)}"}
    answer = await call(http, "GET", list_url(server, server.customer_ids[0]), headers=headers)
    assert answer.status == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"scope": "everything"}, 400, "invalid_scope"),
        ({"scope": "customer.not-a-uuid"}, 400, "invalid_scope"),
        ({"scope": ""}, 400, "invalid_request"),
    ],
)
async def test_token_endpoint_refuses_bad_requests_oauth_style(
    server: FakeLean,
    http: aiohttp.ClientSession,
    form: dict[str, str],
    status: int,
    error: str,
) -> None:
    answer = await fetch_token(http, server, **form)
    assert (answer.status, answer.json()["error"]) == (status, error)


async def test_expired_token_is_401(http: aiohttp.ClientSession) -> None:
    async with FakeLean(customers=1, token_ttl=0.3) as server:
        headers = {"Authorization": f"Bearer {await bearer(http, server)}"}
        url = list_url(server, server.customer_ids[0])
        assert (await call(http, "GET", url, headers=headers)).status == 200
        await asyncio.sleep(0.4)
        assert (await call(http, "GET", url, headers=headers)).status == 401


async def test_customer_scoped_token_reaches_only_its_customer(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    mine, other = server.customer_ids[:2]
    headers = {"Authorization": f"Bearer {await bearer(http, server, f'customer.{mine}')}"}
    assert (await call(http, "GET", list_url(server, mine), headers=headers)).status == 200
    refused = await call(http, "GET", list_url(server, other), headers=headers)
    assert (refused.status, refused.json()["status"]) == (403, "INCORRECT_ACCESS_LEVEL")


async def test_revoked_tokens_are_401_and_the_client_refreshes(server: FakeLean) -> None:
    customer = server.customer_ids[0]
    async with server.client(oauth=True) as client:
        await client.payment_sources.list(customer)
        server.revoke_tokens()
        await client.payment_sources.list(customer)
    assert server.stats.token_requests == 2
    assert server.stats.by_status[401] == 1


async def test_client_with_a_revoked_static_token_gets_authentication_error(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    token = await bearer(http, server)
    server.revoke_tokens()
    async with server.client(access_token=token) as client:
        with pytest.raises(AuthenticationError):
            await client.payment_sources.list(server.customer_ids[0])


# -- faults ------------------------------------------------------------------------


async def test_fixed_latency_delays_every_answer(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(latency=0.2)
    started = time.perf_counter()
    answer = await as_app(http, server, "GET", list_url(server, server.customer_ids[0]))
    assert answer.status == 200
    assert time.perf_counter() - started >= 0.2


def test_latency_range_is_drawn_uniformly_within_bounds() -> None:
    rng = random.Random(1)
    latencies = [plan(Faults(latency=(0.1, 0.3)), rng).latency for _ in range(500)]
    assert 0.1 <= min(latencies) < 0.12
    assert 0.28 < max(latencies) <= 0.3


def test_latency_can_follow_any_distribution() -> None:
    faults = Faults(latency=lambda rng: rng.expovariate(10))
    latencies = [plan(faults, random.Random(i)).latency for i in range(200)]
    assert len(set(latencies)) == 200


def test_fault_shares_are_drawn_in_proportion() -> None:
    faults = Faults(error_rate=0.2, drop_rate=0.1, malformed_rate=0.3)
    rng = random.Random(3)
    drawn = [plan(faults, rng).fault for _ in range(5000)]
    assert drawn.count(Fault.ERROR) / 5000 == pytest.approx(0.2, abs=0.03)
    assert drawn.count(Fault.DROP) / 5000 == pytest.approx(0.1, abs=0.03)
    assert drawn.count(Fault.MALFORMED) / 5000 == pytest.approx(0.3, abs=0.03)
    assert drawn.count(Fault.NONE) / 5000 == pytest.approx(0.4, abs=0.03)


def test_fault_shares_adding_up_to_more_than_one_are_refused() -> None:
    with pytest.raises(ValueError, match="add up"):
        Faults(error_rate=0.6, drop_rate=0.6)


async def test_server_errors_are_5xx_with_lean_bodies_or_proxy_html(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(error_rate=1.0, seed=1)
    answers = [
        await as_app(http, server, "GET", list_url(server, server.customer_ids[0]))
        for _ in range(30)
    ]
    assert {a.status for a in answers} == {500, 502, 503}
    html = [a for a in answers if a.headers["Content-Type"].startswith("text/html")]
    lean = [a for a in answers if a.headers["Content-Type"] == "application/json"]
    assert html
    assert lean
    assert all(b"<html>" in a.body for a in html)
    assert all(a.json()["status"] for a in lean)
    assert all("lean-correlation-id" in a.headers for a in answers)


async def test_rate_limit_answers_429_with_retry_after_beyond_the_rate(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(rate_limit=5)
    url = list_url(server, server.customer_ids[0])
    answers = [await as_app(http, server, "GET", url) for _ in range(8)]
    assert [a.status for a in answers] == [200] * 5 + [429] * 3
    assert answers[-1].json()["status"] == "RATE_LIMIT_EXCEEDED"
    assert answers[-1].headers["Retry-After"] == "1"
    assert server.stats.rate_limited == 3


async def test_rate_limit_can_omit_retry_after(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(rate_limit=1, retry_after=False)
    url = list_url(server, server.customer_ids[0])
    answers = [await as_app(http, server, "GET", url) for _ in range(2)]
    assert answers[1].status == 429
    assert "Retry-After" not in answers[1].headers


async def test_dropped_connection_gets_no_answer(server: FakeLean) -> None:
    server.faults = Faults(drop_rate=1.0)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as fresh:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await as_app(fresh, server, "GET", list_url(server, server.customer_ids[0]))
    # aiohttp retries an idempotent request once on a new connection: both are dropped.
    assert server.stats.dropped == server.stats.requests >= 1
    assert not server.stats.by_status


async def test_truncated_body_is_shorter_than_its_content_length(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(truncate_rate=1.0)
    with pytest.raises(aiohttp.ClientPayloadError):
        await as_app(http, server, "GET", list_url(server, server.customer_ids[0]))


async def test_malformed_bodies_are_200_and_not_json(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(malformed_rate=1.0, seed=2)
    customer = next(c for c in server.customer_ids if server.data.payment_sources(c))
    answers = [await as_app(http, server, "GET", list_url(server, customer)) for _ in range(10)]
    assert {a.status for a in answers} == {200}
    assert {a.headers["Content-Type"] for a in answers} == {"application/json", "text/html"}
    for answer in answers:
        with pytest.raises(msgspec.DecodeError):
            msgspec.json.decode(answer.body)


async def test_slow_body_trickles_the_whole_answer(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    customer = next(c for c in server.customer_ids if server.data.payment_sources(c))
    body = server.data.list_body(customer) or b""
    server.faults = Faults(
        slow_body_rate=1.0, slow_body_chunk=len(body) // 4 + 1, slow_body_delay=0.1
    )
    started = time.perf_counter()
    answer = await as_app(http, server, "GET", list_url(server, customer))
    assert answer.body == body
    assert time.perf_counter() - started >= 0.4


async def test_faults_can_be_switched_off_at_run_time(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    url = list_url(server, server.customer_ids[0])
    server.faults = Faults(error_rate=1.0)
    assert (await as_app(http, server, "GET", url)).status >= 500
    server.faults = Faults()
    assert (await as_app(http, server, "GET", url)).status == 200


async def test_the_same_fault_seed_gives_the_same_failures(http: aiohttp.ClientSession) -> None:
    runs = []
    for _ in range(2):
        async with FakeLean(customers=1, faults=Faults(error_rate=0.5, seed=11)) as server:
            url = list_url(server, server.customer_ids[0])
            runs.append([(await as_app(http, server, "GET", url)).status for _ in range(20)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 1


async def test_the_real_client_gets_through_flaky_answers_with_retries(server: FakeLean) -> None:
    server.faults = Faults(error_rate=0.2, drop_rate=0.1, malformed_rate=0.0, seed=5)
    async with server.client(retry=FAST_RETRY) as client:
        for customer in server.customer_ids:
            assert await client.payment_sources.list(customer) == (
                server.data.payment_sources(customer)
            )
    assert server.stats.by_status[200] == len(server.customer_ids)


# -- stats -------------------------------------------------------------------------


async def test_peak_in_flight_counts_concurrent_requests(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(latency=0.3)
    url = list_url(server, server.customer_ids[0])
    await asyncio.gather(*(as_app(http, server, "GET", url) for _ in range(7)))
    assert server.stats.peak_in_flight == 7
    assert server.stats.in_flight == 0


async def test_stats_count_requests_by_path_and_status(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    first, second = server.customer_ids[:2]
    for customer in (first, first, second):
        await as_app(http, server, "GET", list_url(server, customer))
    await as_app(http, server, "GET", server.url + "/nowhere")
    stats = server.stats
    assert stats.requests == 4
    assert (stats.list_requests(first), stats.list_requests(second)) == (2, 1)
    assert dict(stats.by_status) == {200: 3, 404: 1}


async def test_stats_reset_zeroes_the_counters(
    server: FakeLean, http: aiohttp.ClientSession
) -> None:
    await fetch_token(http, server)
    server.stats.reset()
    assert (server.stats.requests, server.stats.token_requests) == (0, 0)
    assert not server.stats.by_path
    assert server.stats.peak_in_flight == 0


# -- webhooks ----------------------------------------------------------------------


class Receiver:
    """A local webhook endpoint that answers with the given statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield hook, f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    await runner.cleanup()


SECRET = "whsec-for-tests"


@pytest.fixture
async def hooked(receiver: tuple[Receiver, str]) -> AsyncIterator[FakeLean]:
    async with FakeLean(
        customers=3,
        webhook_url=receiver[1],
        webhook_secret=SECRET,
        webhook_retry_delays=(0.01,) * 3,
    ) as server:
        yield server


async def test_adding_a_source_sends_created_webhooks_signed_with_the_secret(
    hooked: FakeLean, receiver: tuple[Receiver, str]
) -> None:
    customer = hooked.customer_ids[0]
    source = hooked.add_payment_source(customer, bank_identifier="RAJHI_KSA")
    await hooked.webhooks_idle()
    hook = receiver[0]
    assert [e["type"] for e in hook.events()] == [
        "payment_source.created",
        "payment_source.beneficiary.created",
    ]
    for headers, body in hook.received:
        digest = hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest()
        assert headers["lean-signature"] == f"sha512={digest}"
    created, beneficiary = hook.events()
    assert created["payload"] == {
        "id": source.id,
        "customer_id": customer,
        "status": "AWAITING_BENEFICIARY_COOL_OFF",
        "bank_identifier": "RAJHI_KSA",
        "bank_name": "Al Rajhi Bank",
        **({"end_user_id": source.end_user_ids[0]} if source.end_user_ids else {}),
    }
    assert beneficiary["payload"]["payment_source_id"] == source.id
    assert beneficiary["payload"]["payment_source_bank_identifier"] == "RAJHI_KSA"


async def test_webhook_envelopes_have_nanosecond_timestamps_and_event_ids(
    hooked: FakeLean, receiver: tuple[Receiver, str]
) -> None:
    hooked.add_payment_source(hooked.customer_ids[0])
    await hooked.webhooks_idle()
    for event in receiver[0].events():
        assert set(event) == {"type", "payload", "message", "timestamp", "event_id"}
        assert NANOSECONDS_RE.match(event["timestamp"])
        assert UUID_RE.fullmatch(event["event_id"])


async def test_an_added_source_is_served(hooked: FakeLean, http: aiohttp.ClientSession) -> None:
    customer = "6db94cb7-3a02-4a57-a03a-e2a92ce86406"
    source = hooked.add_payment_source(customer)
    listed = await as_app(http, hooked, "GET", list_url(hooked, customer))
    assert decode_payment_sources(listed.body) == [source]


async def test_activating_a_beneficiary_sends_beneficiary_updated_and_serves_active(
    hooked: FakeLean, receiver: tuple[Receiver, str], http: aiohttp.ClientSession
) -> None:
    customer = hooked.customer_ids[0]
    source = hooked.add_payment_source(customer)
    hooked.activate_beneficiary(customer, source.id)
    await hooked.webhooks_idle()
    updated = receiver[0].events()[-1]
    assert updated["type"] == "payment_source.beneficiary.updated"
    assert updated["payload"]["status"] == "ACTIVE"
    assert updated["payload"]["id"] == source.beneficiaries[0].id
    served = decode_payment_source(
        (await as_app(http, hooked, "GET", source_url(hooked, customer, source.id))).body
    )
    assert (served.status, served.beneficiaries[0].status) == ("ACTIVE", "ACTIVE")


async def test_deleting_a_source_sends_payment_source_updated_revoked(
    hooked: FakeLean, receiver: tuple[Receiver, str]
) -> None:
    customer = hooked.customer_ids[0]
    source = hooked.add_payment_source(customer, cool_off=False)
    async with hooked.client() as client:
        await client.payment_sources.delete(customer, source.id)
    await hooked.webhooks_idle()
    updated = receiver[0].events()[-1]
    assert updated["type"] == "payment_source.updated"
    assert (updated["payload"]["id"], updated["payload"]["status"]) == (source.id, "REVOKED")


async def test_failed_webhook_deliveries_are_retried_until_answered_200(
    hooked: FakeLean, receiver: tuple[Receiver, str]
) -> None:
    receiver[0].statuses = [500, 503]
    source = hooked.add_payment_source(hooked.customer_ids[0])
    hooked.activate_beneficiary(hooked.customer_ids[0], source.id)
    await hooked.webhooks_idle()
    assert hooked.webhooks is not None
    assert all(d.delivered for d in hooked.webhooks.deliveries)
    assert max(d.attempts for d in hooked.webhooks.deliveries) == 3
    assert len(receiver[0].received) == 3 + 2


async def test_webhook_delivery_is_given_up_after_the_last_retry(
    hooked: FakeLean, receiver: tuple[Receiver, str]
) -> None:
    receiver[0].statuses = [500] * 100
    hooked.add_payment_source(hooked.customer_ids[0])
    await hooked.webhooks_idle()
    assert hooked.webhooks is not None
    outcomes = {(d.delivered, d.attempts, d.status) for d in hooked.webhooks.deliveries}
    assert outcomes == {(False, 4, 500)}
    assert len(receiver[0].received) == 2 * 4


# -- as a process ------------------------------------------------------------------


def test_server_options_turn_flags_into_faults() -> None:
    import argparse

    from lean_async.testing._mock_flags import add_server_arguments

    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    args = parser.parse_args(
        ["--latency", "0.01-0.2", "--error-rate", "0.1", "--rate-limit", "50", "--no-retry-after"]
    )
    faults = server_options(args)["faults"]
    assert faults == Faults(latency=(0.01, 0.2), error_rate=0.1, rate_limit=50, retry_after=False)


async def test_python_m_lean_async_testing_starts_and_answers(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lean_async.testing",
        "--customers",
        "5",
        "--seed",
        "3",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=15)
        info = json.loads(line)
        customer = DataSet.generate(5, seed=3).customer_ids[0]
        url = f"{info['url']}/customers/v1/{customer}/payment-sources"
        answer = await call(http, "GET", url, headers={APP_TOKEN: info["app_token"]})
        assert answer.status == 200
        assert answer.body == DataSet.generate(5, seed=3).list_body(customer)
    finally:
        process.kill()
        await process.wait()


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("host", "url_host"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("0.0.0.0", "127.0.0.1"),  # every IPv4 address: this machine's is one of them
        ("::1", "[::1]"),
        ("::", "[::1]"),  # every address
    ],
)
async def test_the_url_reaches_the_server_from_this_machine_whatever_address_it_listens_on(
    host: str, url_host: str
) -> None:
    """What ``lean-async mock --host`` prints must work as printed: ``http://0.0.0.0:...`` is
    refused by the client (plain http to a host that is not loopback) and ``http://::1:...``
    is no URL at all."""
    if ":" in host and not _ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    async with FakeLean(customers=2, seed=4, host=host) as server:
        assert server.url == f"http://{url_host}:{server.port}"
        assert server.token_url == f"{server.url}/oauth2/token"
        async with server.client(oauth=True) as lean:
            customer = await lean.customers.get(server.customer_ids[0])
    assert customer.customer_id == server.customer_ids[0]
