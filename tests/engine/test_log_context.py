"""Log records made in a run name its run, loop, org and step (engine/logcontext.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from pulseloop import Event, Loop, Step
from tests.conftest import AppFactory

user_log = logging.getLogger("clinic.follow_up")


class Logs(Loop):
    name = "logs"

    async def run(self, event: Event, step: Step) -> Any:
        def sync_step() -> int:  # runs in a thread
            user_log.info("sending the reminder")
            return 1

        async def async_step() -> int:
            user_log.info("saving the answer", extra={"run_id": "mine"})  # user's own extra
            return 2

        async def gathered(n: int) -> int:
            await asyncio.sleep(0)
            user_log.info("gathered %d", n)
            return n

        await step.do("remind", sync_step)
        user_log.info("between steps")
        await step.do("save", async_step)
        await asyncio.gather(
            step.do("fan 1", lambda: gathered(1)), step.do("fan 2", lambda: gathered(2))
        )
        return "done"


def _context(record: logging.LogRecord) -> tuple[Any, ...]:
    return (
        getattr(record, "pulseloop_run_id", "unset"),
        getattr(record, "pulseloop_loop", "unset"),
        getattr(record, "pulseloop_step", "unset"),
        getattr(record, "pulseloop_attempt", "unset"),
    )


async def test_user_log_calls_in_a_run_carry_run_loop_and_step(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clinic.follow_up")
    async with make_app([Logs]) as app:
        run = await app.trigger("logs", {"patient": "Ada Lovelace"})
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == "done"
    mine = {r.getMessage(): r for r in caplog.records if r.name == "clinic.follow_up"}
    assert _context(mine["sending the reminder"]) == (run.id, "logs", "remind", 1)
    assert _context(mine["between steps"]) == (run.id, "logs", None, None)
    assert _context(mine["saving the answer"]) == (run.id, "logs", "save", 1)
    assert mine["saving the answer"].run_id == "mine"  # type: ignore[attr-defined]
    assert _context(mine["gathered 1"])[2] == "fan 1"  # concurrent steps keep their own
    assert _context(mine["gathered 2"])[2] == "fan 2"
    assert mine["sending the reminder"].pulseloop_org == app.org  # type: ignore[attr-defined]
    for record in caplog.records:  # the engine's own records too: never the body
        assert "Ada Lovelace" not in record.getMessage()
        assert "Ada Lovelace" not in repr(record.__dict__)


async def test_records_outside_a_run_have_the_attributes_as_none(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clinic.follow_up")
    async with make_app([Logs]):
        user_log.info("outside")
    (record,) = [r for r in caplog.records if r.getMessage() == "outside"]
    assert _context(record) == (None, None, None, None)
    formatted = logging.Formatter("%(pulseloop_run_id)s %(pulseloop_step)s %(message)s")
    assert formatted.format(record) == "None None outside"
