"""The chaos driver: many runs, real processes SIGKILLed at random instants, then checks.

One piece of code for both backends. ``run_chaos`` (SQLite: one worker killed, then two
sharing the load) is used by ``tests/crash/test_chaos.py`` (50 kills) and
``bench/chaos.py`` (1,000); ``tests/crash/chaos_pg.py`` builds the PostgreSQL scenario
(four workers, two servers, a server restart) from the same parts.

While processes are killed and restarted, a :class:`Feeder` in this process plays the
outside world: it sends each run its event (half of them before the run waits, half
while it waits) and finishes each scan, either as the analysis would (``finish_scan``)
or through the real path, a phone's trace POSTed to a ``pulseloop server``. At the end
every run must have completed with the right output, every step recorded once (the sleep
not early), each signal consumed by exactly one wait, every side effect done at least
once, no analysis job left, and a SQLite database must pass ``integrity_check``.

The tables are read through :class:`ChaosDb`, a connection of the driver's own
(sqlite3, or psycopg for a PostgreSQL URL), never through the store under test.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pulseloop import App
from pulseloop.errors import StoreError
from pulseloop.store.sealed import EncryptedStore

LOOP_FILE = Path(__file__).with_name("chaos_loop.py")
STEP_NAMES = {"a", "nap", "flaky", "reply", "provision", "b"}
"""Step records every run must end with (plus its scan wait, named by the engine)."""
STALL_S = 90.0
"""No run finished for this long after the kills: a stuck run, the check fails."""
NAP_S = 0.3
"""The loop's durable sleep (chaos_loop.py): its record may not finish earlier."""
UPLOAD_BPM = (60.0, 72.0, 84.0, 96.0)
"""Heart rates of the traces uploaded to servers (made once each)."""
HEART_RATE_TOLERANCE_BPM = 3.0
"""How far an analysed trace's heart rate may be from the truth it was made with."""
RECONNECT_S = 60.0
"""How long the driver's own reads and writes retry while the database is away."""


@dataclass(slots=True)
class ChaosReport:
    """What happened, for the test's assertions and the benchmark's summary."""

    runs: int
    kills: int = 0
    takeover_kills: int = 0
    server_kills: int = 0
    restarts: int = 0
    database_restarts: int = 0
    uploads: int = 0
    drain_s: float = 0.0
    total_s: float = 0.0
    redone_effects: int = 0
    problems: list[str] = field(default_factory=list)


def run_id(i: int) -> str:
    """The id of the chaos run number ``i``."""
    return f"chaos-{i:04d}"


# --------------------------------------------------------------------------------------
# reading the tables, on either backend
# --------------------------------------------------------------------------------------


class ChaosDb:
    """Plain SQL reads of the store's tables on a connection of the driver's own.

    On PostgreSQL a read retries (reconnecting) for ``RECONNECT_S`` while the server is
    restarting; SQL uses no parameters, so one text reads on both backends.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite:///")
        self._pg: Any = None
        self._lock = asyncio.Lock()  # the driver and its feeder share the one connection

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """All rows of ``sql``."""
        if self.sqlite:
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30)
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()
        async with self._lock:
            return await self._pg_rows(sql)

    async def _pg_rows(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        deadline = time.monotonic() + RECONNECT_S
        while True:
            try:
                if self._pg is None:
                    self._pg = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=5
                    )
                cur = await self._pg.execute(sql.encode())
                return list(await cur.fetchall())
            except psycopg.OperationalError:
                await self.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        """Close the PostgreSQL connection, if one is open."""
        if self._pg is not None:
            conn, self._pg = self._pg, None
            await conn.close()


async def retrying(action: Any) -> Any:
    """``await action()``, again while the database is away (a server restart): the
    driver's writes are idempotent or checked before they are redone."""
    deadline = time.monotonic() + RECONNECT_S
    while True:
        try:
            return await action()
        except StoreError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


# --------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Processes:
    """Starts ``pulseloop`` processes on one database, stderr to files in ``folder``."""

    db_url: str
    folder: Path
    env: dict[str, str] | None = None
    lease: str | None = None
    poll: str = "100 milliseconds"
    started: int = 0

    def _stderr(self, kind: str) -> Path:
        self.started += 1
        return self.folder / f"{kind}-{self.started}.stderr"

    async def _start(self, kind: str, args: list[str], ready: bytes) -> asyncio.subprocess.Process:
        errors = self._stderr(kind)
        with errors.open("w") as stderr:  # a file, not a pipe: nobody drains it while it runs
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pulseloop.cli.main", *args,
                stdout=asyncio.subprocess.PIPE, stderr=stderr, env=self.env,
            )  # fmt: skip
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if ready not in line:
            await proc.wait()
            raise RuntimeError(f"{kind} did not start: {line!r}; {errors.read_text()[-2000:]}")
        return proc

    async def worker(self) -> asyncio.subprocess.Process:
        """A ``pulseloop worker`` for the chaos loop, once it says it is ready."""
        options = ["--lease", self.lease] if self.lease else []
        args = ["worker", str(LOOP_FILE), "--db", self.db_url, "--poll", self.poll, *options]
        return await self._start("worker", args, b"ready")

    async def server(self, port: int) -> asyncio.subprocess.Process:
        """A ``pulseloop server`` (scan pages, analysis) on ``port``, once it is ready."""
        args = ["server", "--db", self.db_url, "--port", str(port)]
        return await self._start("server", args, b"server ready")


async def kill(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Send ``sig`` to a process this driver started (by pid) and reap it."""
    if proc.returncode is None:
        os.kill(proc.pid, sig)
    await proc.wait()


# --------------------------------------------------------------------------------------
# the outside world
# --------------------------------------------------------------------------------------


def expected_heart_rate(i: int, uploaded: bool) -> float:
    """The heart rate run ``i`` must end with: the trace's truth, or the faked result's."""
    return UPLOAD_BPM[i % len(UPLOAD_BPM)] if uploaded else float(60 + i % 40)


class Feeder:
    """Sends events to runs waiting for them and completes their scans, until stopped.

    ``upload(i)`` says which runs' scans go through a server (``servers`` holds the base
    URLs of the live ones); the others are finished with ``store.finish_scan``. Hold
    ``world`` to pause the outside world (while the database restarts).
    """

    def __init__(
        self,
        app: App,
        db: ChaosDb,
        replied: set[str],
        *,
        upload: Any = None,
        servers: list[str] | None = None,
    ) -> None:
        self.app, self.db, self.replied = app, db, replied
        self.upload = upload or (lambda i: False)
        self.servers = servers if servers is not None else []
        self.world = asyncio.Lock()
        self.uploaded: set[int] = set()
        self.refused: list[str] = []
        self._unanswered: dict[str, int] = {}
        """Scans whose upload got no answer (the server died mid-request), by run index."""
        self._finished: set[str] = set()
        self._rng = random.Random(7)

    async def send_event(self, rid: str) -> None:
        """The run's one ``reply`` event; not sent again if an attempt that failed
        (the database went away) had in fact committed it."""

        async def send() -> None:
            sent = await self.db.rows(
                f"SELECT 1 FROM signals WHERE run_id = '{rid}' AND key = 'event:reply'"
            )
            if not sent:
                await self.app.send_event(rid, "reply", {"to": rid})

        self.replied.add(rid)
        await retrying(send)

    async def run(self, stop: asyncio.Event) -> None:
        """Feed until ``stop``."""
        async with httpx.AsyncClient(timeout=30) as client:
            while not stop.is_set():
                async with self.world:
                    await self._pass(client)
                await asyncio.sleep(0.05)

    async def _pass(self, client: httpx.AsyncClient) -> None:
        await self._settle_unanswered()
        for (rid,) in await self.db.rows("SELECT run_id FROM waits WHERE name = 'reply'"):
            if rid not in self.replied:
                await self.send_event(rid)
        pending = await self.db.rows(
            "SELECT sc.id, sc.run_id, st.output FROM scans sc JOIN steps st "
            "ON st.run_id = sc.run_id AND st.name = 'provision' WHERE sc.status = 'pending'"
        )
        for scan_id, rid, sealed in pending:
            if scan_id in self._finished:
                continue
            i = int(rid.rsplit("-", 1)[1])
            provisioned = await open_stored(self.app, sealed, "steps.output", rid, "provision")
            if self.upload(i):
                if await self._upload(client, scan_id, i, json.loads(provisioned)["url"]):
                    self._finished.add(scan_id)
                continue
            self._finished.add(scan_id)
            result = {"vitals": {"heart_rate_bpm": 60 + i % 40}, "quality": {"ok": True}}
            text = json.dumps(result)
            await retrying(
                lambda s=scan_id, t=text: self.app.store.finish_scan(
                    s, "completed", t, None, self.app.clock.now()
                )
            )

    async def _settle_unanswered(self) -> None:
        """An upload whose server was killed after accepting it but before answering
        (the scan left ``pending``) went through, as a patient's page would learn by
        reloading; one still pending is posted again by this pass."""
        if not self._unanswered:
            return
        ids = ", ".join(f"'{scan_id}'" for scan_id in self._unanswered)
        rows = await self.db.rows(f"SELECT id, status FROM scans WHERE id IN ({ids})")
        for scan_id, status in rows:
            if status != "pending":
                self.uploaded.add(self._unanswered.pop(scan_id))
                self._finished.add(scan_id)

    async def _upload(self, client: httpx.AsyncClient, scan_id: str, i: int, url: str) -> bool:
        """POST the run's trace to a live server, as the patient's page does; true once
        the link has its upload (202 now, or 409: an earlier POST whose answer was lost)."""
        from tests.connectors.scan_helpers import trace_upload

        if not self.servers:
            return False
        token = url.rsplit("/s/", 1)[1]
        body, _ = trace_upload(UPLOAD_BPM[i % len(UPLOAD_BPM)])
        base = self._rng.choice(self.servers)
        try:
            answer = await client.post(
                f"{base}/s/{token}/trace", content=body,
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
        except httpx.TransportError:  # that server was just killed: another try later
            self._unanswered[scan_id] = i  # unless it accepted the upload before dying
            return False
        if answer.status_code in (202, 409):
            self.uploaded.add(i)
            return True
        if answer.status_code < 500 and answer.status_code != 429:
            self.refused.append(f"run {i}: upload answered {answer.status_code} {answer.text}")
            return True
        return False


# --------------------------------------------------------------------------------------
# the SQLite scenario
# --------------------------------------------------------------------------------------


async def run_chaos(
    db: Path, *, runs: int, kills: int, takeover_kills: int, seed: int, lease: str | None = None
) -> ChaosReport:
    """Trigger ``runs`` runs, SIGKILL one worker ``kills`` times at random instants, then run
    two workers and kill one of them ``takeover_kills`` times; drain; check everything."""
    rng = random.Random(seed)
    report = ChaosReport(runs=runs)
    db_url = f"sqlite:///{db}"
    log = db.with_suffix(".effects")
    procs = Processes(db_url, db.parent, lease=lease)
    reader = ChaosDb(db_url)
    started = time.perf_counter()
    async with App([], db_url, worker=False) as app:
        feeder = Feeder(app, reader, set())
        triggered = 0
        per_kill = -(-runs // (kills + takeover_kills + 1))

        async def trigger_more() -> None:
            """The load keeps coming: a few new runs before every kill."""
            nonlocal triggered
            triggered = await trigger(app, feeder, log, triggered, min(runs, triggered + per_kill))

        stop = asyncio.Event()
        feeding = asyncio.create_task(feeder.run(stop))
        try:
            await trigger_more()
            proc = await procs.worker()
            while report.kills < kills:
                await trigger_more()
                await asyncio.sleep(rng.uniform(0.02, 0.6))
                await kill(proc, signal.SIGKILL)
                report.kills += 1
                proc = await procs.worker()
                report.restarts += 1
            other = await procs.worker()  # two workers share the runs now
            while report.takeover_kills < takeover_kills:
                await trigger_more()
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                victim = rng.choice([proc, other])
                await kill(victim, signal.SIGKILL)
                report.takeover_kills += 1
                await asyncio.sleep(rng.uniform(0.0, 0.3))  # the survivor takes over alone
                replacement = await procs.worker()
                report.restarts += 1
                proc, other = (replacement, other) if victim is proc else (proc, replacement)
            while triggered < runs:
                await trigger_more()
            drain_start = time.perf_counter()
            await drain(reader, runs)
            report.drain_s = time.perf_counter() - drain_start
            await kill(proc, signal.SIGTERM)
            await kill(other, signal.SIGTERM)
        finally:
            stop.set()
            await feeding
        report.total_s = time.perf_counter() - started
        await check(reader, log, runs, report, feeder)  # the open App decrypts outputs
    return report


async def trigger(app: App, feeder: Feeder, log: Path, first: int, end: int) -> int:
    """Trigger runs ``first`` .. ``end - 1`` (each even one gets its event before it ever
    waits: buffered); return ``end``."""
    for i in range(first, end):
        body = {"i": i, "log": str(log)}
        run = await retrying(lambda b=body, i=i: app.trigger("chaos", b, id=run_id(i)))
        if i % 2 == 0:
            await feeder.send_event(run.id)
    return end


# --------------------------------------------------------------------------------------
# the end: drain, then check everything
# --------------------------------------------------------------------------------------


async def completed(db: ChaosDb) -> int:
    """How many runs have completed."""
    ((done,),) = await db.rows("SELECT count(*) FROM runs WHERE status = 'completed'")
    return int(done)


async def drain(db: ChaosDb, runs: int) -> None:
    """Wait until all ``runs`` completed; fail if none completes for ``STALL_S``."""
    last, last_change = -1, time.monotonic()
    while True:
        done = await completed(db)
        if done == runs:
            return
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            stuck = await db.rows("SELECT id, status FROM runs WHERE status != 'completed' LIMIT 5")
            raise AssertionError(f"runs stopped finishing: {done}/{runs} completed; {stuck}")
        await asyncio.sleep(0.1)


async def open_stored(app: App, stored: str, column: str, *row: str) -> str:
    """A payload read with raw SQL, decrypted (payloads are encrypted at rest)."""
    assert isinstance(app.store, EncryptedStore)
    text = await app.store.open_stored(stored, column, *row)
    assert text is not None
    return text


async def check(db: ChaosDb, log: Path, runs: int, report: ChaosReport, feeder: Feeder) -> None:
    """Every check of the module docstring; what fails goes to ``report.problems``."""
    problems = report.problems
    problems.extend(feeder.refused)
    outputs = dict(await db.rows("SELECT id, output FROM runs WHERE status = 'completed'"))
    for i in range(runs):
        rid = run_id(i)
        out = json.loads(await open_stored(feeder.app, outputs[rid], "runs.output", rid))
        expected = {"i": i, "a": 2 * i, "reply": {"to": rid}, "scan": "completed",
                    "metadata": {"i": i}}  # fmt: skip
        attempts, heart_rate = out.pop("attempts"), out.pop("heart_rate")
        truth = expected_heart_rate(i, i in feeder.uploaded)
        off = abs(heart_rate - truth) if isinstance(heart_rate, int | float) else None
        if out != expected or attempts < 2 or off is None or off > HEART_RATE_TOLERANCE_BPM:
            problems.append(f"{rid}: output {out}, attempts {attempts}, heart rate {heart_rate}")
    await _check_records(db, runs, problems)
    if db.sqlite:
        ((integrity,),) = await db.rows("PRAGMA integrity_check")
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
    effects = Counter(log.read_text().split())
    for i in range(runs):
        for tag, least in (("a", 1), ("flaky", 2), ("b", 1)):
            if effects[f"{i}:{tag}"] < least:
                problems.append(f"run {i}: side effect {tag} done {effects[f'{i}:{tag}']}x")
    report.redone_effects = sum(
        n - (2 if key.endswith(":flaky") else 1) for key, n in effects.items()
    )


async def _check_records(db: ChaosDb, runs: int, problems: list[str]) -> None:
    """Steps once each (and the sleep not early), signals consumed once, no job left."""
    steps: dict[str, set[str]] = {}
    records = Counter[tuple[str, str]]()
    for rid, name, status, started_at, finished_at in await db.rows(
        "SELECT run_id, name, status, started_at, finished_at FROM steps"
    ):
        records[rid, name] += 1
        if status == "completed":
            steps.setdefault(rid, set()).add(name)
        if name == "nap" and finished_at - started_at < NAP_S - 0.01:
            problems.append(f"{rid}: the sleep ended after {finished_at - started_at:.3f} s")
    if any(n != 1 for n in records.values()):
        problems.append(f"steps recorded twice: {[k for k, n in records.items() if n != 1][:5]}")
    shapes = Counter(frozenset(names) for names in steps.values())
    if len(shapes) != 1 or not next(iter(shapes)) >= STEP_NAMES or len(steps) != runs:
        problems.append(f"step records differ between runs: {shapes}")
    signals = await db.rows("SELECT run_id, key, consumed_by FROM signals")
    per_run = Counter((rid, key) for rid, key, _ in signals)
    if any(n != 1 for n in per_run.values()) or len(per_run) != 2 * runs:
        problems.append(f"signals per run and key: {sorted(set(per_run.values()))}")
    if any(consumed is None for _, _, consumed in signals):
        problems.append("a signal was never consumed")
    ((jobs,),) = await db.rows("SELECT count(*) FROM analysis_jobs")
    if jobs:
        problems.append(f"{jobs} analysis jobs left behind")
