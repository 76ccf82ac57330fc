"""Retry policies for ``step.do``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pulseloop.durations import Duration, duration_seconds
from pulseloop.errors import NonRetryableError, PulseloopError

Backoff = Literal["constant", "linear", "exponential"]

DEFAULT_TIMEOUT: Duration = "10 minutes"
"""A step attempt's default timeout."""


@dataclass(frozen=True, slots=True)
class Retries:
    """How often, and how long apart, a failing step is tried again.

    ``limit`` counts retries after the first attempt (5 means up to 6 attempts). The
    delay before retry *n* (1-based) is ``delay`` (constant), ``delay * n`` (linear) or
    ``delay * 2**(n-1)`` (exponential). ``retry_if`` decides per exception; raising
    :class:`~pulseloop.errors.NonRetryableError` always fails at once.
    """

    limit: int = 5
    delay: Duration = "10 seconds"
    backoff: Backoff = "exponential"
    retry_if: Callable[[BaseException], bool] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 0:
            raise PulseloopError(f"retries limit {self.limit!r} must be an int >= 0")
        if self.backoff not in ("constant", "linear", "exponential"):
            raise PulseloopError(
                f"retries backoff {self.backoff!r} must be 'constant', 'linear' or 'exponential'"
            )
        duration_seconds(self.delay)  # fail early on a bad delay

    def delay_s(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        base = duration_seconds(self.delay)
        if self.backoff == "constant":
            return base
        if self.backoff == "linear":
            return base * retry
        return base * 2.0 ** (retry - 1)

    def should_retry(self, error: BaseException, failed_attempts: int) -> bool:
        """Whether another attempt follows ``failed_attempts`` failures ending in ``error``."""
        if isinstance(error, NonRetryableError) or failed_attempts > self.limit:
            return False
        return self.retry_if is None or bool(self.retry_if(error))


DEFAULT_RETRIES = Retries()


def as_retries(value: Retries | Mapping[str, Any] | int | None) -> Retries:
    """Accept a policy, a dict (``{"limit": 3, "delay": "1 second"}``), a limit, or None."""
    if value is None:
        return DEFAULT_RETRIES
    if isinstance(value, Retries):
        return value
    if isinstance(value, bool):
        raise PulseloopError(f"retries={value!r} is not a policy; pass Retries(limit=...)")
    if isinstance(value, int):
        return Retries(limit=value)
    if isinstance(value, Mapping):
        allowed = {"limit", "delay", "backoff", "retry_if", "retryIf"}
        unknown = set(value) - allowed
        if unknown:
            raise PulseloopError(
                f"unknown retries option(s) {sorted(unknown)}; use {sorted(allowed)}"
            )
        options = dict(value)
        if "retryIf" in options:
            options["retry_if"] = options.pop("retryIf")
        return Retries(**options)
    raise PulseloopError(f"retries={value!r} is not a policy; pass Retries(limit=...)")
