"""Debounce and dedupe windows on trigger, on both backends with the fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from pulseloop import Event, InvalidFlowControl, Loop, Step
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle


class Echo(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("echo", lambda: event.body)


async def test_debounce_starts_one_run_with_the_last_body_once_triggers_stop(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([Echo]) as app:
        first = await app.trigger("echo", {"v": 1}, debounce="5 minutes", debounce_key="p1")
        for v in (2, 3):
            await clock.advance("4 minutes")  # inside the window: it restarts
            again = await app.trigger("echo", {"v": v}, debounce="5 minutes", debounce_key="p1")
            assert again.id == first.id
        other = await app.trigger("echo", {"v": 9}, debounce="5 minutes", debounce_key="p2")
        assert other.id != first.id  # another key, another window
        await clock.advance("4 minutes")
        await idle(app)
        assert (await app.get_run(first.id)).status == "waiting"  # not quiet long enough
        await clock.advance("1 minute")
        done = await app.wait_for_run(first.id, timeout="1 minute")
        assert done.output == {"v": 3}
        assert (await app.wait_for_run(other.id, timeout="1 minute")).output == {"v": 9}
        later = await app.trigger("echo", {"v": 4}, debounce="5 minutes", debounce_key="p1")
        assert later.id != first.id  # the debounced run started: a new window begins
        assert len(await app.list_runs()) == 3


async def test_dedupe_returns_the_first_run_within_the_window(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([Echo]) as app:
        first = await app.trigger("echo", {"v": 1}, dedupe="10 minutes", dedupe_key="visit-7")
        await clock.advance("9 minutes")
        again = await app.trigger("echo", {"v": 2}, dedupe="10 minutes", dedupe_key="visit-7")
        assert again.id == first.id
        assert (await app.wait_for_run(first.id, timeout="1 minute")).output == {"v": 1}
        same_body = await app.trigger("echo", {"v": 5}, dedupe="10 minutes")
        assert (await app.trigger("echo", {"v": 5}, dedupe="10 minutes")).id == same_body.id
        await clock.advance("1 minute")  # the first window is over
        fresh = await app.trigger("echo", {"v": 3}, dedupe="10 minutes", dedupe_key="visit-7")
        assert fresh.id != first.id
        assert (await app.wait_for_run(fresh.id, timeout="1 minute")).output == {"v": 3}


async def test_window_keys_are_stored_as_keyed_hashes(make_app: AppFactory) -> None:
    async with make_app([Echo], worker=False) as app:
        await app.trigger("echo", 1, dedupe="1 hour", dedupe_key="patient-4711")
        rows = await app.store.payload_sql([("SELECT key FROM trigger_windows", ())])
    ((stored,),) = rows[0]
    assert stored.startswith("h1:") and "4711" not in stored


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"debounce": "1 minute", "dedupe": "1 minute"}, "debounce= or dedupe=, not both"),
        ({"debounce_key": "p1"}, "debounce_key='p1' was given without debounce="),
        ({"dedupe": "0 seconds"}, "dedupe='0 seconds' must be a positive duration"),
        ({"dedupe": "1 minute", "dedupe_key": ""}, "dedupe_key='' must be a non-empty"),
    ],
)
async def test_bad_windows_are_named(
    make_app: AppFactory, options: dict[str, Any], message: str
) -> None:
    async with make_app([Echo], worker=False) as app:
        with pytest.raises(InvalidFlowControl, match=message):
            await app.trigger("echo", 1, **options)
