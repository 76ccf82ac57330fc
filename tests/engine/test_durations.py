"""Durations: the accepted spellings, and clear errors for everything else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulseloop import parse_duration
from pulseloop.errors import InvalidDuration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30 minutes", 1800),
        ("1 hour", 3600),
        ("90 seconds", 90),
        ("2 days", 172800),
        ("500 milliseconds", 0.5),
        ("1.5 hours", 5400),
        ("10s", 10),
        ("  3 Weeks ", 3 * 604800),
        (45, 45),
        (0.25, 0.25),
        (timedelta(minutes=2), 120),
    ],
)
def test_accepted_spellings(text: str | float | timedelta, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["30 minuets", "", "minutes", "-5 seconds", "5", "1e3 s", -1, float("nan"), True, None]
)
def test_bad_durations_name_the_value(bad: object) -> None:
    with pytest.raises(InvalidDuration) as excinfo:
        parse_duration(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(excinfo.value)
    assert "e.g." in str(excinfo.value)


UNITS = {"milliseconds": 0.001, "seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(UNITS)))
def test_number_and_unit_round_trip(amount: int, unit: str) -> None:
    assert parse_duration(f"{amount} {unit}").total_seconds() == pytest.approx(amount * UNITS[unit])


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_invalid_duration(text: str) -> None:
    try:
        result = parse_duration(text)
    except InvalidDuration as exc:
        assert repr(text) in str(exc)
    else:
        assert result >= timedelta(0)
