"""Control flow that unwinds a run's ``run()`` without failing it.

These derive from ``BaseException`` so a user's ``except Exception`` cannot swallow them:
a run that parks must really leave its frame, or it would hold a task while waiting.
"""

from __future__ import annotations


class Suspend(BaseException):
    """The run reached a wait that is not ready: park it and free the worker."""


class Interrupted(BaseException):
    """An operator paused the run: stop after the step just recorded."""
