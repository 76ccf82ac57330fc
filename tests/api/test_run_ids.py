"""Run ids over HTTP: a bad id given to trigger is 422 ``invalid_run_id``; a good one with
``.``, ``~`` and ``:`` works as a URL segment in the API and the dashboard."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.conftest import Api
from tests.dashboard.conftest import sign_in
from tests.helpers import until_status


@pytest.mark.parametrize("bad", ["a/b", "two words", "x" * 300, "café", "..", ""])
async def test_trigger_refuses_a_bad_id_with_422(api: Api, bad: str) -> None:
    response = await api.client.post(
        "/v1/loops/waits/runs", json={"body": {}, "id": bad}, headers=api.a
    )
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "invalid_run_id"
    assert error["field"] == "id"
    assert repr(bad[:40]) in error["message"]
    assert "A-Z a-z 0-9 . _ ~ : -" in error["message"]
    assert await api.app.list_runs() == []


async def test_an_id_with_dots_tildes_and_colons_reads_cancels_and_opens(api: Api) -> None:
    run_id = "order.7~v2:retry-1"
    response = await api.client.post(
        "/v1/loops/waits/runs", json={"body": {}, "id": run_id}, headers=api.a
    )
    assert response.status_code == 202, response.text
    assert response.json()["id"] == run_id
    await until_status(api.app, run_id, "waiting")

    for path in (f"/v1/runs/{run_id}", f"/v1/runs/{quote(run_id, safe='')}"):
        read = await api.client.get(path, headers=api.a)
        assert read.status_code == 200, (path, read.text)
        assert read.json()["id"] == run_id

    assert (await sign_in(api.client, api.key_a)).status_code == 303
    page = await api.client.get(f"/dashboard/runs/{run_id}")
    assert page.status_code == 200, page.text
    assert run_id in page.text

    cancelled = await api.client.post(f"/v1/runs/{run_id}/cancel", headers=api.a)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
