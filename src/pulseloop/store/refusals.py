"""The errors both backends raise, worded once, and the operator actions' state rules.

Which statuses an operator action accepts is a rule of the run's life, not of a dialect:
both backends check it here, inside the action's transaction, after reading the run.
"""

from __future__ import annotations

from pulseloop.errors import InvalidRunState, KeyNotFound, OrgExists, OrgNotFound, RunNotFound
from pulseloop.store.records import RunRecord

UNFINISHED = ("queued", "running", "waiting", "paused")
"""What cancel accepts."""
PAUSABLE = ("queued", "running", "waiting")


def check_status(run: RunRecord, action: str, allowed: tuple[str, ...]) -> None:
    """InvalidRunState unless ``run`` is in one of the ``allowed`` statuses for ``action``
    (and not purged)."""
    check_not_purged(run, action)
    if run.status not in allowed:
        raise InvalidRunState(
            f"cannot {action} run {run.id!r}: it is {run.status}; {action} works on "
            f"{'/'.join(allowed)} runs"
        )


def check_not_purged(run: RunRecord, action: str) -> None:
    """InvalidRunState if retention purged ``run``: replaying it would hand its steps
    nothing for the outputs they recorded."""
    if run.purged_at is not None:
        raise InvalidRunState(
            f"cannot {action} run {run.id!r}: retention purged its data; trigger a new run"
        )


def run_not_found(run_id: str) -> RunNotFound:
    """No run with this id in the caller's organization."""
    return RunNotFound(f"no run {run_id!r} in this organization; check the id")


def no_such_step(run: RunRecord, step: str, known: list[str]) -> InvalidRunState:
    """A restart named a step the run never recorded."""
    return InvalidRunState(f"run {run.id!r} has no step named {step!r}; its steps are {known}")


def org_exists(name: str) -> OrgExists:
    """The organization name is taken."""
    return OrgExists(f"an organization named {name!r} exists already; pick another name")


def org_not_found(org: str) -> OrgNotFound:
    """No organization of that name."""
    return OrgNotFound(
        f"no organization named {org!r}; create it with `pulseloop orgs create {org}`"
    )


def key_not_found(key_id: str) -> KeyNotFound:
    """No API key with that id."""
    return KeyNotFound(f"no API key with id {key_id!r}; list keys with `pulseloop keys list`")
