"""``pulseloop scans analyze``: summary, --json, refusals and unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pulseloop.cli.scans import app
from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_trace, write_video

runner = CliRunner()


def test_trace_json_output_is_exactly_the_result(tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    truth = write_trace(
        path,
        PulseSpec(heart_rate_bpm=90, seed=2),
        SceneSpec(duration_s=20, width=320, height=240, seed=2),
    )
    result = runner.invoke(app, ["analyze", str(path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"vitals", "quality", "waveform", "spectrum", "failure_reason"}
    assert abs(payload["vitals"]["heart_rate_bpm"] - truth.heart_rate_bpm) <= 2.0
    assert payload["failure_reason"] is None


def test_video_summary_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "scan.y4m"
    truth = write_video(
        path,
        PulseSpec(heart_rate_bpm=100, seed=4),
        SceneSpec(duration_s=12, width=320, height=240, seed=4),
    )
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 0, result.output
    assert "Scan accepted" in result.stdout
    assert "heart rate" in result.stdout
    shown = float(result.stdout.split("heart rate")[1].split("bpm")[0])
    assert abs(shown - truth.heart_rate_bpm) <= 2.0


def test_refused_scan_exits_1_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "dark.json"
    write_trace(path, PulseSpec(), SceneSpec(duration_s=12, width=320, height=240, brightness=0.1))
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 1
    assert "too_dark" in result.stdout
    assert "Face a window" in result.stdout
    as_json = runner.invoke(app, ["analyze", str(path), "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["failure_reason"] == "too_dark"


def test_unreadable_inputs_exit_2_with_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.webm"
    broken.write_bytes(b"\x1a\x45\xdf\xa3 not really a webm")
    result = runner.invoke(app, ["analyze", str(broken)])
    assert result.exit_code == 2
    assert "cannot read video" in result.stderr
    bad_trace = tmp_path / "bad.json"
    bad_trace.write_text('{"version": 1}')
    result = runner.invoke(app, ["analyze", str(bad_trace), "--json"])
    assert result.exit_code == 2
    assert "trace field" in result.stderr
    assert result.stdout == ""
