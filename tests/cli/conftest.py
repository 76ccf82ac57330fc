"""Fixtures for CLI tests: a loop file and a database path in the test's folder."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

LOOPS = '''
"""Loops the CLI tests serve."""

from pathlib import Path
from typing import Any

from pulseloop import Event, Loop, NonRetryableError, Step


class Greet(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        name = event.body["name"]
        hello = await step.do("say hello", lambda: f"hello {name}")
        return {"greeting": hello}


class AwaitReply(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        await step.do("ask", lambda: "asked")
        reply = await step.wait_for_event("reply", type="reply", timeout="1 hour")
        return {"reply": reply}


class NeedsFile(Loop):
    """Fails for good until the file named in the body exists."""

    async def run(self, event: Event, step: Step) -> Any:
        def check() -> str:
            path = Path(event.body["path"])
            if not path.exists():
                raise NonRetryableError(f"{path.name} is missing")
            return path.read_text()

        return {"content": await step.do("read file", check)}
'''


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run each test in its own folder, with no database chosen by the environment."""
    monkeypatch.delenv("PULSELOOP_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _forget_imports(tmp_path: Path) -> Iterator[None]:
    """Undo what loading APPs did to ``sys.path`` and ``sys.modules`` (each test has its own
    ``loops.py``; a cached one from another test's folder would be wrong)."""
    path = list(sys.path)
    before = set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if origin.startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def loop_file(tmp_path: Path) -> Path:
    """A file defining the loops greet, await-reply and needs-file."""
    path = tmp_path / "loops.py"
    path.write_text(textwrap.dedent(LOOPS))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where this test's database goes (not created until a command writes)."""
    return tmp_path / "data" / "runs.db"
