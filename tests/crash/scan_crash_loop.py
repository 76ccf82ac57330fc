"""A loop whose provisioning step can be held open (and killed) after ``create``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pulseloop import Event, Loop, Step, StepCtx


class ProvisionOnce(Loop):
    """Creates a scan, logs what create returned, then waits while the block file exists."""

    async def run(self, event: Event, step: Step) -> Any:
        out, block = Path(event.body["out"]), Path(event.body["block"])

        async def provision(ctx: StepCtx) -> Any:
            created = await ctx.FACIAL_SCAN.create(expires_in=600, metadata={"p": 1})
            with out.open("a") as f:
                f.write(json.dumps(created) + "\n")
            while block.exists():  # the test SIGKILLs the worker here
                await asyncio.sleep(0.01)
            return created

        return await step.do("provision", provision)
