"""The CLI imports only what a command needs.

Every command that does not analyse video works without the vitals extra, and the commands
of a worker host (``worker``, ``trigger``, ``runs``) never load the HTTP stack. Each check
runs in a fresh interpreter: the test process itself has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli.helpers import cli_env

VITALS_EXTRA = ("numpy", "scipy", "cv2", "av", "skimage")
HTTP_STACK = ("fastapi", "starlette", "uvicorn", "jinja2")

BLOCKER = f'''
"""Make the vitals extra look uninstalled: importing any of it fails as if absent."""
import sys

BLOCKED = {VITALS_EXTRA!r}


class _Uninstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Uninstalled())
'''


@pytest.fixture
def no_vitals(tmp_path: Path) -> dict[str, str]:
    """An environment whose interpreters cannot import numpy, scipy, OpenCV, PyAV or skimage."""
    site = tmp_path / "no-vitals"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = cli_env()
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(site)
    return env


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pulseloop.cli.main ARGS`` in ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "pulseloop.cli.main", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_the_blocker_blocks(no_vitals: dict[str, str], tmp_path: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import numpy"], env=no_vitals, cwd=tmp_path,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.returncode != 0
    assert "ModuleNotFoundError" in probe.stderr


def test_commands_work_without_the_vitals_extra(
    no_vitals: dict[str, str], tmp_path: Path, loop_file: Path
) -> None:
    db = str(tmp_path / "runs.db")
    for args in (["--help"], ["worker", "--help"], ["trigger", "--help"], ["runs", "--help"]):
        result = cli(no_vitals, tmp_path, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage:" in result.stdout, args
        assert "Traceback" not in result.stderr, args

    triggered = cli(
        no_vitals, tmp_path, "trigger", "greet", "--app", str(loop_file),
        "--body", '{"name": "ada"}', "--id", "no-vitals-1", "--db", db,
    )  # fmt: skip
    assert triggered.returncode == 0, triggered.stderr
    waited = cli(
        no_vitals, tmp_path, "trigger", "greet", "--app", str(loop_file),
        "--body", '{"name": "bo"}', "--id", "no-vitals-2", "--wait", "--json", "--db", db,
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["output"] == {"greeting": "hello bo"}

    listed = cli(no_vitals, tmp_path, "runs", "list", "--json", "--db", db)
    assert listed.returncode == 0, listed.stderr
    assert {r["id"] for r in json.loads(listed.stdout)} == {"no-vitals-1", "no-vitals-2"}
    shown = cli(no_vitals, tmp_path, "runs", "show", "no-vitals-2", "--db", db)
    assert shown.returncode == 0, shown.stderr

    for args in (
        ["orgs", "create", "clinic", "--db", db],
        ["keys", "list", "--org", "clinic", "--db", db],
    ):
        result = cli(no_vitals, tmp_path, *args)
        assert result.returncode == 0, (args, result.stderr)


def test_analysis_without_the_vitals_extra_names_the_extra(
    no_vitals: dict[str, str], tmp_path: Path
) -> None:
    trace = tmp_path / "trace.json"
    trace.write_text("{}")
    result = cli(no_vitals, tmp_path, "scans", "analyze", str(trace))
    assert result.returncode == 2
    assert "pip install 'pulseloop[vitals]'" in result.stderr
    assert "Traceback" not in result.stderr


# what each command's function needs, imported as the command imports it
_PROBE = """
import json, sys
import pulseloop.cli.main
from pulseloop.cli import runs, serve, trigger
{extra}
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("--help", ""),
        # `worker`: the command module, and the worker the App starts
        ("worker", "from pulseloop.app import App\nfrom pulseloop.engine.worker import Worker"),
        ("trigger", "from pulseloop.cli.trigger import _trigger_and_wait"),
        ("runs", "from pulseloop.cli.runs import list_runs"),
    ],
)
def test_worker_host_commands_do_not_import_http_or_vitals(
    command: str, extra: str, tmp_path: Path
) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PROBE).format(extra=extra)],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    loaded = set(json.loads(probe.stdout))
    unwanted = {name.partition(".")[0] for name in loaded} & {*VITALS_EXTRA, *HTTP_STACK}
    assert not unwanted, f"{command} imports {sorted(unwanted)}"
    ours = {n for n in loaded if n.startswith(("pulseloop.server", "pulseloop.vitals"))}
    assert not ours, f"{command} imports {sorted(ours)}"


def test_a_running_worker_does_not_import_http_or_vitals(tmp_path: Path, loop_file: Path) -> None:
    """The worker's real import set: serve a run in-process, then look at ``sys.modules``."""
    script = textwrap.dedent(f"""
        import json, sys
        from pulseloop.cli.main import app
        from pulseloop.cli import serve
        from pulseloop.cli.loading import load_app
        from pulseloop.cli.serve import Reporter, _serve
        import asyncio, os, signal

        class StopWhenReady(Reporter):
            def ready(self, pulse):
                os.kill(os.getpid(), signal.SIGTERM)  # the worker's own stop path

        asyncio.run(_serve(load_app({str(loop_file)!r}), "sqlite:///{tmp_path}/w.db",
                           StopWhenReady()))
        print(json.dumps(sorted(sys.modules)))
    """)
    probe = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=cli_env(), capture_output=True,
        text=True, check=False, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    loaded = set(json.loads(probe.stdout))
    tops = {name.partition(".")[0] for name in loaded}
    assert not tops & {*VITALS_EXTRA, *HTTP_STACK}, sorted(tops & {*VITALS_EXTRA, *HTTP_STACK})
    assert not {n for n in loaded if n.startswith(("pulseloop.server", "pulseloop.vitals"))}


def test_help_loads_no_command_and_no_engine(tmp_path: Path) -> None:
    """``pulseloop --help`` lists every command from its name and one-line help alone."""
    script = textwrap.dedent("""
        import json, sys
        from pulseloop.cli.main import main
        sys.argv = ["pulseloop", "--help"]
        try:
            main()
        except SystemExit:
            pass
        print(json.dumps(sorted(sys.modules)))
    """)
    probe = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=cli_env(), capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    loaded = set(json.loads(probe.stdout.splitlines()[-1]))
    assert "Usage:" in probe.stdout
    heavy = {"asyncio", "pulseloop.app", "pulseloop.store", "pulseloop.engine", "pydantic"}
    assert not loaded & heavy, sorted(loaded & heavy)
    assert not {n for n in loaded if n.startswith("pulseloop.cli.") and n != "pulseloop.cli.main"}
