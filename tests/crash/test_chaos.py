"""Chaos in the suite: 100 runs using every durable feature, a real worker SIGKILLed 50
times at random instants, then a two-worker takeover phase with 10 more kills.

See ``tests/crash/chaos.py`` for what is checked; ``bench/chaos.py`` runs 1,000 kills.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.crash.chaos import run_chaos


@pytest.mark.crash
@pytest.mark.slow
def test_chaos_loses_nothing_and_duplicates_no_record(tmp_path: Path) -> None:
    report = asyncio.run(
        run_chaos(tmp_path / "chaos.db", runs=100, kills=50, takeover_kills=10, seed=2026_12_01)
    )
    assert report.kills >= 50
    assert report.takeover_kills >= 10
    assert report.problems == []
