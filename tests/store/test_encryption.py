"""Encryption at rest, on both backends: what a leaked database shows (nothing of the
patients'), rotation, re-encryption of older rows, wrong keys, swapped ciphertexts."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pulseloop import App, Concurrency, Event, Loop, NonRetryableError, Step
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.engine.cron import plan
from pulseloop.engine.schedules import new_record
from pulseloop.errors import EncryptionKeyError
from pulseloop.store import open_store, sqlite_path
from pulseloop.store.base import SCAN_SIGNAL_PAYLOAD, ScheduleRecord
from pulseloop.store.postgres.connection import parse_url
from pulseloop.store.sealed import EncryptedStore, Resealer, reseal_all
from pulseloop.store.sealed.columns import COLUMNS
from pulseloop.store.sealed.columns import token_of as sealed_token
from pulseloop.store.sealed.keyring import Recent, _Nonces, key_id_of
from pulseloop.testing import FakeClock
from tests.connectors.scan_helpers import trace_upload
from tests.connectors.test_facial_scan import _created, token_of
from tests.helpers import eventually, until_status

PHONE = "+1-555-0142-9876"
EVENT_TEXT = "chest pain since tuesday"
METADATA_TEXT = "Margaret Oyelaran-Quist"
SUMMARY_TEXT = "summary-of-patient-MOQ"
SCHEDULE_TEXT = "ward 7 bed 12 Ilse Vandermeer-Okafor"
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
OTHER_KEY = "ab" * 32


class FollowUp(Loop):
    """A follow-up with every kind of payload: input, a scan, an event, an output."""

    def summary(self, event: Event, output: Any) -> str | None:
        return SUMMARY_TEXT

    async def run(self, event: Event, step: Step) -> Any:
        async def provision(ctx: Any) -> Any:
            return await ctx.FACIAL_SCAN.create(
                expires_in=3600, metadata={"name": METADATA_TEXT, "phone": event.body["phone"]}
            )

        await step.do("Generate a health scan", provision)
        scan = await step.wait_for_scan(timeout="30 minutes")
        reply = await step.wait_for_event("reply", type="patient.reply", timeout="1 day")
        return {"scan": scan, "reply": reply, "phone": event.body["phone"]}


class Rounds(Loop):
    """A ward round a schedule starts: its output is the schedule's body."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("note", lambda: event.body)


def raw_database(db_url: str) -> bytes:
    """Every byte a thief of the database would hold: the SQLite file and its WAL, or every
    PostgreSQL table as COPY writes it out."""
    path = sqlite_path(db_url)
    if path is not None:
        files = [Path(path), Path(f"{path}-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    out = bytearray()
    with psycopg.connect(parse_url(db_url).conninfo) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        for (table,) in tables:
            with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
                for data in copy:
                    out += bytes(data)
    return bytes(out)


async def payload_key_ids(store: EncryptedStore) -> set[str | None]:
    """The data key id every stored payload names (None: a plaintext payload)."""
    found: set[str | None] = set()
    for column in COLUMNS:
        (rows,) = await store.payload_sql([(column.select, (*column.start, 1_000_000))])
        for row in rows:
            if row[-1] != SCAN_SIGNAL_PAYLOAD:
                token = sealed_token(row[-1], column.is_error)
                found.add(None if token is None else key_id_of(token))
    return found


@asynccontextmanager
async def opened(db_url: str, encrypt: bool = True) -> AsyncIterator[Any]:
    store = open_store(db_url, encrypt=encrypt)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def finished_follow_up(app: App) -> tuple[str, dict[str, Any]]:
    """Run a follow-up to its end through a real scan upload; (run id, created scan)."""
    upload, _ = trace_upload(66.0)
    run = await app.trigger("follow-up", {"phone": PHONE})
    created = await _created(app, run.id)
    service = ScanService(app)
    await service.accept_trace(token_of(created["url"]), upload)
    await service.drain()
    await until_status(app, run.id, "waiting")
    await app.send_event(run.id, "patient.reply", {"text": EVENT_TEXT})
    done = await app.wait_for_run(run.id, timeout="1 minute")
    assert done.output["phone"] == PHONE and done.output["reply"]["text"] == EVENT_TEXT
    assert done.output["scan"]["metadata"]["name"] == METADATA_TEXT
    assert done.output["scan"]["vitals"]["heart_rate_bpm"] > 0
    return run.id, created


async def test_a_leaked_database_shows_no_patient_data(db_url: str, clock: FakeClock) -> None:
    loops = [FollowUp, Rounds]
    async with App(loops, db_url, clock=clock, poll_interval="50 milliseconds") as app:
        run_id, created = await finished_follow_up(app)
        detail = await app.get_run(run_id)
        assert detail.summary == SUMMARY_TEXT
        # a webhook secret forges notifications: sealed too (nothing is sent to this one)
        hook = await app.webhooks.add("http://127.0.0.1:9/hooks", events=["scan.expired"])
        assert hook.secret is not None
        schedule = await app.schedules.create(
            "rounds", cron="0 8 * * *", body={"note": SCHEDULE_TEXT}, id="rounds"
        )
        assert schedule.next_fire is not None
        await clock.advance(schedule.next_fire.timestamp() - clock.now())
        tick = f"rounds:{schedule.next_fire:%Y%m%dT%H%M%SZ}"

        async def started() -> bool:
            return await app.run_record(tick) is not None

        await eventually(started, f"the tick's run {tick}")
        rounds = await app.wait_for_run(tick, timeout="1 minute")
        assert rounds.output == {"note": SCHEDULE_TEXT}
        raw = raw_database(db_url)  # while open: the WAL still holds the recent writes
    raw += raw_database(db_url)
    token = token_of(created["url"])
    secrets = (PHONE, EVENT_TEXT, METADATA_TEXT, SUMMARY_TEXT, token, "heart_rate_bpm")
    for secret in (*secrets, SCHEDULE_TEXT, hook.secret):
        assert secret.encode() not in raw, secret
    assert run_id.encode() in raw  # ids stay plaintext: the check itself reads the file
    assert hook.id.encode() in raw
    assert tick.encode() in raw


def _schedule(body: object, org: str = "a", schedule_id: str = "rounds") -> ScheduleRecord:
    return new_record(
        org, schedule_id, "rounds", cron="0 8 * * *", tz="UTC", body_json=json.dumps(body),
        missed="skip", start_at=None, end_at=None, source="api", now=T0 - 60,
    )  # fmt: skip


async def raw_column(store: EncryptedStore, sql: str, *args: Any) -> str:
    (rows,) = await store.payload_sql([(sql, args)])
    return str(rows[0][0])


async def test_a_schedule_body_is_sealed_and_each_tick_run_gets_it_as_input(db_url: str) -> None:
    body = {"patientId": "p1", "note": SCHEDULE_TEXT}
    async with opened(db_url) as store:
        stored = await store.put_schedule(_schedule(body))
        assert json.loads(stored.body) == body
        assert json.loads((await store.get_schedule("a", "rounds")).body) == body
        assert [json.loads(s.body) for s in await store.list_schedules("a")] == [body]
        paused = await store.pause_schedule("a", "rounds", True, None, T0 - 30)
        assert json.loads(paused.body) == body
        await store.pause_schedule("a", "rounds", False, T0, T0 - 30)
        raw_body = await raw_column(store, "SELECT body FROM schedules WHERE id = ?", "rounds")
        assert sealed_token(raw_body, False) is not None

        assert (await store.fire_schedules("a", T0, lambda r: plan(r, T0), 10))[0] == 1
        tick = "rounds:20270115T080000Z"
        run = await store.get_run("a", tick)
        assert run is not None and json.loads(run.input) == body
        raw_input = await raw_column(store, "SELECT input FROM runs WHERE id = ?", tick)
        # sealed again for the run's own row, not the schedule's ciphertext copied
        assert sealed_token(raw_input, False) is not None and raw_input != raw_body
        assert SCHEDULE_TEXT.encode() not in raw_database(db_url)


async def test_a_body_sealed_under_a_key_another_process_made_still_fires(db_url: str) -> None:
    async with opened(db_url) as store, opened(db_url) as other:
        await store.create_run("a", "first", "loop", "{}", 1.0)  # "a" has a key here
        new = await other.rotate_data_key("a")
        await other.put_schedule(_schedule({"note": SCHEDULE_TEXT}))
        assert store.keyring.known(new.id) is None  # this process has not seen it yet
        assert (await store.fire_schedules("a", T0, lambda r: plan(r, T0), 10))[0] == 1
        run = await store.get_run("a", "rounds:20270115T080000Z")
        assert run is not None and json.loads(run.input) == {"note": SCHEDULE_TEXT}


async def test_the_pass_reencrypts_schedule_bodies_after_a_rotation(db_url: str) -> None:
    async with opened(db_url) as store:
        await store.put_schedule(_schedule({"note": SCHEDULE_TEXT}))
        old = await store.keyring.current("a")
        new = await store.rotate_data_key("a")
        assert await payload_key_ids(store) == {old.id}
        assert await reseal_all(store) == 1
        assert await payload_key_ids(store) == {new.id}
        schedule = await store.get_schedule("a", "rounds")
        assert schedule is not None and json.loads(schedule.body) == {"note": SCHEDULE_TEXT}


async def test_a_rotation_leaves_old_rows_readable_and_the_pass_reencrypts_them(
    db_url: str,
) -> None:
    async with opened(db_url) as store:
        await store.create_run("a", "r1", "loop", json.dumps({"phone": PHONE}), 1.0)
        old = await store.keyring.current("a")
        new = await store.rotate_data_key("a")
        assert new.id != old.id
        await store.create_run("a", "r2", "loop", json.dumps({"phone": "new"}), 2.0)
        assert json.loads((await store.get_run("a", "r1")).input) == {"phone": PHONE}
        assert await payload_key_ids(store) == {old.id, new.id}

        assert await reseal_all(store) == 1  # r1's input; r2 is sealed under the new key
        assert await payload_key_ids(store) == {new.id}
        assert json.loads((await store.get_run("a", "r1")).input) == {"phone": PHONE}
        assert await reseal_all(store) == 0


async def test_a_worker_reencrypts_in_the_background_after_a_rotation(
    db_url: str, clock: FakeClock
) -> None:
    async with App([FollowUp], db_url, clock=clock, poll_interval="50 milliseconds") as app:
        await finished_follow_up(app)
        store = app.store
        assert isinstance(store, EncryptedStore)
        old = await store.keyring.current(app.org)
        assert await payload_key_ids(store) == {old.id}
        new = await store.rotate_data_key(app.org)
        resealer = Resealer(store, batch=2, settle_s=0.0)  # small batches: several per column
        resealer.start()
        try:
            resealer.kick()
            await resealer.idle.wait()
        finally:
            await resealer.stop()
        assert await payload_key_ids(store) == {new.id}
        run = (await app.list_runs())[0]
        assert (await app.get_run(run.id)).output["phone"] == PHONE


async def test_rows_from_before_encryption_stay_readable_and_get_encrypted(db_url: str) -> None:
    async with opened(db_url, encrypt=False) as plain:
        await plain.create_run("a", "old", "loop", json.dumps({"phone": PHONE}), 1.0)
    assert PHONE.encode() in raw_database(db_url)
    async with opened(db_url) as store:
        assert json.loads((await store.get_run("a", "old")).input) == {"phone": PHONE}
        assert await payload_key_ids(store) == {None}
        assert await reseal_all(store) == 1
        assert json.loads((await store.get_run("a", "old")).input) == {"phone": PHONE}
        assert await payload_key_ids(store) == {(await store.keyring.current("a")).id}


async def test_a_wrong_master_key_is_a_clear_error(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(db_url) as store:
        await store.create_run("a", "r1", "loop", "{}", 1.0)
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", OTHER_KEY)
    with pytest.raises(EncryptionKeyError, match=r"cannot open data key .* PULSELOOP_MASTER_KEY"):
        async with opened(db_url):
            pass


async def test_a_malformed_or_missing_master_key_is_a_clear_error(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", "too-short")
    with pytest.raises(EncryptionKeyError, match="PULSELOOP_MASTER_KEY does not hold a master"):
        async with opened(db_url):
            pass
    monkeypatch.delenv("PULSELOOP_MASTER_KEY")
    if sqlite_path(db_url) is None:  # a shared database has no key file to fall back on
        with pytest.raises(EncryptionKeyError, match="PULSELOOP_MASTER_KEY is not set"):
            async with opened(db_url):
                pass
    else:
        async with opened(db_url):
            pass
        key_file = Path(str(sqlite_path(db_url))).with_suffix(".master-key")
        assert key_file.stat().st_mode & 0o777 == 0o600


async def test_ciphertexts_swapped_between_rows_do_not_open(db_url: str) -> None:
    async with opened(db_url) as store:
        await store.create_run("a", "r1", "loop", json.dumps("one"), 1.0)
        await store.create_run("a", "r2", "loop", json.dumps("two"), 2.0)
        await store.create_run("b", "r1", "loop", json.dumps("other org"), 3.0)
        rows = dict(
            ((org, id_), text)
            for org, id_, text in (
                await store.payload_sql([("SELECT org, id, input FROM runs", ())])
            )[0]
        )
        swap = "UPDATE runs SET input = ? WHERE org = ? AND id = ?"
        await store.payload_sql(
            [(swap, (rows["a", "r2"], "a", "r1")), (swap, (rows["b", "r1"], "a", "r2"))]
        )
        with pytest.raises(EncryptionKeyError, match="copied from another row"):
            await store.get_run("a", "r1")
        with pytest.raises(EncryptionKeyError, match="key of another organization"):
            await store.get_run("a", "r2")
        assert json.loads((await store.get_run("b", "r1")).input) == "other org"


async def test_many_first_writes_at_once_make_one_data_key(db_url: str) -> None:
    async with opened(db_url) as store:
        await asyncio.gather(
            *(store.create_run("a", f"r{i}", "loop", "{}", float(i)) for i in range(20))
        )
        (rows,) = await store.payload_sql([("SELECT count(*) FROM data_keys", ())])
        assert rows == [(1,)]


def test_nonces_are_never_repeated_across_pool_refills() -> None:
    nonces = _Nonces()
    drawn = [nonces.next() for _ in range(3 * _Nonces._BATCH)]
    assert len(set(drawn)) == len(drawn) and {len(n) for n in drawn} == {12}


class CallFails(Loop):
    """A step that fails with the patient's phone number in its message."""

    async def run(self, event: Event, step: Step) -> Any:
        async def call() -> None:
            raise NonRetryableError(f"cannot reach {event.body['phone']}")

        await step.do("call", call)


async def test_errors_are_encrypted_and_survive_a_retry(db_url: str, clock: FakeClock) -> None:
    async with App([CallFails], db_url, clock=clock, poll_interval="50 milliseconds") as app:
        run = await app.trigger("call-fails", {"phone": PHONE})
        failed = await app.wait_for_run(run.id, timeout="1 minute")
        assert failed.status == "failed" and failed.error is not None
        assert PHONE in failed.error["message"]
        await app.retry(run.id)  # the failed step record moves to the attempts history
        again = await app.wait_for_run(run.id, timeout="1 minute")
        assert again.status == "failed"
        (attempt, *_) = again.step("call").attempts
        assert attempt.error is not None and PHONE in attempt.error["message"]
        raw = raw_database(db_url)
    assert PHONE.encode() not in raw + raw_database(db_url)


def test_recent_plaintexts_are_bounded_and_bound_to_their_row() -> None:
    recent = Recent()
    for i in range(Recent.MAX_ENTRIES + 10):
        recent.put(f"t{i}", "runs.input", ("r",), "x")
    assert recent.get("t0", "runs.input", ("r",)) is None  # the oldest went
    assert recent.get(f"t{Recent.MAX_ENTRIES + 9}", "runs.input", ("r",)) == "x"
    assert recent.get(f"t{Recent.MAX_ENTRIES + 9}", "runs.input", ("other",)) is None
    recent.put("big", "runs.input", ("r",), "x" * (Recent.MAX_CHARS + 1))
    assert recent.get("big", "runs.input", ("r",)) is None  # large payloads are not kept


CHILD_TEXT = "child of Ngozi Abernathy-Lindqvist"


class ChildNote(Loop):
    """A child run (step.run_loop): its input and output carry the patient's name."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("note", lambda: {"echo": event.body["who"]})


class StartsChildNote(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.run_loop("note", ChildNote, {"who": CHILD_TEXT})


async def test_a_child_runs_input_and_output_are_sealed(db_url: str) -> None:
    loops = [StartsChildNote, ChildNote]
    async with App(loops, db_url, poll_interval="50 milliseconds") as app:
        run = await app.trigger("starts-child-note", id="parent")
        done = await app.wait_for_run(run.id, timeout="1 minute")
        assert done.output == {"echo": CHILD_TEXT}
        assert (await app.get_run("parent~note")).body == {"who": CHILD_TEXT}
        raw = raw_database(db_url)
    raw += raw_database(db_url)
    assert CHILD_TEXT.encode() not in raw
    assert b"parent~note" in raw


FLOW_PATIENT = "patient-Oduya-Haverkamp-0193"


class PerPatientRounds(Loop):
    """A loop limited per patient: its concurrency key is a patient id."""

    concurrency = Concurrency(limit=1, key=lambda e: e.body["patientId"])

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("note", lambda: "seen")


async def test_flow_keys_are_stored_as_keyed_hashes_only(db_url: str) -> None:
    async with App([PerPatientRounds], db_url, worker=False) as app:
        body = {"patientId": FLOW_PATIENT}
        await app.trigger("per-patient-rounds", body)
        await app.trigger("per-patient-rounds", body, dedupe="1 hour", dedupe_key=FLOW_PATIENT)
        await app.trigger("per-patient-rounds", body, debounce="1 hour", debounce_key=FLOW_PATIENT)
        raw = raw_database(db_url)
    raw += raw_database(db_url)
    assert FLOW_PATIENT.encode() not in raw
    # nor its plain digest, which anyone could recompute from a list of patient ids
    plain = hashlib.sha256(f"per-patient-rounds\0{FLOW_PATIENT}".encode()).hexdigest()
    assert plain.encode() not in raw
    assert b"h1:" in raw
