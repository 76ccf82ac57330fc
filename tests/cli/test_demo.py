"""``pulseloop demo``: the examples run end to end and their timelines are shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulseloop.cli import demo
from tests.cli.helpers import invoke


def test_demo_runs_the_examples_and_shows_their_steps(tmp_path: Path) -> None:
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    for text in ("Compute total", "send reminder", "give them a moment", "reply", "51.5"):
        assert text in result.stdout
    assert result.stdout.count("completed") >= 5
    assert (tmp_path / ".pulseloop" / "demo.db").exists()


def test_demo_starts_fresh_each_time(tmp_path: Path) -> None:
    assert invoke("demo").exit_code == 0
    assert invoke("demo").exit_code == 0
    listed = invoke("runs", "list", "--db", str(tmp_path / ".pulseloop" / "demo.db"), "--json")
    assert listed.stdout.count('"id"') == len(demo.SCENARIOS)


def test_demo_on_a_chosen_database(tmp_path: Path) -> None:
    db = tmp_path / "mine.db"
    result = invoke("demo", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert db.exists()


def test_demo_without_examples_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "SCENARIOS", (*demo.SCENARIOS, _missing_scenario()))
    result = invoke("demo")
    assert result.exit_code == 1
    assert "cannot find the examples folder" in result.stderr
    assert not (tmp_path / ".pulseloop").exists()


def _missing_scenario() -> demo.Scenario:
    return demo.Scenario(
        title="Missing",
        description="An example file that is not there.",
        example="no_such_example.py",
        loop="missing",
        body=lambda module: {},
    )
