"""Rate limits: durable, shared by every worker process, parking runs instead of blocking."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest

from pulseloop import App, Event, InvalidFlowControl, Loop, RateLimit, Step
from pulseloop.store import sqlite_path
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.crash.test_sigkill import start_worker, stop_worker
from tests.engine.helpers import idle

LOOP_FILE = Path(__file__).with_name("rate_loop.py")
RUNS = 20
LIMIT, PERIOD_S = 5, 1.0

_PERMIT_LOG = {
    "sqlite": (
        "CREATE TABLE permit_log (at REAL NOT NULL)",
        "CREATE TRIGGER permit_logged AFTER INSERT ON rate_permits "
        "BEGIN INSERT INTO permit_log (at) VALUES (new.at); END",
    ),
    "postgres": (
        "CREATE TABLE permit_log (at double precision NOT NULL)",
        "CREATE FUNCTION log_permit() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO permit_log (at) VALUES (NEW.at); RETURN NULL; END $$",
        "CREATE TRIGGER permit_logged AFTER INSERT ON rate_permits FOR EACH ROW "
        "EXECUTE FUNCTION log_permit()",
    ),
}


def _sql(db_url: str, backend: str, *statements: str) -> list[Any]:
    """Run statements on the test's database with a plain driver connection (the permit
    log is the test's own instrument, not the store's)."""
    if backend == "sqlite":
        path = sqlite_path(db_url)
        assert path is not None
        conn = sqlite3.connect(path)
        try:
            rows = [conn.execute(s).fetchall() for s in statements]
            conn.commit()
            return rows[-1]
        finally:
            conn.close()
    with psycopg.connect(db_url, autocommit=True) as pg:
        found: list[Any] = []
        for s in statements:
            cur = pg.execute(s)
            found = list(cur.fetchall()) if cur.description else []
        return found


def _most_in_a_window(times: list[float], period_s: float) -> int:
    """The most of ``times`` in any half-open window ``[t, t + period_s)``."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - period_s:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_a_rate_limit_holds_across_two_worker_processes(
    db_url: str, backend: str, tmp_path: Path
) -> None:
    log = tmp_path / "sent.log"
    async with App([], db_url, worker=False) as app:
        runs = [await app.trigger("texting", {"log": str(log)}) for _ in range(RUNS)]
    _sql(db_url, backend, *_PERMIT_LOG[backend])
    workers = [start_worker(LOOP_FILE, db_url) for _ in range(2)]
    try:
        while not log.exists() or len(log.read_text().split()) < RUNS:
            assert all(w.poll() is None for w in workers), "a worker exited"
            await asyncio.sleep(0.05)  # waiting for a positive event: every SMS sent
    finally:
        for worker in workers:
            stop_worker(worker, signal.SIGTERM)
    permits = [row[0] for row in _sql(db_url, backend, "SELECT at FROM permit_log")]
    sent = [float(x) for x in log.read_text().split()]
    assert len(permits) == RUNS  # one permit per step: nobody waited on a worker thread
    assert len(sent) == RUNS
    assert _most_in_a_window(permits, PERIOD_S) == LIMIT
    async with App([], db_url, worker=False) as app:
        statuses = {(await app.get_run(r.id)).status for r in runs}
    assert statuses == {"completed"}


class Limited(Loop):
    sent: ClassVar[list[float]] = []
    clock: ClassVar[FakeClock]

    async def run(self, event: Event, step: Step) -> Any:
        async def send() -> int:
            Limited.sent.append(Limited.clock.now())
            return len(Limited.sent)

        return await step.do("send", send, rate=RateLimit("2/minute", key="sms"))


async def test_a_run_over_the_limit_parks_until_a_permit_frees(
    make_app: AppFactory, clock: FakeClock
) -> None:
    Limited.sent, Limited.clock = [], clock
    start = clock.now()
    async with make_app([Limited]) as app:
        runs = [await app.trigger("limited", n) for n in range(3)]
        await idle(app)
        records = [await app.run_record(r.id) for r in runs]
        assert sorted(r.status for r in records if r) == ["completed", "completed", "waiting"]
        (parked,) = [r for r in records if r and r.status == "waiting"]
        assert parked.wake_at == start + 60  # when the oldest permit leaves the window
        await clock.advance("59 seconds")
        await idle(app)
        assert len(Limited.sent) == 2
        await clock.advance("1 second")
        done = await app.wait_for_run(parked.id, timeout="1 minute")
    assert done.status == "completed"
    assert Limited.sent == [start, start, start + 60]


@pytest.mark.parametrize(
    "rate", ["10/fortnight", "0/second", "ten/second", "10", "10/-1 seconds", 10]
)
def test_a_rate_that_cannot_be_read_is_named(rate: Any) -> None:
    with pytest.raises(InvalidFlowControl, match=rf"cannot read rate limit {rate!r}"):
        RateLimit(rate, key="sms")


def test_rates_are_read_with_their_units() -> None:
    assert (RateLimit("10/second", key="k").count, RateLimit("10/second", key="k").period_s) == (
        10,
        1.0,
    )
    assert RateLimit("100/minute", key="k").period_s == 60.0
    assert RateLimit("5/10 seconds", key="k").period_s == 10.0
    assert RateLimit("3/hours", key="k").period_s == 3600.0
    with pytest.raises(InvalidFlowControl, match="key '' must be a non-empty string"):
        RateLimit("1/second", key="")
