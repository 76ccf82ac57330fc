"""``ctx``: what a step callback receives, alive only while that callback runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pulseloop.errors import ContextUnavailable


@dataclass(frozen=True, slots=True)
class StepScope:
    """Who a connector acts for: the run, the step and its idempotency key."""

    org: str
    run_id: str
    step_name: str
    attempt: int
    services: Any
    """What the process wired in for connectors (its ``Runtime``: each connector states
    what it needs as a protocol, e.g. ``ScanServices``); opaque to the engine."""

    @property
    def idempotency_key(self) -> str:
        """``run id + step name``: the same on every attempt of the step."""
        return f"{self.run_id}:{self.step_name}"


ConnectorFactory = Callable[["StepCtx"], Any]
"""Builds a connector (e.g. ``FACIAL_SCAN``) bound to one step's context."""


class StepCtx:
    """The step context. ``ctx.FACIAL_SCAN`` and friends live here.

    Any use after the step's callback returned raises
    :class:`~pulseloop.errors.ContextUnavailable`: a connector call made outside a step
    would have no checkpoint and no idempotency key, so it is refused rather than run
    unprotected.
    """

    __slots__ = ("_alive", "_cache", "_connectors", "_scope")

    def __init__(self, scope: StepScope, connectors: Mapping[str, ConnectorFactory]) -> None:
        self._scope = scope
        self._connectors = connectors
        self._cache: dict[str, Any] = {}
        self._alive = True

    def close(self) -> None:
        """End the context (called by the engine when the step's callback finishes)."""
        self._alive = False

    def ensure_alive(self) -> StepScope:
        """The scope, or ContextUnavailable if the step is over (for connectors)."""
        if not self._alive:
            raise ContextUnavailable(
                f"this ctx belonged to step {self._scope.step_name!r}, which has finished; "
                "ctx exists only inside its step.do callback: do connector calls in a step"
            )
        return self._scope

    @property
    def run_id(self) -> str:
        """The run this step belongs to."""
        return self.ensure_alive().run_id

    @property
    def step_name(self) -> str:
        """This step's name."""
        return self.ensure_alive().step_name

    @property
    def attempt(self) -> int:
        """1 for the first attempt, 2 for the first retry, ..."""
        return self.ensure_alive().attempt

    @property
    def idempotency_key(self) -> str:
        """Pass it to external APIs so a retried step's side effect happens once."""
        return self.ensure_alive().idempotency_key

    def __getattr__(self, name: str) -> Any:
        self.ensure_alive()
        if name in self._cache:
            return self._cache[name]
        factory = self._connectors.get(name)
        if factory is None:
            raise AttributeError(
                f"ctx has no connector {name!r}; available: {sorted(self._connectors) or 'none'}"
            )
        connector = self._cache[name] = factory(self)
        return connector
