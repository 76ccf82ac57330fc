"""Loading APP arguments: files, module:attr, App instances, and the ways they fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pulseloop.cli.common import CliError
from pulseloop.cli.loading import load_app


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def test_a_file_serves_the_loops_defined_in_it(loop_file: Path) -> None:
    loaded = load_app(str(loop_file))
    assert set(loaded.loops) == {"greet", "await-reply", "needs-file"}


def test_imported_loops_are_not_served_twice(tmp_path: Path, loop_file: Path) -> None:
    path = write(
        tmp_path / "more.py",
        """
        from loops import Greet
        from pulseloop import Loop

        class Extra(Loop):
            name = "extra"

            async def run(self, event, step):
                return None
        """,
    )
    assert set(load_app(str(path)).loops) == {"extra"}


def test_a_module_level_app_names_the_loops(tmp_path: Path, loop_file: Path) -> None:
    path = write(
        tmp_path / "served.py",
        """
        from loops import Greet
        from pulseloop import App

        app = App([Greet])
        """,
    )
    assert set(load_app(str(path)).loops) == {"greet"}


@pytest.mark.parametrize(
    ("attr", "expected"),
    [("Greet", {"greet"}), ("LOOPS", {"greet", "await-reply"}), ("app", {"needs-file"})],
)
def test_module_attr_may_be_a_loop_a_list_or_an_app(
    tmp_path: Path, loop_file: Path, attr: str, expected: set[str]
) -> None:
    write(
        tmp_path / "bundle.py",
        """
        from loops import AwaitReply, Greet, NeedsFile
        from pulseloop import App

        LOOPS = [Greet, AwaitReply]
        app = App([NeedsFile])
        """,
    )
    assert set(load_app(f"bundle:{attr}").loops) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import no_such_dependency_xyz\n", "ModuleNotFoundError: No module named"),
        ("x = (\n", "SyntaxError"),
        ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
        ("VALUE = 1\n", "defines no loop"),
    ],
)
def test_a_file_that_does_not_load_is_one_clear_error(
    tmp_path: Path, source: str, message: str
) -> None:
    path = write(tmp_path / "broken.py", source)
    with pytest.raises(CliError) as caught:
        load_app(str(path))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing.py", "no such file"),
        ("no_such_module_xyz:Thing", "no file or module named 'no_such_module_xyz'"),
        ("pulseloop:NoSuchThing", "has no 'NoSuchThing'"),
        ("pulseloop:Event", "not a Loop subclass"),
        ("not a module!", "not a file and not a module name"),
    ],
)
def test_targets_that_name_nothing_are_one_clear_error(target: str, message: str) -> None:
    with pytest.raises(CliError) as caught:
        load_app(target)
    assert message in str(caught.value)


def test_unknown_loop_lists_the_known_ones(loop_file: Path) -> None:
    with pytest.raises(CliError) as caught:
        load_app(str(loop_file)).loop("nope")
    assert "known loops: await-reply, greet, needs-file" in str(caught.value)
