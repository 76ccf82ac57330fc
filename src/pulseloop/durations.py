"""Durations as users write them: ``"30 minutes"``, ``90``, ``timedelta(hours=1)``.

Accepted: a non-negative number of seconds (int or float), a :class:`~datetime.timedelta`,
or text ``"<number> <unit>"`` with units milliseconds/ms, seconds/s/sec, minutes/m/min,
hours/h/hr, days/d, weeks/w (singular or plural, any case). Anything else raises
:class:`~pulseloop.errors.InvalidDuration` naming the bad value.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import timedelta

from pulseloop.errors import InvalidDuration

Duration = str | int | float | timedelta
"""What every ``timeout``/``delay``/``duration`` parameter accepts."""

_UNIT_SECONDS: dict[str, float] = {}
for _names, _seconds in (
    (("ms", "msec", "millisecond", "milliseconds"), 0.001),
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "week", "weeks"), 604800.0),
):
    for _name in _names:
        _UNIT_SECONDS[_name] = _seconds

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]+)\s*$")

_HELP = (
    'write it as "<number> <unit>" (e.g. "30 minutes", "1 hour", "500 milliseconds"), '
    "a number of seconds, or a datetime.timedelta"
)


def parse_duration(value: Duration) -> timedelta:
    """Read a duration; raise InvalidDuration (naming the value) if it is not one."""
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise InvalidDuration(f"duration {value!r} is negative; {_HELP}")
        return value
    if isinstance(value, bool):
        raise InvalidDuration(f"duration {value!r} is a bool, not a duration; {_HELP}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidDuration(f"duration {value!r} must be a finite number >= 0; {_HELP}")
        return timedelta(seconds=value)
    raise InvalidDuration(
        f"duration {value!r} has type {type(value).__name__}, not a duration; {_HELP}"
    )


@functools.lru_cache(maxsize=256)
def _parse_text(value: str) -> timedelta:
    """Text durations repeat ("10 minutes" on every step): parse each spelling once."""
    match = _PATTERN.match(value)
    if match is not None:
        unit = match.group(2).lower()
        if unit in _UNIT_SECONDS:
            seconds = float(match.group(1)) * _UNIT_SECONDS[unit]
            if math.isfinite(seconds) and seconds <= timedelta.max.total_seconds():
                return timedelta(seconds=seconds)
    raise InvalidDuration(f"cannot read duration {value!r}; {_HELP}")


def duration_seconds(value: Duration) -> float:
    """:func:`parse_duration` in seconds."""
    return parse_duration(value).total_seconds()


def format_duration(value: timedelta | None) -> str:
    """How people read a duration (CLI and dashboard).

    ``12 ms``, ``1.20 s``, ``3m 05s``, ``2h 03m``; ``—`` when unknown.
    """
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
