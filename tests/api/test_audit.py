"""The audit trail through HTTP (both backends): every /v1 and dashboard read of patient
data and every operator action writes exactly one row naming who, what, which object and
from where; one organization never sees another's rows; the chain stays verifiable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import quote
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
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


@dataclass
class Case:
    """One audited request: what to prepare, send, and the row it must write."""

    action: str
    kind: str
    send: Callable[[Api, httpx.AsyncClient, str], Awaitable[httpx.Response]]
    prepare: str = "waiting"  # waiting: a run parked on an event; failed; paused; scan
    status: int = 200


async def _waiting(api: Api) -> str:
    response = await api.client.post("/v1/loops/waits/runs", json={}, headers=api.a)
    run_id: str = response.json()["id"]
    await until_status(api.app, run_id, "waiting")
    return run_id


async def prepare(api: Api, what: str) -> tuple[str, str]:
    """(object id the row must name, the run's id) after setting the scene."""
    if what == "scan":
        run_id, scan_id = await api.parked_scan()
        return scan_id, run_id
    if what == "failed":
        response = await api.client.post("/v1/loops/fails/runs", json={}, headers=api.a)
        run_id = response.json()["id"]
        await until_status(api.app, run_id, "failed")
        return run_id, run_id
    run_id = await _waiting(api)
    if what == "paused":
        await api.app.pause(run_id)  # the App itself writes no audit row
    if what == "org":
        return "clinic-a", run_id
    return run_id, run_id


def v1(
    method: str, path: str, body: dict[str, object] | None = None
) -> Callable[..., Awaitable[httpx.Response]]:
    """Send ``method path`` with A's key; ``{id}`` is the prepared run or scan id."""

    async def send(api: Api, client: httpx.AsyncClient, object_id: str) -> httpx.Response:
        return await client.request(method, path.format(id=object_id), json=body, headers=api.a)

    return send


V1_CASES = {
    "trigger": Case("trigger", "run", v1("POST", "/v1/loops/waits/runs", {}), "org", 202),
    "list": Case("list_runs", "org", v1("GET", "/v1/runs"), "org"),
    "read": Case("read_run", "run", v1("GET", "/v1/runs/{id}")),
    "cancel": Case("cancel", "run", v1("POST", "/v1/runs/{id}/cancel")),
    "pause": Case("pause", "run", v1("POST", "/v1/runs/{id}/pause")),
    "resume": Case("resume", "run", v1("POST", "/v1/runs/{id}/resume"), "paused"),
    "retry": Case("retry", "run", v1("POST", "/v1/runs/{id}/retry"), "failed"),
    "restart": Case("restart", "run", v1("POST", "/v1/runs/{id}/restart", {"from_step": "ask"})),
    "scan": Case("read_scan", "scan", v1("GET", "/v1/scans/{id}"), "scan"),
}


@pytest.mark.parametrize("name", list(V1_CASES))
async def test_each_v1_read_and_action_writes_one_row(api: Api, name: str) -> None:
    case = V1_CASES[name]
    object_id, _ = await prepare(api, case.prepare)
    before = await all_rows(api)
    response = await case.send(api, api.client, object_id)
    assert response.status_code == case.status, response.text
    new = (await all_rows(api))[len(before) :]
    assert len(new) == 1, new
    row = new[0]
    expected_id = response.json()["id"] if case.action == "trigger" else object_id
    assert (row.action, row.object_kind, row.object_id) == (case.action, case.kind, expected_id)
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
}


@pytest.mark.parametrize("name", list(DASHBOARD_CASES))
async def test_each_dashboard_read_and_action_writes_one_row(api: Api, name: str) -> None:
    action, kind, method, path, what, status = DASHBOARD_CASES[name]
    object_id, _ = await prepare(api, what)
    assert (await sign_in(api.client, api.key_a)).status_code == 303
    url = path.format(id=object_id)
    csrf = csrf_of((await api.client.get("/dashboard/audit")).text)  # not itself audited
    before = await all_rows(api)
    if method == "GET":
        response = await api.client.get(url)
    else:
        response = await api.client.post(url, data={"csrf": csrf, "from_step": "ask"})
    assert response.status_code == status, response.text
    new = (await all_rows(api))[len(before) :]
    assert [(r.action, r.object_kind, r.object_id) for r in new] == [(action, kind, object_id)]
    assert (new[0].actor, new[0].address) == (key_id(api.key_a), "127.0.0.1")


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
        assert theirs.json() == {"rows": [], "next_cursor": None}
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
