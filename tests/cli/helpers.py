"""Running the CLI from tests: in this process (CliRunner) or as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from pulseloop.cli.main import app


def invoke(*args: str) -> Result:
    """Run the CLI in this process (wide output so Rich does not wrap names)."""
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def invoke_json(*args: str) -> Any:
    """Run a command with --json; it must succeed and print only JSON."""
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pulseloop.cli.main ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "pulseloop.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=cli_env(),
        check=False,
    )


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: ours, minus a database chosen elsewhere."""
    env = dict(os.environ)
    env.pop("PULSELOOP_DATABASE_URL", None)
    env["COLUMNS"] = "200"
    return env
