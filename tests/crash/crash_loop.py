"""The loop the crash test kills workers under: 200 steps, each with a side effect
written outside the store (a line in a log file) before the step returns."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pulseloop import Event, Loop, Step

STEPS = 200


class CrashLoop(Loop):
    """Each step appends its index to ``event.body["log"]``, then takes ~10 ms."""

    async def run(self, event: Event, step: Step) -> Any:
        log = Path(event.body["log"])
        total = 0
        for i in range(STEPS):

            def effect(i: int = i) -> int:
                with log.open("a") as f:
                    f.write(f"{i}\n")
                time.sleep(0.01)
                return i

            total += await step.do(f"step {i:03d}", effect)
        return total
