"""The pytest plugin's fixtures, used here as a user would enable them."""

from __future__ import annotations

import aiohttp
import pytest

from lean_async import LeanClient
from lean_async.testing import FakeLean

pytest_plugins = ["pytester", "lean_async.testing.pytest_plugin"]


def user_project(pytester: pytest.Pytester) -> None:
    """A project configured as this one is, without our conftest or plugins."""
    pytester.makeini(
        """
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )


async def test_fake_lean_fixture_is_a_started_server(fake_lean: FakeLean) -> None:
    url = f"{fake_lean.url}/customers/v1/{fake_lean.customer_ids[0]}/payment-sources"
    headers = {"lean-app-token": fake_lean.app_token}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as answer:
        assert answer.status == 200


async def test_lean_client_fixture_is_wired_to_fake_lean(
    fake_lean: FakeLean, lean_client: LeanClient
) -> None:
    customer = fake_lean.customer_ids[0]
    assert await lean_client.payment_sources.list(customer) == (
        fake_lean.data.payment_sources(customer)
    )


def test_plugin_is_enabled_by_pytest_plugins_in_a_users_project(
    pytester: pytest.Pytester,
) -> None:
    user_project(pytester)
    pytester.makepyfile(
        """
        pytest_plugins = ["lean_async.testing.pytest_plugin"]

        async def test_list(fake_lean, lean_client):
            customer = fake_lean.customer_ids[0]
            sources = await lean_client.payment_sources.list(customer)
            assert sources == fake_lean.data.payment_sources(customer)
            assert fake_lean.stats.list_requests(customer) == 1

        async def test_client_is_open_during_the_test(lean_client):
            assert not lean_client.closed
        """
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=2)


def test_fake_lean_options_fixture_configures_the_server(pytester: pytest.Pytester) -> None:
    user_project(pytester)
    pytester.makepyfile(
        """
        import pytest
        from lean_async.testing import DataSet, Faults

        pytest_plugins = ["lean_async.testing.pytest_plugin"]

        @pytest.fixture
        def fake_lean_options():
            return {"customers": 3, "seed": 4, "faults": Faults(latency=0.01)}

        async def test_options(fake_lean):
            assert fake_lean.customer_ids == DataSet.generate(3, seed=4).customer_ids
            assert fake_lean.faults == Faults(latency=0.01)
        """
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)
