"""Concurrency limits per key and priorities, on both backends (docs/flow-control.md)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pulseloop import Concurrency, Event, InvalidFlowControl, Loop, Step
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import IDLE_LIMIT_S, idle


class SideTable:
    """Enter/leave marks written from inside steps to a file of their own (not the store),
    so overlaps are judged by what the steps saw, not by what the store reports."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("CREATE TABLE marks (seq INTEGER PRIMARY KEY, patient, run, what)")

    def mark(self, patient: str, run: str, what: str) -> None:
        self.conn.execute(
            "INSERT INTO marks (patient, run, what) VALUES (?, ?, ?)", (patient, run, what)
        )

    def most_at_once(self) -> tuple[dict[str, int], int]:
        """The most runs inside a step at once, per patient and overall."""
        inside: dict[str, int] = {}
        most: dict[str, int] = {}
        overall = peak = 0
        for patient, what in self.conn.execute("SELECT patient, what FROM marks ORDER BY seq"):
            delta = 1 if what == "enter" else -1
            inside[patient] = inside.get(patient, 0) + delta
            overall += delta
            most[patient] = max(most.get(patient, 0), inside[patient])
            peak = max(peak, overall)
        return most, peak


class PerPatient(Loop):
    concurrency = Concurrency(limit=1, key=lambda e: e.body["patientId"])
    side: ClassVar[SideTable]

    async def run(self, event: Event, step: Step) -> Any:
        patient = event.body["patientId"]

        async def visit(stage: str) -> str:
            self.side.mark(patient, event.id, "enter")
            for _ in range(3):  # let other runs' steps interleave with this one
                await asyncio.sleep(0)
            self.side.mark(patient, event.id, "leave")
            return stage

        await step.do("check in", lambda: visit("in"))
        return await step.do("follow up", lambda: visit("out"))


async def test_fifty_runs_for_five_patients_never_overlap_per_patient(
    make_app: AppFactory, tmp_path: Path
) -> None:
    PerPatient.side = SideTable(tmp_path / "side.db")
    async with make_app([PerPatient], worker=False) as app:  # a backlog, then a worker
        runs = [await app.trigger("per-patient", {"patientId": f"p{n % 5}"}) for n in range(50)]
    async with make_app([PerPatient], concurrency=20) as app:
        done = await asyncio.gather(*(app.wait_for_run(r.id, timeout="2 minutes") for r in runs))
    assert {r.status for r in done} == {"completed"}
    most, peak = PerPatient.side.most_at_once()
    assert most == {f"p{n}": 1 for n in range(5)}
    assert peak > 1  # patients ran beside each other: one patient's queue blocks no other


class Gated(Loop):
    """Runs of one key; each waits in its step until the test opens its gate."""

    concurrency = Concurrency(limit=1, key=lambda e: e.body["patientId"])
    gates: ClassVar[dict[str, asyncio.Event]] = {}
    entered: ClassVar[list[str]] = []

    async def run(self, event: Event, step: Step) -> Any:
        async def work() -> str:
            Gated.entered.append(event.body["name"])
            await Gated.gates[event.body["name"]].wait()
            Gated.entered.append(f"{event.body['name']} left")
            return "ok"

        # a long timeout: the test moves the workflow clock while a step waits at its gate
        await step.do("work", work, timeout="1 day")
        if event.body.get("sleep"):
            await step.sleep("rest", "1 hour")
            await step.do("after rest", work, timeout="1 day")
        return "done"


async def _entered(name: str) -> None:
    """Wait for run ``name`` to enter its step; fail (not hang) if it never does."""
    try:
        async with asyncio.timeout(IDLE_LIMIT_S):
            while name not in Gated.entered:
                await asyncio.sleep(0.01)  # polling for a positive event, not an absence
    except TimeoutError:
        raise AssertionError(f"{name} never entered its step; entered: {Gated.entered}") from None


async def test_queued_runs_of_a_full_key_wait_in_order_and_other_keys_run(
    make_app: AppFactory, clock: FakeClock
) -> None:
    Gated.gates = {n: asyncio.Event() for n in ("a1", "a2", "a3", "b1")}
    Gated.entered = []
    async with make_app([Gated], concurrency=10) as app:
        a1 = await app.trigger("gated", {"patientId": "A", "name": "a1"})
        await _entered("a1")
        a2 = await app.trigger("gated", {"patientId": "A", "name": "a2"})
        await clock.advance("1 second")  # FIFO is by trigger time: no tie between a2 and a3
        a3 = await app.trigger("gated", {"patientId": "A", "name": "a3"})
        b1 = await app.trigger("gated", {"patientId": "B", "name": "b1"})
        await _entered("b1")  # B is not held up behind A's queue
        assert (await app.run_record(a2.id)).status == "queued"
        Gated.gates["b1"].set()
        Gated.gates["a1"].set()
        await _entered("a2")
        Gated.gates["a2"].set()
        Gated.gates["a3"].set()
        for run in (a1, a2, a3, b1):
            assert (await app.wait_for_run(run.id, timeout="1 minute")).status == "completed"
    assert [n for n in Gated.entered if n.startswith("a")] == [
        "a1", "a1 left", "a2", "a2 left", "a3", "a3 left",
    ]  # fmt: skip


async def test_a_parked_run_frees_its_slot_and_needs_one_to_resume(
    make_app: AppFactory, clock: FakeClock
) -> None:
    Gated.gates = {n: asyncio.Event() for n in ("sleeper", "next")}
    Gated.gates["sleeper"].set()
    Gated.entered = []
    async with make_app([Gated], concurrency=10) as app:
        sleeper = await app.trigger("gated", {"patientId": "A", "name": "sleeper", "sleep": 1})
        await idle(app)
        assert (await app.run_record(sleeper.id)).status == "waiting"
        nxt = await app.trigger("gated", {"patientId": "A", "name": "next"})
        await _entered("next")  # the sleeping run held no slot
        await clock.advance("2 hours")  # the sleeper wakes while "next" holds the slot
        while (woken := await app.run_record(sleeper.id)) and woken.status == "waiting":
            await asyncio.sleep(0.01)
        assert woken is not None and woken.status == "queued"
        other = await app.store.claim_runs(app.org, "w-test", ["gated"], 10, 0.0, 10.0, clock.now())
        assert other == []  # woken, it waits for a slot like any queued run
        Gated.gates["next"].set()
        assert (await app.wait_for_run(nxt.id, timeout="1 minute")).status == "completed"
        done = await app.wait_for_run(sleeper.id, timeout="1 minute")
    assert done.status == "completed"
    # the woken sleeper went on only once "next" gave its slot back
    assert Gated.entered == [
        "sleeper",
        "sleeper left",
        "next",
        "next left",
        "sleeper",
        "sleeper left",
    ]


class Ranked(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return event.body


class Urgent(Loop):
    priority = 5

    async def run(self, event: Event, step: Step) -> Any:
        return event.body


async def test_higher_priority_runs_are_claimed_first_fifo_within_one(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([Ranked, Urgent], worker=False) as app:
        for n, priority in enumerate([0, 0, 3, -1, 3, 0]):
            await app.trigger("ranked", n, id=f"r{n}", priority=priority)
            await clock.advance("1 second")
        await app.trigger("urgent", 100, id="u")  # the loop's default priority, 5
        order = []
        for _ in range(7):
            (run,) = await app.store.claim_runs(
                app.org, "w-test", ["ranked", "urgent"], 1, 0.0, 10.0, clock.now()
            )
            order.append(run.id)
    assert order == ["u", "r2", "r4", "r0", "r1", "r5", "r3"]


async def test_keyed_and_unkeyed_runs_share_one_priority_order(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([Ranked, Gated], worker=False) as app:
        await app.trigger("ranked", 0, id="low")
        await clock.advance("1 second")
        await app.trigger("gated", {"patientId": "A"}, id="keyed", priority=2)
        await clock.advance("1 second")
        await app.trigger("ranked", 1, id="high", priority=9)
        order = []
        for _ in range(3):
            (run,) = await app.store.claim_runs(
                app.org, "w-test", ["ranked", "gated"], 1, 0.0, 10.0, clock.now()
            )
            order.append(run.id)
    assert order == ["high", "keyed", "low"]


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "1"])
def test_a_limit_below_one_is_refused_naming_it(limit: Any) -> None:
    with pytest.raises(InvalidFlowControl, match=rf"limit={limit!r}.*integer >= 1"):
        Concurrency(limit=limit)


@pytest.mark.parametrize("priority", [1.5, "high", 10**7, True])
async def test_a_bad_priority_is_refused_naming_it(make_app: AppFactory, priority: Any) -> None:
    async with make_app([Ranked], worker=False) as app:
        with pytest.raises(InvalidFlowControl, match=rf"priority {priority!r} must be"):
            await app.trigger("ranked", 1, priority=priority)


async def test_a_key_missing_from_the_body_is_named_without_quoting_the_body(
    make_app: AppFactory,
) -> None:
    async with make_app([PerPatient], worker=False) as app:
        with pytest.raises(InvalidFlowControl, match="concurrency key of loop 'per-patient'") as e:
            await app.trigger("per-patient", {"name": "Jane Doe"})
        assert "Jane" not in str(e.value)
        assert await app.list_runs() == []
