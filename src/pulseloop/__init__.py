"""pulseloop: durable workflows for health follow-ups, with a real facial vitals scan.

The public API; everything not re-exported here may change.
"""

from pulseloop.app import App
from pulseloop.durations import Duration, parse_duration
from pulseloop.engine.context import StepCtx
from pulseloop.engine.loop import Event, Loop
from pulseloop.engine.retries import Retries
from pulseloop.engine.step import Step
from pulseloop.errors import NonRetryableError, PulseloopError
from pulseloop.runs import Attempt, Deploy, Run, StepInfo

__version__ = "0.1.0"

__all__ = [
    "App",
    "Attempt",
    "Deploy",
    "Duration",
    "Event",
    "Loop",
    "NonRetryableError",
    "PulseloopError",
    "Retries",
    "Run",
    "Step",
    "StepCtx",
    "StepInfo",
    "__version__",
    "parse_duration",
]
