"""The ``pulseloop`` command: one Typer app mounting each concern's commands.

Every command is a thin layer over :class:`pulseloop.App`; see ``docs/cli.md``.
``python -m pulseloop.cli.main`` works like the console script (crash tests use it).

Commands are listed by name and one-line help and imported only when run: ``pulseloop
--help`` loads Typer and nothing of the engine, and ``pulseloop worker`` loads the worker's
module, not the server's or the demo's.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

# name -> ("module:attribute", one-line help). The attribute is a command function or a
# Typer group; its own docstring is the full help shown by ``pulseloop NAME --help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("pulseloop.cli.serve:dev", "Run a worker and the HTTP server in one process."),
    "worker": ("pulseloop.cli.serve:worker", "Run a worker for an app's loops."),
    "server": ("pulseloop.cli.serve:server", "Run the HTTP API, dashboard and scan pages."),
    "trigger": ("pulseloop.cli.trigger:trigger", "Start a run of a loop."),
    "runs": ("pulseloop.cli.runs:app", "List, show and operate on runs."),
    "deploys": ("pulseloop.cli.runs:deploys", "List the deploys each loop has run under."),
    "schedules": (
        "pulseloop.cli.schedules:app",
        "List, pause, resume and delete schedules (recurring triggers).",
    ),
    "demo": ("pulseloop.cli.demo:demo", "Run the spec's examples end to end on SQLite."),
    "orgs": ("pulseloop.cli.orgs:orgs_app", "Manage organizations."),
    "keys": ("pulseloop.cli.orgs:keys_app", "Issue, list and revoke API keys."),
    "purge": (
        "pulseloop.cli.purge:purge",
        "Purge patient payloads past retention (runs and scans keep their skeleton).",
    ),
    "scans": ("pulseloop.cli.scans:app", "Facial vitals scans: analyse, list, show."),
    "audit": ("pulseloop.cli.audit:app", "Verify the tamper-evident audit trail."),
    "webhooks": ("pulseloop.cli.webhooks:app", "Add, list and remove webhook endpoints."),
}


def _load(name: str, target: str) -> Any:
    """The click command behind ``target``, imported now."""
    module_name, _, attribute = target.partition(":")
    try:
        found: Any = getattr(importlib.import_module(module_name), attribute)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        # a build without this module (the vitals CLI is optional): an empty group says so
        found = typer.Typer(help=f"'{name}' is not available in this build.")
    # mounted on a throwaway root exactly as `add_typer`/`command` would mount it on ours
    mount = typer.Typer(add_completion=False, callback=lambda: None)
    if isinstance(found, typer.Typer):
        mount.add_typer(found, name=name)
    else:
        mount.command(name)(found)
    group = typer.main.get_command(mount)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


class LazyCommand(TyperCommand):
    """A command known by name and short help until it is run, then its real self."""

    def __init__(self, name: str, target: str, short_help: str) -> None:
        super().__init__(name, help=short_help, short_help=short_help)
        self.target = target
        self._loaded: Any = None

    def load(self) -> Any:
        """Import the real command (once)."""
        if self._loaded is None:
            self._loaded = _load(self.name or "", self.target)
        return self._loaded

    @property
    def commands(self) -> dict[str, Any]:
        """A group's subcommands (imports it); empty for a plain command."""
        loaded: dict[str, Any] = getattr(self.load(), "commands", {})
        return loaded

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,
        **extra: Any,
    ) -> Any:
        """Parse with the real command: the context it returns runs the real thing."""
        return self.load().make_context(info_name, args, parent=parent, **extra)


class LazyGroup(TyperGroup):
    """The root group: every entry of :data:`COMMANDS`, each imported when run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (target, short_help) in COMMANDS.items():
            self.commands.setdefault(name, LazyCommand(name, target, short_help))


app = typer.Typer(
    name="pulseloop",
    help="pulseloop: durable workflows for health follow-ups.",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root() -> None:
    """pulseloop: durable workflows for health follow-ups."""


def main() -> None:
    """Entry point of the ``pulseloop`` console script."""
    app()


if __name__ == "__main__":
    main()
