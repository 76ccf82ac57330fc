"""The loop the rate-limit test runs in two worker processes: one rate-limited step that
appends the time it ran to a file outside the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pulseloop import Event, Loop, RateLimit, Step

RATE = RateLimit("5/second", key="sms")


class Texting(Loop):
    """Sends one "SMS": a line with the wall-clock time in ``event.body["log"]``."""

    async def run(self, event: Event, step: Step) -> Any:
        log = Path(event.body["log"])

        async def send() -> bool:
            with log.open("a") as f:
                f.write(f"{time.time()!r}\n")
            return True

        return await step.do("send sms", send, rate=RATE)
