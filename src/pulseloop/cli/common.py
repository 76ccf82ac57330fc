"""What every command shares: options, the database URL, exit codes and error reporting.

Exit codes (documented in ``docs/cli.md``):

* ``0`` success;
* ``1`` the request was understood but did not succeed: no such run, an action that does not
  fit the run's status, a database file that does not exist, a run that failed;
* ``2`` bad input, nothing was done: an APP that does not load, a body that is not JSON, an
  unknown loop, a duration that cannot be read, a database path that cannot be written;
* ``3`` ``trigger --wait`` gave up while the run stays parked (it is left as it is).

User errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from pulseloop.config import Settings, database_url_for
from pulseloop.durations import parse_duration
from pulseloop.errors import InvalidRunState, PulseloopError, RunNotFound, StoreError
from pulseloop.store import sqlite_path

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STILL_WAITING = 3
EXIT_INTERRUPTED = 130

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database file or URL (default: $PULSELOOP_DATABASE_URL, "
        "else .pulseloop/pulseloop.db).",
        show_default=False,
        metavar="PATH_OR_URL",
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Read from a pulseloop server's API instead of a database (needs --key).",
        show_default=False,
        metavar="URL",
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="API key for --url (default: $PULSELOOP_API_KEY).",
        envvar="PULSELOOP_API_KEY",
        show_default=False,
        metavar="KEY",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON only (see docs/cli.md).")
]


class CliError(Exception):
    """A user error: printed as one line on stderr, then the process exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr (one line) and exit with ``code``."""
    one_line = " ".join(message.split())
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(code)


def database_url(db: str | None) -> str:
    """``--db`` first, then ``PULSELOOP_DATABASE_URL``, then the default; paths become URLs."""
    url = Settings.load(database_url=database_url_for(db) if db else None).database_url
    return database_url_for(url)


def existing_database_url(db: str | None) -> str:
    """The database URL for a read command; a SQLite file that does not exist is an error.

    Read commands must never create a database as a side effect of looking at one.
    """
    url = database_url(db)
    try:
        path = sqlite_path(url)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    if path is not None and path != ":memory:" and not Path(path).exists():
        raise CliError(
            f"no database at {path}; start one with `pulseloop dev` or `pulseloop trigger`, "
            "or point --db / PULSELOOP_DATABASE_URL at an existing one",
            EXIT_FAILED,
        )
    return url


def duration_option(text: str, option: str) -> timedelta:
    """Read a duration given on the command line (``"30 seconds"``, or plain seconds)."""
    value: str | float = text
    with contextlib.suppress(ValueError):
        value = float(text)
    try:
        return parse_duration(value)
    except PulseloopError as exc:
        raise CliError(f"{option}: {exc}") from exc


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, turning user errors into one-line exits."""
    with user_errors():
        return asyncio.run(coro)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn :class:`CliError` and pulseloop errors raised inside into one-line exits."""
    try:
        yield
    except CliError as exc:
        fail(str(exc), exc.code)
    except (RunNotFound, InvalidRunState) as exc:
        fail(str(exc), EXIT_FAILED)
    except StoreError as exc:
        fail(str(exc), EXIT_USAGE)
    except PulseloopError as exc:
        fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
