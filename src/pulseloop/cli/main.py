"""The ``pulseloop`` command: one Typer app mounting each concern's commands.

Every command is a thin layer over :class:`pulseloop.App`; see ``docs/cli.md``.
``python -m pulseloop.cli.main`` works like the console script (crash tests use it).
"""

from __future__ import annotations

import typer

from pulseloop.cli import demo, orgs, runs, serve, trigger

app = typer.Typer(
    name="pulseloop",
    help="pulseloop: durable workflows for health follow-ups.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.command("dev")(serve.dev)
app.command("worker")(serve.worker)
app.command("server")(serve.server)
app.command("trigger")(trigger.trigger)
app.add_typer(runs.app, name="runs")
app.command("deploys")(runs.deploys)
app.command("demo")(demo.demo)
app.add_typer(orgs.orgs_app, name="orgs")
app.add_typer(orgs.keys_app, name="keys")


def _scans_app() -> typer.Typer:
    """``pulseloop scans``: the vitals CLI, or an empty group while it is not installed."""
    try:
        from pulseloop.cli import scans
    except ModuleNotFoundError as exc:
        if exc.name != "pulseloop.cli.scans":
            raise
        return typer.Typer(help="Facial vitals scans (not available in this build).")
    return scans.app


app.add_typer(_scans_app(), name="scans")


def main() -> None:
    """Entry point of the ``pulseloop`` console script."""
    app()


if __name__ == "__main__":
    main()
