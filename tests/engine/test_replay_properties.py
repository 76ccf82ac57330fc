"""Replay invariants, for any program of steps and sleeps (hypothesis).

* every step's callback runs exactly once, however often the run is replayed;
* what a step returns is the JSON round trip of what its callback returned, on the first
  execution and on every replay alike;
* the recorded timeline lists the steps in program order.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pulseloop import App, Event, Loop, Step
from pulseloop.testing import FakeClock
from tests.engine.helpers import idle

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.tuples(children, children)  # tuples come back as lists
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)  # fmt: skip

# ("do", value) runs a step returning value; ("sleep", minutes) parks the run
operations = st.lists(
    st.one_of(
        st.tuples(st.just("do"), json_values),
        st.tuples(st.just("sleep"), st.integers(min_value=1, max_value=600)),
    ),
    min_size=1,
    max_size=8,
)

calls: Counter[str] = Counter()
seen_on_each_pass: dict[str, list[Any]] = {}


class Program(Loop):
    """Interprets the operations in its event body."""

    async def run(self, event: Event, step: Step) -> Any:
        results = []
        for index, (kind, arg) in enumerate(event.body["ops"]):
            name = f"op {index}"
            if kind == "sleep":
                await step.sleep(name, f"{arg} minutes")
                continue
            value = _restore_tuples(arg)

            async def produce(name: str = name, value: Any = value) -> Any:
                calls[name] += 1
                return value

            got = await step.do(name, produce)
            seen_on_each_pass.setdefault(name, []).append(got)
            results.append(got)
        return results


def _restore_tuples(value: Any) -> Any:
    """Bodies are JSON, so tuples are sent as {"__tuple__": [...]} and rebuilt here."""
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_restore_tuples(v) for v in value["__tuple__"])
        return {k: _restore_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_tuples(v) for v in value]
    return value


def _encode_tuples(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_encode_tuples(v) for v in value]}
    if isinstance(value, dict):
        return {k: _encode_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode_tuples(v) for v in value]
    return value


async def _execute(ops: list[tuple[str, Any]], folder: str) -> Any:
    clock = FakeClock()
    body = {"ops": [[kind, _encode_tuples(arg)] for kind, arg in ops]}
    url = f"sqlite:///{Path(folder) / 'p.db'}"
    async with App([Program], url, clock=clock, poll_interval=0.02) as app:
        run = await app.trigger("program", body)
        for _ in range(1000):
            await idle(app)  # all that could run has run: the run is done or parked
            current = await app.get_run(run.id)
            if current.done:
                return current
            assert current.status == "waiting", current.status
            await clock.advance("10 hours")
    raise AssertionError("the program never finished")


@settings(max_examples=30, deadline=None)
@given(operations)
def test_each_step_runs_once_and_replays_its_json_round_trip(ops: list[tuple[str, Any]]) -> None:
    calls.clear()
    seen_on_each_pass.clear()
    with tempfile.TemporaryDirectory() as folder:
        run = asyncio.run(_execute(ops, folder))
    steps = [f"op {i}" for i, (kind, _) in enumerate(ops) if kind == "do"]
    expected = [json.loads(json.dumps(arg)) for kind, arg in ops if kind == "do"]
    assert run.status == "completed"
    assert run.output == expected
    assert calls == Counter(steps)  # exactly once each, despite every replay
    for name, value in zip(steps, expected, strict=True):
        assert all(seen == value for seen in seen_on_each_pass[name])  # first run == replays
    assert [s.name for s in run.steps] == [f"op {i}" for i in range(len(ops))]
