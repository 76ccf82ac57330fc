"""A run retention purged reads as purged through /v1: its skeleton, no patient data."""

from __future__ import annotations

from typing import cast

from pulseloop.store.retention import DEFAULT_DAYS, purge_org
from pulseloop.store.sealed.keyring import PayloadSql
from tests.api.conftest import Api
from tests.helpers import until_status


async def test_a_purged_run_says_so(api: Api) -> None:
    response = await api.client.post(
        "/v1/loops/fails/runs", json={"body": {"patientId": "p-secret"}}, headers=api.a
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    await until_status(api.app, run_id, "failed")
    before = (await api.client.get(f"/v1/runs/{run_id}", headers=api.a)).json()
    assert before["purged_at"] is None and before["body"] == {"patientId": "p-secret"}

    await api.clock.advance(DEFAULT_DAYS * 86400.0 + 1)
    report = await purge_org(cast(PayloadSql, api.app.store), "clinic-a", api.clock.now())
    assert report.runs == 1

    response = await api.client.get(f"/v1/runs/{run_id}", headers=api.a)
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["purged_at"] is not None
    assert (after["body"], after["output"], after["error"], after["summary"]) == (None,) * 4
    assert after["status"] == "failed" and after["finished_at"] == before["finished_at"]
    assert [s["name"] for s in after["steps"]] == ["first", "second"]
    assert all(s["output"] is None and s["error"] is None for s in after["steps"])
    assert "p-secret" not in response.text
    listed = (await api.client.get("/v1/runs", headers=api.a)).json()["runs"]
    assert [r["purged_at"] is not None for r in listed if r["id"] == run_id] == [True]
    assert (await api.client.get(f"/v1/runs/{run_id}", headers=api.b)).status_code == 404

    # replaying a purged run would hand its steps nothing: retry and restart refuse
    retried = await api.client.post(f"/v1/runs/{run_id}/retry", headers=api.a)
    restarted = await api.client.post(
        f"/v1/runs/{run_id}/restart", json={"from_step": "first"}, headers=api.a
    )
    for refused in (retried, restarted):
        assert refused.status_code == 409, refused.text
        assert "purged" in refused.text
    assert (await api.app.get_run(run_id)).status == "failed"
