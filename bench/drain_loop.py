"""The loop ``bench/drain.py`` queues 10,000 runs of: one trivial step."""

from __future__ import annotations

from pulseloop import Event, Loop, Step


async def _noop() -> None:
    return None


class One(Loop):
    """One step, nothing else: what is measured is claiming, running and recording."""

    name = "one"

    async def run(self, event: Event, step: Step) -> None:
        await step.do("only", _noop)
