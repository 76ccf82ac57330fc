"""A follow-up loop: retries around a flaky gateway, a durable sleep, a reply wait.

Shows what DESIGN.md promises beyond the spec's snippets: ``Retries``, ``step.sleep``
(the run holds no worker while it sleeps) and ``step.wait_for_event`` with a timeout
that is caught and handled.

Run it: ``python examples/follow_up.py``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from pulseloop import App, Event, Loop, Retries, Run, Step, StepCtx
from pulseloop.errors import WaitTimeout

_failures_left = {"sms": 1}


def send_sms(ctx: StepCtx, phone: str, text: str) -> dict[str, Any]:
    """Stand-in for an SMS gateway that fails once, then accepts (idempotency-keyed)."""
    if _failures_left["sms"] > 0:
        _failures_left["sms"] -= 1
        raise ConnectionError("SMS gateway timed out")
    return {"to": phone, "text": text, "idempotency_key": ctx.idempotency_key}


class FollowUp(Loop):
    """Remind a patient, give them a moment, wait for their reply."""

    async def run(self, event: Event, step: Step) -> Any:
        phone = event.body["phone"]
        sent = await step.do(
            "send reminder",
            lambda ctx: send_sms(ctx, phone, "How are you feeling today?"),
            retries=Retries(limit=3, delay="100 milliseconds", backoff="exponential"),
        )
        await step.sleep("give them a moment", "200 milliseconds")
        try:
            reply = await step.wait_for_event("reply", type="patient-reply", timeout="2 seconds")
        except WaitTimeout:
            reply = None
        return {"reminder": sent["text"], "reply": reply}


async def main(database_url: str | None = None) -> Run:
    """Trigger a follow-up, answer it as the patient would, and wait for the run."""
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'example.db'}"
        async with App([FollowUp], url, poll_interval="50 milliseconds") as app:
            run = await app.trigger("follow-up", {"phone": "+15550100"})
            await app.send_event(run.id, "patient-reply", {"text": "Much better, thanks"})
            return await app.wait_for_run(run.id, timeout="1 minute")


if __name__ == "__main__":
    print(asyncio.run(main()).output)
