"""The chaos driver: many runs, real workers SIGKILLed at random instants, then checks.

Used by ``tests/crash/test_chaos.py`` (50 kills) and ``bench/chaos.py`` (1,000). While
workers are killed and restarted, a feeder in this process plays the outside world:
it sends each run its event (half of them before the run waits, half while it waits) and
finishes each scan as the analysis would. At the end every run must have completed with
the right output, every step recorded once, each signal consumed by exactly one wait,
every side effect done at least once, and the database must pass ``integrity_check``.
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

from pulseloop import App

LOOP_FILE = Path(__file__).with_name("chaos_loop.py")
STEP_NAMES = {"a", "nap", "flaky", "reply", "provision", "b"}
"""Step records every run must end with (plus its scan wait, named by the engine)."""
STALL_S = 90.0
"""No run finished for this long after the kills: a stuck run, the check fails."""


@dataclass(slots=True)
class ChaosReport:
    """What happened, for the test's assertions and the benchmark's summary."""

    runs: int
    kills: int = 0
    takeover_kills: int = 0
    restarts: int = 0
    drain_s: float = 0.0
    total_s: float = 0.0
    redone_effects: int = 0
    problems: list[str] = field(default_factory=list)


async def _start_worker(db_url: str, lease: str | None) -> asyncio.subprocess.Process:
    options = ["--lease", lease] if lease else []
    errors = Path(db_url.removeprefix("sqlite:///") + ".worker-stderr")
    with errors.open("w") as stderr:  # a file, not a pipe: nobody drains it while it runs
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pulseloop.cli.main", "worker", str(LOOP_FILE), "--db", db_url,
            "--poll", "100 milliseconds", *options,
            stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if b"ready" not in line:
        await proc.wait()
        raise RuntimeError(f"worker did not start: {line!r}; {errors.read_text()[-2000:]}")
    return proc


async def _kill(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    if proc.returncode is None:
        os.kill(proc.pid, sig)
    await proc.wait()


def _read(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def _feed(app: App, db: Path, replied: set[str], stop: asyncio.Event) -> None:
    """Send events to runs waiting for them (unless ``replied`` already) and finish
    pending scans, until ``stop``."""
    finished: set[str] = set()
    while not stop.is_set():
        waiting = _read(db, "SELECT run_id FROM waits WHERE name = 'reply'")
        for (run_id,) in waiting:
            if run_id not in replied:
                replied.add(run_id)
                await app.send_event(run_id, "reply", {"to": run_id})
        pending = _read(db, "SELECT id, run_id FROM scans WHERE status = 'pending'")
        for scan_id, run_id in pending:
            if scan_id not in finished:
                finished.add(scan_id)
                i = int(run_id.rsplit("-", 1)[1])
                result = {"vitals": {"heart_rate_bpm": 60 + i % 40}, "quality": {"ok": True}}
                await app.store.finish_scan(
                    scan_id, "completed", json.dumps(result), None, app.clock.now()
                )
        await asyncio.sleep(0.05)


async def run_chaos(
    db: Path, *, runs: int, kills: int, takeover_kills: int, seed: int, lease: str | None = None
) -> ChaosReport:
    """Trigger ``runs`` runs, SIGKILL one worker ``kills`` times at random instants, then run
    two workers and kill one of them ``takeover_kills`` times; drain; check everything."""
    rng = random.Random(seed)
    report = ChaosReport(runs=runs)
    db_url = f"sqlite:///{db}"
    log = db.with_suffix(".effects")
    started = time.perf_counter()
    async with App([], db_url, worker=False) as app:
        replied: set[str] = set()
        triggered = 0
        per_kill = -(-runs // (kills + takeover_kills + 1))

        async def trigger_more() -> None:
            """The load keeps coming: a few new runs before every kill."""
            nonlocal triggered
            for i in range(triggered, min(runs, triggered + per_kill)):
                run = await app.trigger("chaos", {"i": i, "log": str(log)}, id=f"chaos-{i:04d}")
                if i % 2 == 0:  # buffered before the run ever waits for it
                    await app.send_event(run.id, "reply", {"to": run.id})
                    replied.add(run.id)
                triggered += 1

        stop = asyncio.Event()
        feeder = asyncio.create_task(_feed(app, db, replied, stop))
        try:
            await trigger_more()
            proc = await _start_worker(db_url, lease)
            while report.kills < kills:
                await trigger_more()
                await asyncio.sleep(rng.uniform(0.02, 0.6))
                await _kill(proc, signal.SIGKILL)
                report.kills += 1
                proc = await _start_worker(db_url, lease)
                report.restarts += 1
            other = await _start_worker(db_url, lease)  # two workers share the runs now
            while report.takeover_kills < takeover_kills:
                await trigger_more()
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                victim = rng.choice([proc, other])
                await _kill(victim, signal.SIGKILL)
                report.takeover_kills += 1
                await asyncio.sleep(rng.uniform(0.0, 0.3))  # the survivor takes over alone
                replacement = await _start_worker(db_url, lease)
                report.restarts += 1
                proc, other = (replacement, other) if victim is proc else (proc, replacement)
            while triggered < runs:
                await trigger_more()
            drain_start = time.perf_counter()
            await _drain(db, runs)
            report.drain_s = time.perf_counter() - drain_start
            await _kill(proc, signal.SIGTERM)
            await _kill(other, signal.SIGTERM)
        finally:
            stop.set()
            await feeder
    report.total_s = time.perf_counter() - started
    _check(db, log, runs, report)
    return report


async def _drain(db: Path, runs: int) -> None:
    last, last_change = -1, time.monotonic()
    while True:
        ((done,),) = _read(db, "SELECT count(*) FROM runs WHERE status = 'completed'")
        if done == runs:
            return
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            stuck = _read(db, "SELECT id, status FROM runs WHERE status != 'completed' LIMIT 5")
            raise AssertionError(f"runs stopped finishing: {done}/{runs} completed; {stuck}")
        await asyncio.sleep(0.1)


def _check(db: Path, log: Path, runs: int, report: ChaosReport) -> None:
    problems = report.problems
    outputs = dict(_read(db, "SELECT id, output FROM runs WHERE status = 'completed'"))
    for i in range(runs):
        run_id = f"chaos-{i:04d}"
        out = json.loads(outputs[run_id])
        expected = {"i": i, "a": 2 * i, "reply": {"to": run_id}, "scan": "completed",
                    "heart_rate": 60 + i % 40, "metadata": {"i": i}}  # fmt: skip
        attempts = out.pop("attempts")
        if out != expected or attempts < 2:
            problems.append(f"{run_id}: output {out}, attempts {attempts}")
    steps: dict[str, set[str]] = {}
    for run_id, name, status in _read(db, "SELECT run_id, name, status FROM steps"):
        if status == "completed":
            steps.setdefault(run_id, set()).add(name)
    shapes = Counter(frozenset(names) for names in steps.values())
    if len(shapes) != 1 or not next(iter(shapes)) >= STEP_NAMES or len(steps) != runs:
        problems.append(f"step records differ between runs: {shapes}")
    signals = _read(db, "SELECT run_id, key, consumed_by FROM signals")
    per_run = Counter((run_id, key) for run_id, key, _ in signals)
    if any(n != 1 for n in per_run.values()) or len(per_run) != 2 * runs:
        problems.append(f"signals per run and key: {sorted(set(per_run.values()))}")
    if any(consumed is None for _, _, consumed in signals):
        problems.append("a signal was never consumed")
    ((integrity,),) = _read(db, "PRAGMA integrity_check")
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
