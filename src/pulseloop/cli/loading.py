"""Finding the loops an APP argument names: ``path/to/file.py`` or ``module:attr``.

* A file is imported under a module name derived from its resolved path (so loading the same
  file twice gives the same name, and ``inspect.getsource`` — which versions a loop — finds
  it). Its folder goes first on ``sys.path``, as ``python file.py`` would do, so sibling
  imports work. The loops are the :class:`~pulseloop.Loop` subclasses *defined* in the file
  (imported ones are not served twice), or, when the file has a module-level ``App`` named
  ``app``, that App's loops.
* ``module:attr`` imports ``module`` (the current folder is on ``sys.path``, as with
  ``python -m``) and reads ``attr``: a Loop subclass, a list or tuple of
  them, or an App. ``module`` alone is read like a file.

Every failure raises :class:`~pulseloop.cli.common.CliError` with one line naming the APP
and what went wrong.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pulseloop.app import App
from pulseloop.cli.common import CliError
from pulseloop.engine.loop import Loop, loop_name


@dataclass(frozen=True, slots=True)
class LoadedApp:
    """The loops an APP argument names, by loop name."""

    source: str
    loops: dict[str, type[Loop]]

    def loop(self, name: str) -> type[Loop]:
        """The loop called ``name``; a CliError listing the known loops otherwise."""
        if name not in self.loops:
            known = ", ".join(sorted(self.loops))
            raise CliError(f"no loop named {name!r} in {self.source}; known loops: {known}")
        return self.loops[name]


def load_app(target: str) -> LoadedApp:
    """Import the APP ``target`` and collect its loops (CliError on any failure)."""
    if target.endswith(".py") or Path(target).is_file():
        module = _import_file(Path(target))
        found = _module_loops(module)
    else:
        module_name, _, attr = target.partition(":")
        module = _import_module(module_name, target)
        if attr:
            if not hasattr(module, attr):
                raise CliError(
                    f"cannot load APP {target!r}: module {module_name!r} has no {attr!r}"
                )
            found = _loops_of(getattr(module, attr), target)
        else:
            found = _module_loops(module)
    if not found:
        raise CliError(
            f"APP {target!r} defines no loop; define a pulseloop.Loop subclass in it "
            "or point at one with module:attr"
        )
    loops: dict[str, type[Loop]] = {}
    for cls in found:
        name = loop_name(cls)
        if name in loops and loops[name] is not cls:
            raise CliError(f"APP {target!r} has two loops named {name!r}; set `name = ...` on one")
        loops[name] = cls
    return LoadedApp(target, loops)


def _summary(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise CliError(f"cannot load APP {str(path)!r}: no such file")
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in resolved.stem)
    name = f"_pulseloop_app_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot load APP {str(path)!r}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise CliError(f"cannot import APP {str(path)!r}: {_summary(exc)}") from exc
    return module


def _import_module(module_name: str, target: str) -> ModuleType:
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise CliError(
            f"cannot load APP {target!r}: not a file and not a module name; "
            "pass path/to/file.py or module:attr"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: modules in the current folder
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CliError(
                f"cannot load APP {target!r}: no file or module named {module_name!r}"
            ) from exc
        raise CliError(f"cannot import APP {target!r}: {_summary(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise CliError(f"cannot import APP {target!r}: {_summary(exc)}") from exc


def _is_loop(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Loop) and value is not Loop


def _module_loops(module: ModuleType) -> list[type[Loop]]:
    app = getattr(module, "app", None)
    if isinstance(app, App):
        return list(app.loops.values())
    return [
        value
        for value in vars(module).values()
        if _is_loop(value) and value.__module__ == module.__name__
    ]


def _loops_of(value: Any, target: str) -> list[type[Loop]]:
    if isinstance(value, App):
        return list(value.loops.values())
    if _is_loop(value):
        return [value]
    if isinstance(value, list | tuple):
        bad = [item for item in value if not _is_loop(item)]
        if bad:
            raise CliError(f"APP {target!r} lists {bad[0]!r}, which is not a Loop subclass")
        return list(value)
    raise CliError(f"APP {target!r} is {value!r}, not a Loop subclass, a list of them, or an App")
