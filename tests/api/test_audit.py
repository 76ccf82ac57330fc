"""The audit trail through HTTP (both backends): every /v1 and dashboard read of patient
data and every operator action writes exactly one row naming who, what, which object and
from where; one organization never sees another's rows; the chain stays verifiable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from pulseloop.store.audit import AuditEntry, AuditRecord, verify
from tests.api.conftest import Api
from tests.dashboard.conftest import csrf_of, sign_in
from tests.helpers import until_status


def key_id(key: str) -> str:
    """The id part of ``pl_<id>_<secret>``."""
    return key.split("_")[1]


async def all_rows(api: Api, org: str = "clinic-a") -> list[AuditRecord]:
    """Every row of ``org``'s chain, oldest first."""
    return await api.app.store.audit.chain(org, 0, 10_000)


async def _waiting(api: Api) -> str:
    response = await api.client.post("/v1/loops/waits/runs", json={}, headers=api.a)
    run_id: str = response.json()["id"]
    await until_status(api.app, run_id, "waiting")
    return run_id


async def prepare(api: Api, what: str) -> str:
    """Set the scene ``what`` names; return the id the audit row must name."""
    if what == "org":
        return "clinic-a"
    if what == "scan":
        _, scan_id = await api.parked_scan()
        return scan_id
    if what == "failed":
        response = await api.client.post("/v1/loops/fails/runs", json={}, headers=api.a)
        run_id: str = response.json()["id"]
        await until_status(api.app, run_id, "failed")
        return run_id
    run_id = await _waiting(api)
    if what == "paused":
        await api.app.pause(run_id)  # the App itself writes no audit row
    return run_id


V1_CASES = {  # action, object kind, method, path, body, what to prepare, status
    "trigger": ("trigger", "run", "POST", "/v1/loops/waits/runs", {}, "org", 202),
    "list": ("list_runs", "org", "GET", "/v1/runs", None, "org", 200),
    "read": ("read_run", "run", "GET", "/v1/runs/{id}", None, "waiting", 200),
    "cancel": ("cancel", "run", "POST", "/v1/runs/{id}/cancel", None, "waiting", 200),
    "pause": ("pause", "run", "POST", "/v1/runs/{id}/pause", None, "waiting", 200),
    "resume": ("resume", "run", "POST", "/v1/runs/{id}/resume", None, "paused", 200),
    "retry": ("retry", "run", "POST", "/v1/runs/{id}/retry", None, "failed", 200),
    "restart": ("restart", "run", "POST", "/v1/runs/{id}/restart", {"from_step": "ask"},
                "waiting", 200),
    "scan": ("read_scan", "scan", "GET", "/v1/scans/{id}", None, "scan", 200),
}  # fmt: skip


@pytest.mark.parametrize("name", list(V1_CASES))
async def test_each_v1_read_and_action_writes_one_row(api: Api, name: str) -> None:
    action, kind, method, path, body, what, status = V1_CASES[name]
    object_id = await prepare(api, what)
    before = await all_rows(api)
    url = path.format(id=object_id)
    response = await api.client.request(method, url, json=body, headers=api.a)
    assert response.status_code == status, response.text
    new = (await all_rows(api))[len(before) :]
    assert len(new) == 1, new
    row = new[0]
    expected_id = response.json()["id"] if action == "trigger" else object_id
    assert (row.action, row.object_kind, row.object_id) == (action, kind, expected_id)
    assert (row.actor, row.address, row.org) == (key_id(api.key_a), "127.0.0.1", "clinic-a")
    assert row.at == api.clock.now()
    assert "p-secret" not in repr(row)  # ids only: never a payload
    assert await verify(api.app.store.audit, "clinic-a") == (len(before) + 1, None)


DASHBOARD_CASES = {  # action, object kind, method, path, what to prepare, status
    "runs": ("list_runs", "org", "GET", "/dashboard/runs", "org", 200),
    "scans": ("list_runs", "org", "GET", "/dashboard/scans", "org", 200),
    "run": ("read_run", "run", "GET", "/dashboard/runs/{id}", "waiting", 200),
    "scan": ("read_scan", "scan", "GET", "/dashboard/scans/{id}", "scan", 200),
    "cancel": ("cancel", "run", "POST", "/dashboard/runs/{id}/cancel", "waiting", 303),
    "pause": ("pause", "run", "POST", "/dashboard/runs/{id}/pause", "waiting", 303),
    "resume": ("resume", "run", "POST", "/dashboard/runs/{id}/resume", "paused", 303),
    "retry": ("retry", "run", "POST", "/dashboard/runs/{id}/retry", "failed", 303),
    "restart": ("restart", "run", "POST", "/dashboard/runs/{id}/restart", "waiting", 303),
    "schedules": ("list_schedules", "org", "GET", "/dashboard/schedules", "org", 200),
    "audit": ("read_audit", "org", "GET", "/dashboard/audit", "org", 200),
}


@pytest.mark.parametrize("name", list(DASHBOARD_CASES))
async def test_each_dashboard_read_and_action_writes_one_row(api: Api, name: str) -> None:
    action, kind, method, path, what, status = DASHBOARD_CASES[name]
    object_id = await prepare(api, what)
    assert (await sign_in(api.client, api.key_a)).status_code == 303
    url = path.format(id=object_id)
    csrf = csrf_of((await api.client.get("/dashboard/audit")).text)
    before = await all_rows(api)
    if method == "GET":
        response = await api.client.get(url)
    else:
        response = await api.client.post(url, data={"csrf": csrf, "from_step": "ask"})
    assert response.status_code == status, response.text
    new = (await all_rows(api))[len(before) :]
    assert [(r.action, r.object_kind, r.object_id) for r in new] == [(action, kind, object_id)]
    assert (new[0].actor, new[0].address) == (key_id(api.key_a), "127.0.0.1")


SCHEDULE = "ward-round"
SCHEDULE_CASES = {  # action, object kind, method, path, body, status
    "create": ("create_schedule", "schedule", "POST", "/v1/schedules",
               {"loop": "waits", "cron": "0 * * * *", "id": SCHEDULE, "body": {"p": "p-secret"}},
               201),
    "list": ("list_schedules", "org", "GET", "/v1/schedules", None, 200),
    "get": ("read_schedule", "schedule", "GET", "/v1/schedules/{id}", None, 200),
    "pause": ("pause_schedule", "schedule", "POST", "/v1/schedules/{id}/pause", None, 200),
    "resume": ("resume_schedule", "schedule", "POST", "/v1/schedules/{id}/resume", None, 200),
    "delete": ("delete_schedule", "schedule", "DELETE", "/v1/schedules/{id}", None, 204),
    "audit": ("read_audit", "org", "GET", "/v1/audit", None, 200),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SCHEDULE_CASES))
async def test_each_schedule_call_and_audit_read_writes_one_row(api: Api, name: str) -> None:
    action, kind, method, path, body, status = SCHEDULE_CASES[name]
    if name != "create":  # the App itself writes no audit row
        await api.app.schedules.create("waits", cron="0 * * * *", id=SCHEDULE, body={"p": 1})
        if name == "resume":
            await api.app.schedules.pause(SCHEDULE)
    before = await all_rows(api)
    url = path.format(id=SCHEDULE)
    response = await api.client.request(method, url, json=body, headers=api.a)
    assert response.status_code == status, response.text
    new = (await all_rows(api))[len(before) :]
    object_id = "clinic-a" if kind == "org" else SCHEDULE
    assert [(r.action, r.object_kind, r.object_id) for r in new] == [(action, kind, object_id)]
    assert (new[0].actor, new[0].address) == (key_id(api.key_a), "127.0.0.1")
    assert "p-secret" not in repr(new)
    if kind == "schedule" and name != "create":  # another organization's probe: no row
        probe = await api.client.request(method, url, json=body, headers=api.b)
        assert probe.status_code == 404, probe.text
        assert await all_rows(api, "clinic-b") == []


async def test_sign_in_writes_one_row_and_a_failed_one_none(api: Api) -> None:
    failed = await sign_in(api.client, api.key_b + "x")
    assert failed.status_code == 401
    assert await all_rows(api, "clinic-b") == []
    assert (await sign_in(api.client, api.key_b)).status_code == 303
    [row] = await all_rows(api, "clinic-b")
    kid = key_id(api.key_b)
    assert (row.action, row.object_kind, row.object_id, row.actor) == ("sign_in", "key", kid, kid)


async def test_another_orgs_audit_is_invisible(api: Api) -> None:
    run_id = await _waiting(api)
    assert (await api.client.get(f"/v1/runs/{run_id}", headers=api.a)).status_code == 200
    probe = await api.client.get(f"/v1/runs/{run_id}", headers=api.b)
    assert probe.status_code == 404
    assert await all_rows(api, "clinic-b") == []  # a refused probe writes nothing
    mine = await api.client.get("/v1/audit", headers=api.a)
    seen = [(r["action"], r["object_id"]) for r in mine.json()["rows"]]
    assert seen == [("read_run", run_id), ("trigger", run_id)]
    for query in ("", f"?object_id={run_id}", "?object_kind=run"):
        theirs = await api.client.get(f"/v1/audit{query}", headers=api.b)
        rows = theirs.json()["rows"]  # only B's own reads of its trail
        assert {(r["action"], r["object_id"]) for r in rows} <= {("read_audit", "clinic-b")}
    assert (await sign_in(api.client, api.key_b)).status_code == 303
    html = (await api.client.get("/dashboard/audit")).text
    assert run_id not in html and "sign_in" in html


async def test_v1_audit_filters_and_pages(api: Api) -> None:
    first, second = await _waiting(api), await _waiting(api)
    await api.clock.advance(60)
    bound = quote(datetime.fromtimestamp(api.clock.now(), UTC).isoformat())
    for _ in range(3):
        await api.client.get(f"/v1/runs/{first}", headers=api.a)
    await api.client.get(f"/v1/runs/{second}", headers=api.a)
    one = await api.client.get(f"/v1/audit?object_id={first}&limit=2", headers=api.a)
    body = one.json()
    assert [r["action"] for r in body["rows"]] == ["read_run", "read_run"]
    more = await api.client.get(
        f"/v1/audit?object_id={first}&limit=2&cursor={body['next_cursor']}", headers=api.a
    )
    assert [r["action"] for r in more.json()["rows"]] == ["read_run", "trigger"]
    assert more.json()["next_cursor"] is None
    seqs = [r["seq"] for r in body["rows"] + more.json()["rows"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 4
    since = await api.client.get(f"/v1/audit?object_kind=run&since={bound}", headers=api.a)
    assert [r["object_id"] for r in since.json()["rows"]] == [second, first, first, first]
    before = await api.client.get(f"/v1/audit?before={bound}", headers=api.a)
    assert {r["action"] for r in before.json()["rows"]} == {"trigger"}
    for bad in ("cursor=nope", "cursor=LTE=", "since=yesterday", "limit=0"):
        refused = await api.client.get(f"/v1/audit?{bad}", headers=api.a)
        assert refused.status_code == 422, bad
    assert (await api.client.get("/v1/audit")).status_code == 401


async def test_concurrent_appends_keep_one_valid_chain(api: Api) -> None:
    audit = api.app.store.audit

    def entry(org: str, n: int) -> AuditEntry:
        return AuditEntry(org, float(n), "k", "read_run", "run", f"r{n}", "127.0.0.1")

    written = await asyncio.gather(
        *(audit.append(entry(org, n)) for n in range(40) for org in ("clinic-a", "clinic-b"))
    )
    for org in ("clinic-a", "clinic-b"):
        assert sorted(r.seq for r in written if r.org == org) == list(range(1, 41))
        assert await verify(audit, org, page=7) == (40, None)


async def test_the_dashboard_page_filters_by_object_and_time(api: Api) -> None:
    first, second = await _waiting(api), await _waiting(api)
    assert (await sign_in(api.client, api.key_a)).status_code == 303
    everything = (await api.client.get("/dashboard/audit")).text
    assert first in everything and second in everything and "sign_in" in everything
    one = (await api.client.get(f"/dashboard/audit?object_kind=run&object_id={first}")).text
    assert first in one and second not in one and "sign_in" not in one
    later = datetime.fromtimestamp(api.clock.now() + 1, UTC).isoformat()
    none = await api.client.get("/dashboard/audit", params={"since": later})
    assert "No audit rows match." in none.text
    bad = await api.client.get("/dashboard/audit?before=yesterday")
    assert bad.status_code == 200 and "before &#39;yesterday&#39; is not a time" in bad.text
