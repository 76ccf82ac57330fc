"""The spec's facial-scan examples, as one loop.

* Access the context / provision a scan, then wait for it::

      await step.do("Generate a health scan", async ({ ctx }) => {
        await ctx.FACIAL_SCAN.create({ expiresIn: 3600, metadata: { patientId, phoneNumber } });
      });
      const scan = await step.waitForScan({ timeout: "30 minutes" });

* Carry per-run context through the scan: ``metadata`` comes back unchanged.
* Peek at scan state without waiting: see :class:`CheckScan`.

Run it end to end (a simulated patient does the scan): ``pulseloop demo``. Serve it for a
real person with a webcam or phone: ``pulseloop dev examples/health_check.py``, then
``pulseloop trigger health-check --app examples/health_check.py --body '{...}'`` and open
the printed scan link.
"""

from __future__ import annotations

from typing import Any

from pulseloop import Event, Loop, Step, StepCtx

EXAMPLE_BODY = {"patientId": "p-1024", "phoneNumber": "+15550100", "source": "post-op day 3"}


class HealthCheck(Loop):
    """Provision a facial scan, park until the patient has done it, report the vitals."""

    def summary(self, event: Event, output: Any) -> str | None:
        """The run list's line: whose scan, and what came of it."""
        patient = f"patient {event.body.get('patientId')}"
        if output is None:
            return f"{patient}: waiting for the scan"
        if "error" in output:
            return f"{patient}: scan not measured ({output['error']})"
        return f"{patient}: heart rate {output['heartRate']:.0f} bpm"

    async def run(self, event: Event, step: Step) -> Any:
        patient_id = event.body["patientId"]
        phone_number = event.body.get("phoneNumber")

        async def provision(ctx: StepCtx) -> Any:
            return await ctx.FACIAL_SCAN.create(
                expires_in=3600,
                metadata={
                    "patientId": patient_id,
                    "phoneNumber": phone_number,
                    "source": event.body.get("source"),
                },
            )

        await step.do("Generate a health scan", provision)
        scan = await step.wait_for_scan(timeout="30 minutes")
        if scan["status"] != "completed":
            return {"patientId": scan["metadata"]["patientId"], "error": scan["failure_reason"]}
        vitals = scan["vitals"]
        return {
            "patientId": scan["metadata"]["patientId"],  # same patientId you put in
            "heartRate": vitals["heart_rate_bpm"],
            "breathingRate": vitals["respiratory_rate_bpm"],
            "signalQuality": scan["quality"]["confidence"],
        }


class CheckScan(Loop):
    """The spec's "peek at scan state without waiting": short-circuit on a failed scan."""

    async def run(self, event: Event, step: Step) -> Any:
        await step.do(
            "Generate a health scan",
            lambda ctx: ctx.FACIAL_SCAN.create(expires_in=3600, metadata=event.body),
        )
        await step.sleep("give the patient a moment", "1 minute")
        state = await step.do("Check scan", lambda ctx: ctx.FACIAL_SCAN.get_results())
        if state["status"] == "failed":
            return {"error": "scan failed before processing"}
        return {"status": state["status"]}
