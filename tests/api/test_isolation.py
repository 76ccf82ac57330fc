"""Nothing of one organization is visible to another: 404s (never 403s), empty lists, and
401 for a revoked or missing key."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.helpers import until_status


def endpoints(run_id: str, scan_id: str) -> list[tuple[str, str, dict[str, object] | None]]:
    """Every ``/v1`` endpoint that names an object, with a valid body."""
    return [
        ("GET", f"/v1/runs/{run_id}", None),
        ("POST", f"/v1/runs/{run_id}/cancel", None),
        ("POST", f"/v1/runs/{run_id}/pause", None),
        ("POST", f"/v1/runs/{run_id}/resume", None),
        ("POST", f"/v1/runs/{run_id}/retry", None),
        ("POST", f"/v1/runs/{run_id}/restart", {"from_step": "Generate a health scan"}),
        ("GET", f"/v1/scans/{scan_id}", None),
    ]


async def test_another_orgs_objects_are_404_and_unchanged(api: Api) -> None:
    run_id, scan_id = await api.parked_scan()
    for method, path, body in endpoints(run_id, scan_id):
        response = await api.client.request(method, path, json=body, headers=api.b)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["code"] in ("run_not_found", "scan_not_found")
        assert "p-secret" not in response.text
        # exactly what an id that exists nowhere gets: nothing confirms the object exists
        ghost_path = path.replace(run_id, "ghost").replace(scan_id, "ghost")
        ghost = await api.client.request(method, ghost_path, json=body, headers=api.b)
        assert ghost.status_code == 404
        seen = response.json()["message"].replace(run_id, "ghost").replace(scan_id, "ghost")
        assert seen == ghost.json()["message"]
    video = await api.client.post(
        f"/v1/scans/{scan_id}/video", content=b"not a video", headers=api.b
    )
    assert (video.status_code, video.json()["code"]) == (404, "scan_not_found")
    run = await api.app.get_run(run_id)
    assert run.status == "waiting"  # nothing B did touched it
    scan = await api.client.get(f"/v1/scans/{scan_id}", headers=api.a)
    assert scan.json()["status"] == "pending"


async def test_another_orgs_runs_are_not_listed(api: Api) -> None:
    run_id, _ = await api.parked_scan()
    mine = await api.client.get("/v1/runs", headers=api.a)
    assert [r["id"] for r in mine.json()["runs"]] == [run_id]
    for query in ("", "?loop=api-scan", "?status=waiting", "?created_after=2000-01-01T00:00:00Z"):
        theirs = await api.client.get(f"/v1/runs{query}", headers=api.b)
        assert theirs.json() == {"runs": [], "next_cursor": None}


async def test_each_org_sees_only_its_own_runs(api: Api) -> None:
    a = await api.client.post("/v1/loops/waits/runs", json={"id": "shared-a"}, headers=api.a)
    b = await api.client.post("/v1/loops/waits/runs", json={"id": "only-b"}, headers=api.b)
    assert (a.status_code, b.status_code) == (202, 202)
    await until_status(api.app, "shared-a", "waiting")
    listed_b = (await api.client.get("/v1/runs", headers=api.b)).json()["runs"]
    assert [r["id"] for r in listed_b] == ["only-b"]
    # B's run is stored under B: A's App cannot see it either
    assert (await api.client.get("/v1/runs/only-b", headers=api.a)).status_code == 404
    # run ids are per organization: A may use B's id, gets a run of its own, learns nothing
    mine = await api.client.post(
        "/v1/loops/waits/runs", json={"id": "only-b", "body": {"who": "a"}}, headers=api.a
    )
    assert mine.status_code == 202 and "clinic-b" not in mine.text
    assert [r["id"] for r in (await api.client.get("/v1/runs", headers=api.b)).json()["runs"]] == [
        "only-b"
    ]
    assert (await api.app.get_run("only-b")).body == {"who": "a"}  # A's own run


@pytest.mark.parametrize("which", ["revoked", "unknown", "missing", "malformed"])
async def test_bad_keys_get_401_on_every_endpoint(api: Api, which: str) -> None:
    run_id, scan_id = await api.parked_scan()
    headers = {
        "revoked": api.auth(api.revoked),
        "unknown": api.auth("pl_000000000000_nope"),
        "missing": {},
        "malformed": {"Authorization": f"Basic {api.key_a}"},
    }[which]
    calls = endpoints(run_id, scan_id)
    calls += [("GET", "/v1/runs", None), ("POST", "/v1/loops/api-scan/runs", {"body": {}})]
    for method, path, body in calls:
        response = await api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    video = await api.client.post(f"/v1/scans/{scan_id}/video", content=b"x", headers=headers)
    assert video.status_code == 401
    assert (await api.app.get_run(run_id)).status == "waiting"


async def test_unknown_loop_is_404_naming_only_this_servers_loops(api: Api) -> None:
    response = await api.client.post("/v1/loops/nope/runs", json={}, headers=api.b)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "loop_not_found"
    assert "api-scan" in body["message"] and "clinic-a" not in body["message"]
