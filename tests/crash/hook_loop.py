"""The loop the webhook crash test serves: one step, so a run completes (and queues its
``run.completed`` delivery) at once."""

from __future__ import annotations

from typing import Any

from pulseloop import Event, Loop, Step


class Notify(Loop):
    """Echoes its body in one step."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("echo", lambda: event.body)
