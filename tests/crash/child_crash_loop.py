"""Loops for the child-loop crash test: the parent starts a child and, beside it (gather),
holds a step open on its first execution, so a kill lands after the child was started
and before the parent recorded anything about it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from pulseloop import Event, Loop, Step


class Doubler(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("double", lambda: event.body["n"] * 2)


class StartsChild(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        marker = Path(event.body["marker"])

        def hold() -> str:
            if marker.exists():  # the execution after the kill: go on
                return "held once"
            marker.write_text("holding")
            time.sleep(3600)  # until the test kills this process
            return "unreachable"

        child, held = await asyncio.gather(
            step.run_loop("child", Doubler, {"n": 21}), step.do("hold", hold)
        )
        return {"child": child, "held": held}
