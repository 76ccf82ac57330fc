"""Tracing is optional: without the ``otel`` extra the engine runs and imports none of it.

Each check runs in a fresh interpreter (this test process has imported OpenTelemetry
already); the blocker makes ``opentelemetry`` look uninstalled, as in tests/cli.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli.helpers import cli_env

BLOCKER = '''
"""Make the otel extra look uninstalled: importing any of it fails as if absent."""
import sys


class _Uninstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Uninstalled())
'''

RUN_ONE = """
import asyncio, json, sys
from pulseloop import App, Loop, PulseloopError

class Greet(Loop):
    name = "greet"

    async def run(self, event, step):
        return await step.do("hello", lambda: "hello " + event.body["name"])

async def main():
    async with App([Greet], "sqlite:///{db}") as app:
        run = await app.trigger("greet", {{"name": "bo"}})
        done = await app.wait_for_run(run.id, timeout="60 seconds")
    refused = None
    if {try_enable}:
        from pulseloop.engine.tracing import enable_tracing
        try:
            enable_tracing()
        except PulseloopError as exc:
            refused = str(exc)
    loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    print(json.dumps({{"output": done.output, "otel": loaded, "refused": refused}}))

asyncio.run(main())
"""


def _run(tmp_path: Path, *, blocked: bool, try_enable: bool) -> dict[str, object]:
    env = cli_env()
    if blocked:
        site = tmp_path / "no-otel"
        site.mkdir()
        (site / "sitecustomize.py").write_text(BLOCKER)
        env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(site)
    script = textwrap.dedent(RUN_ONE).format(db=tmp_path / "runs.db", try_enable=try_enable)
    probe = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    found: dict[str, object] = json.loads(probe.stdout.splitlines()[-1])
    return found


def test_the_engine_runs_without_the_otel_extra_and_enable_names_it(tmp_path: Path) -> None:
    found = _run(tmp_path, blocked=True, try_enable=True)
    assert found["output"] == "hello bo"
    assert found["otel"] == []
    assert "pip install 'pulseloop[otel]'" in str(found["refused"])


def test_with_tracing_off_no_opentelemetry_module_is_imported(tmp_path: Path) -> None:
    found = _run(tmp_path, blocked=False, try_enable=False)
    assert found["output"] == "hello bo"
    assert found["otel"] == []


def test_pulseloop_tracing_without_the_extra_fails_at_start_naming_it(tmp_path: Path) -> None:
    env = cli_env()
    site = tmp_path / "no-otel"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(site)
    env["PULSELOOP_TRACING"] = "1"
    script = textwrap.dedent(RUN_ONE).format(db=tmp_path / "runs.db", try_enable=False)
    probe = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip
    assert probe.returncode != 0
    assert "pip install 'pulseloop[otel]'" in probe.stderr


async def test_pulseloop_tracing_turns_tracing_on_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pulseloop import App
    from pulseloop.engine import tracing

    monkeypatch.setenv("PULSELOOP_TRACING", "1")
    assert not tracing.ENABLED
    try:
        async with App([], f"sqlite:///{tmp_path / 'runs.db'}"):
            assert tracing.ENABLED
    finally:
        tracing.disable_tracing()
