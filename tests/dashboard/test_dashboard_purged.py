"""The dashboard's page of a run retention purged: says so, shows no input, offers no action."""

from __future__ import annotations

from typing import cast

from pulseloop.store.retention import DEFAULT_DAYS, purge_org
from pulseloop.store.sealed.keyring import PayloadSql
from tests.api.conftest import Api
from tests.dashboard.conftest import ClientFactory, sign_in
from tests.helpers import until_status


async def test_a_purged_run_page_says_so(api: Api, new_client: ClientFactory) -> None:
    response = await api.client.post(
        "/v1/loops/fails/runs", json={"body": {"patientId": "p-secret"}}, headers=api.a
    )
    run_id = response.json()["id"]
    await until_status(api.app, run_id, "failed")
    async with new_client() as client:
        assert (await sign_in(client, api.key_a)).status_code in (302, 303)
        before = await client.get(f"/dashboard/runs/{run_id}")
        assert "p-secret" in before.text and 'id="run-purged"' not in before.text
        assert "/retry" in before.text

        await api.clock.advance(DEFAULT_DAYS * 86400.0 + 1)
        await purge_org(cast(PayloadSql, api.app.store), "clinic-a", api.clock.now())

        page = await client.get(f"/dashboard/runs/{run_id}")
        assert page.status_code == 200
        assert 'id="run-purged"' in page.text and "retention removed" in page.text
        assert "p-secret" not in page.text and "/retry" not in page.text
        assert "first" in page.text and "second" in page.text  # the timeline stays
