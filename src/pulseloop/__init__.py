"""pulseloop: durable workflows for health follow-ups, with a real facial vitals scan.

The public API; everything not re-exported here may change.

Names are imported on first use (PEP 562), so ``import pulseloop.cli`` for ``pulseloop
--help`` does not pay for the engine, asyncio and the store it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names and editors see them
    from pulseloop.app import App
    from pulseloop.durations import Duration, parse_duration
    from pulseloop.engine.context import StepCtx
    from pulseloop.engine.cron import Cron
    from pulseloop.engine.loop import Event, Loop
    from pulseloop.engine.retries import Retries
    from pulseloop.engine.step import Step
    from pulseloop.engine.tracing import disable_tracing, enable_tracing
    from pulseloop.errors import ChildLoopFailed, NonRetryableError, PulseloopError
    from pulseloop.runs import Attempt, Deploy, Run, StepInfo
    from pulseloop.schedules import Schedule, Schedules

if TYPE_CHECKING:  # flow control (docs/flow-control.md)
    from pulseloop.engine.flow import Concurrency, RateLimit
    from pulseloop.errors import InvalidFlowControl

__version__ = "0.1.0"

_EXPORTS = {
    "ChildLoopFailed": "pulseloop.errors",
    "App": "pulseloop.app",
    "Attempt": "pulseloop.runs",
    "Cron": "pulseloop.engine.cron",
    "Deploy": "pulseloop.runs",
    "Duration": "pulseloop.durations",
    "Event": "pulseloop.engine.loop",
    "Loop": "pulseloop.engine.loop",
    "NonRetryableError": "pulseloop.errors",
    "PulseloopError": "pulseloop.errors",
    "Retries": "pulseloop.engine.retries",
    "Run": "pulseloop.runs",
    "Schedule": "pulseloop.schedules",
    "Schedules": "pulseloop.schedules",
    "Step": "pulseloop.engine.step",
    "StepCtx": "pulseloop.engine.context",
    "StepInfo": "pulseloop.runs",
    "parse_duration": "pulseloop.durations",
    "enable_tracing": "pulseloop.engine.tracing",
    "disable_tracing": "pulseloop.engine.tracing",
}
_EXPORTS.update(
    {  # flow control (docs/flow-control.md)
        "Concurrency": "pulseloop.engine.flow",
        "InvalidFlowControl": "pulseloop.errors",
        "RateLimit": "pulseloop.engine.flow",
    }
)

__all__ = [
    "App", "Attempt", "ChildLoopFailed", "Cron", "Deploy", "Duration", "Event", "Loop",
    "NonRetryableError", "PulseloopError", "Retries", "Run", "Schedule", "Schedules", "Step",
    "StepCtx", "StepInfo", "__version__",
    "disable_tracing", "enable_tracing",
    "parse_duration",
]  # fmt: skip
__all__ += ["Concurrency", "InvalidFlowControl", "RateLimit"]  # flow control


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pulseloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
