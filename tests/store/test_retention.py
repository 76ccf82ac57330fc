"""Retention, on both backends: a purge removes a finished run's patient payloads (and its
scans') and keeps its skeleton; unfinished, parked and recent runs are untouched; the
background pass works in batches; a dry run changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from pulseloop import App, Event, Loop, Step
from pulseloop.errors import OrgNotFound
from pulseloop.store.purger import Purger
from pulseloop.store.retention import (
    DEFAULT_DAYS,
    InvalidRetention,
    purge_org,
    retention_days,
    set_retention_days,
)
from pulseloop.store.sealed import EncryptedStore
from pulseloop.store.sealed.keyring import PayloadSql
from pulseloop.testing import FakeClock
from tests.helpers import until_status
from tests.store.test_encryption import FollowUp, finished_follow_up, payload_key_ids

DAY = 86400.0


class Quick(Loop):
    """One step that echoes the body: a run that finishes at once."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("echo", lambda: event.body)


def sql(app: App) -> PayloadSql:
    return cast(PayloadSql, app.store)


async def rows(app: App, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    """Raw rows, as stored (ciphertexts and all)."""
    (found,) = await sql(app).payload_sql([(statement, args)])
    return found


async def quick_runs(app: App, n: int, prefix: str = "q") -> list[str]:
    ids = []
    for i in range(n):
        run = await app.trigger("quick", {"patient": f"p-{i}"}, id=f"{prefix}-{i}")
        await app.wait_for_run(run.id, timeout="1 minute")
        ids.append(run.id)
    return ids


async def test_purge_removes_payloads_and_keeps_the_skeleton(db_url: str, clock: FakeClock) -> None:
    async with App([FollowUp, Quick], db_url, clock=clock, poll_interval="50 milliseconds") as app:
        old, created = await finished_follow_up(app)
        before = await app.get_run(old)
        await clock.advance(DEFAULT_DAYS * DAY + 60)
        (recent,) = await quick_runs(app, 1)
        await clock.advance(DAY)  # recent: finished a day before the purge
        parked = (await app.trigger("follow-up", {"phone": "+1-555-0100"})).id
        await until_status(app, parked, "waiting")

        report = await purge_org(sql(app), app.org, clock.now())

        assert (report.runs, report.scans) == (1, 1)
        assert report.batches[0].runs == (old,) and report.batches[0].scans == (created["id"],)
        run = await app.get_run(old)
        assert run.purged_at is not None and run.purged_at.timestamp() == clock.now()
        assert (run.body, run.output, run.error, run.summary) == (None, None, None, None)
        assert run.status == before.status == "completed"
        assert (run.created_at, run.finished_at) == (before.created_at, before.finished_at)
        assert [s.name for s in run.steps] == [s.name for s in before.steps]
        assert [s.status for s in run.steps] == [s.status for s in before.steps]
        assert all(s.output is None and s.error is None for s in run.steps)
        scan = await app.get_scan(created["id"])
        assert scan is not None and scan.status == "completed"
        assert scan.payload()["metadata"] is None and scan.payload()["vitals"] is None

        (raw,) = await rows(
            app, "SELECT input, output, error, summary, status, purged_at FROM runs "
            "WHERE id = ?", old,
        )  # fmt: skip
        assert raw[:5] == ("null", None, None, None, "completed") and raw[5] is not None
        assert await rows(
            app, "SELECT 1 FROM steps WHERE run_id = ? AND (output IS NOT NULL OR error IS "
            "NOT NULL)", old,
        ) == []  # fmt: skip
        assert len(await rows(app, "SELECT 1 FROM steps WHERE run_id = ?", old)) == 3
        assert {
            r[0] for r in await rows(app, "SELECT payload FROM signals WHERE run_id = ?", old)
        } == {"null"}
        (raw_scan,) = await rows(
            app, "SELECT metadata, result, status, purged_at FROM scans WHERE id = ?",
            created["id"],
        )  # fmt: skip
        assert raw_scan[:3] == ("null", None, "completed") and raw_scan[3] is not None

        for untouched in (recent, parked):
            run = await app.get_run(untouched)
            assert run.purged_at is None and run.body is not None
        (parked_scan,) = await rows(
            app, "SELECT metadata, purged_at FROM scans WHERE run_id = ?", parked
        )
        assert parked_scan[0] != "null" and parked_scan[1] is None
        # purged rows hold no plaintext for the re-encryption pass to seal
        assert isinstance(app.store, EncryptedStore)
        assert None not in await payload_key_ids(app.store)
        audited = await app.store.audit.rows(app.org, since=clock.now())
        assert {(r.action, r.object_kind, r.object_id, r.actor) for r in audited} == {
            ("purge", "run", old, "retention"),
            ("purge", "scan", created["id"], "retention"),
        }
        again = await purge_org(sql(app), app.org, clock.now())
        assert (again.runs, again.scans) == (0, 0)


async def test_a_dry_run_counts_and_changes_nothing(db_url: str, clock: FakeClock) -> None:
    async with App([Quick], db_url, clock=clock, poll_interval="50 milliseconds") as app:
        ids = await quick_runs(app, 3)
        await clock.advance(10 * DAY)
        report = await purge_org(sql(app), app.org, clock.now(), older_than_days=5, dry_run=True)
        assert (report.runs, report.scans, report.batches) == (3, 0, [])
        for run_id in ids:
            assert (await app.get_run(run_id)).body is not None
        assert (await purge_org(sql(app), app.org, clock.now(), older_than_days=11)).runs == 0
        assert (await purge_org(sql(app), app.org, clock.now(), older_than_days=5)).runs == 3


async def test_the_policy_is_per_organization(db_url: str, clock: FakeClock) -> None:
    async with App([Quick], db_url, clock=clock, org="clinic-a") as app:
        await app.store.ensure_org("clinic-a", 0.0)
        await app.store.ensure_org("clinic-b", 0.0)
        assert await retention_days(sql(app), "clinic-a") == DEFAULT_DAYS
        assert await set_retention_days(sql(app), "clinic-a", 7) == 7
        assert await retention_days(sql(app), "clinic-a") == 7
        assert await retention_days(sql(app), "clinic-b") == DEFAULT_DAYS
        (run_id,) = await quick_runs(app, 1)
        await clock.advance(8 * DAY)
        assert (await purge_org(sql(app), "clinic-b", clock.now())).runs == 0
        assert (await purge_org(sql(app), "clinic-a", clock.now())).runs == 1
        assert (await app.get_run(run_id)).purged_at is not None
        assert await set_retention_days(sql(app), "clinic-a", None) == DEFAULT_DAYS
        assert await retention_days(sql(app), "clinic-a") == DEFAULT_DAYS
        with pytest.raises(InvalidRetention, match="0 days"):
            await set_retention_days(sql(app), "clinic-a", 0)
        with pytest.raises(OrgNotFound, match="nope"):
            await set_retention_days(sql(app), "nope", 5)


async def test_the_background_purge_works_in_batches(db_url: str, clock: FakeClock) -> None:
    async with App([Quick], db_url, clock=clock, poll_interval="50 milliseconds") as app:
        assert app.runtime.purger is not None  # a worker process purges in the background
        ids = await quick_runs(app, 5)
        purger = Purger(sql(app), app.org, clock, batch=2)
        purger.start()
        try:
            await purger.idle.wait()
            assert purger.last is not None and purger.last.runs == 0  # none due yet
            await clock.advance(DEFAULT_DAYS * DAY + 1)
            purger.kick()
            await purger.idle.wait()
        finally:
            await purger.stop()
        assert purger.last is not None
        assert [len(b.runs) for b in purger.last.batches] == [2, 2, 1]
        assert sorted(r for b in purger.last.batches for r in b.runs) == sorted(ids)
        for run_id in ids:
            assert (await app.get_run(run_id)).purged_at is not None


async def test_a_workers_background_purge_covers_every_organization(
    db_url: str, clock: FakeClock
) -> None:
    """A worker of clinic-a purges clinic-b's due runs too (clinic-b runs no worker), each
    under clinic-b's own policy and audited in clinic-b's trail."""
    async with App([Quick], db_url, clock=clock, org="clinic-a") as app:
        purger = app.runtime.purger
        assert purger is not None
        await app.store.ensure_org("clinic-a", 0.0)
        await app.store.ensure_org("clinic-b", 0.0)
        await app.store.ensure_org("clinic-c", 0.0)
        await set_retention_days(sql(app), "clinic-c", 365)  # not due for clinic-c
        ours = await quick_runs(app, 2)
        for org in ("clinic-b", "clinic-c"):
            for i in range(3):
                await app.store.create_run(org, f"b-{i}", "quick", '{"p": 1}', clock.now())
                await app.store.cancel_run(org, f"b-{i}", clock.now())
        await clock.advance(DEFAULT_DAYS * DAY + 1)
        purger.kick()
        await purger.idle.wait()
        assert {org: r.runs for org, r in purger.reports.items()} == {
            "clinic-a": 2, "clinic-b": 3, "clinic-c": 0,
        }  # fmt: skip
        for run_id in ours:
            assert (await app.get_run(run_id)).purged_at is not None
        theirs = await app.client("clinic-b").list_runs()
        assert len(theirs) == 3 and all(r.purged_at is not None for r in theirs)
        kept = await app.client("clinic-c").list_runs()
        assert len(kept) == 3 and all(r.purged_at is None for r in kept)
        trail = await app.store.audit.chain("clinic-b", 0, 100)
        assert sorted(r.object_id for r in trail if r.action == "purge") == ["b-0", "b-1", "b-2"]


async def test_a_purged_scans_link_ends(db_url: str, clock: FakeClock) -> None:
    async with App([Quick], db_url, clock=clock) as app:
        now = clock.now()
        month = now + 30 * DAY
        await app.store.create_scan(app.org, "gone", "scan", "sc-1", "h-1", '{"n": 1}', now, month)
        await app.store.finish_scan("sc-1", "failed", None, "no_face", now)
        await clock.advance(2 * DAY)
        report = await purge_org(sql(app), app.org, clock.now(), older_than_days=1)
        assert report.batches[0].scans == ("sc-1",)
        (raw,) = await rows(app, "SELECT metadata, expires_at, purged_at FROM scans")
        assert raw == ("null", clock.now(), clock.now())  # the 30-day link ended at the purge


async def test_a_video_left_by_a_crash_is_deleted_with_its_scan(
    db_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    video = tmp_path / "upload.webm"
    video.write_bytes(b"a face, frame by frame")
    async with App([Quick], db_url, clock=clock) as app:
        now = clock.now()
        await app.store.create_scan(app.org, "gone", "scan", "sc-v", "h-v", "{}", now, now + 60)
        await app.store.accept_upload("h-v", ("pending",), "video", str(video), now)
        assert await rows(app, "SELECT kind FROM analysis_jobs") == [("video",)]
        # the outcome was recorded but the job row stayed (as a crash mid-cleanup would)
        (job,) = await rows(
            app, "SELECT scan_id, org, kind, payload, created_at FROM analysis_jobs"
        )
        await app.store.finish_scan("sc-v", "failed", None, "video_unreadable", now)
        await sql(app).payload_sql([(
            "INSERT INTO analysis_jobs (scan_id, org, kind, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?)", job,
        )])  # fmt: skip
        await clock.advance(2 * DAY)
        report = await purge_org(sql(app), app.org, clock.now(), older_than_days=1)
        assert report.scans == 1
        assert await rows(app, "SELECT kind FROM analysis_jobs") == []
    assert not video.exists()
