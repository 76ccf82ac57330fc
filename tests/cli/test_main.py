"""The ``pulseloop`` command as a whole: help everywhere, the scans group, ``python -m``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from pulseloop.cli.main import app
from tests.cli.helpers import invoke, run_cli

ROOT = typer.main.get_command(app)


def subcommands(command: Any) -> dict[str, Any]:
    """A group's commands by name (none for a plain command)."""
    found: dict[str, Any] = getattr(command, "commands", {})
    return found


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``command`` (groups included, the root excluded)."""
    found = [prefix] if prefix else []
    for name, sub in subcommands(command).items():
        found.extend(command_paths(sub, (*prefix, name)))
    return found


ALL_COMMANDS = command_paths(ROOT)


def test_the_commands_are_all_there() -> None:
    names = {" ".join(path) for path in ALL_COMMANDS}
    assert names >= {
        "dev", "worker", "trigger", "deploys", "demo", "scans", "runs", "runs list",
        "runs show", "runs cancel", "runs pause", "runs resume", "runs retry", "runs restart",
    }  # fmt: skip


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


def test_every_command_and_option_has_help_text() -> None:
    for path in ALL_COMMANDS:
        if path[0] == "scans" and len(path) > 1:
            continue  # the vitals CLI is tested with it (tests/cli/test_scans_analyze.py)
        command = ROOT
        for name in path:
            command = subcommands(command)[name]
        assert command.help, path
        for param in command.params:
            assert getattr(param, "help", None), (path, param.name)


def test_scans_is_mounted() -> None:
    result = invoke("scans", "--help")
    assert result.exit_code == 0, result.output


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "trigger" in result.stdout
