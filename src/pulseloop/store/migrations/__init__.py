"""Numbered schema migrations: ``NNNN_name.<backend>.sql``, applied in order, once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_(\w+)\.(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration script for one backend."""

    version: int
    name: str
    sql: str


def migrations_for(backend: str) -> list[Migration]:
    """All migrations for ``backend`` ("sqlite", "postgres"), oldest first."""
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _NAME.match(entry.name)
        if match and match.group(3) == backend:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def latest_version(backend: str) -> int:
    """The schema version this code writes."""
    return max((m.version for m in migrations_for(backend)), default=0)
