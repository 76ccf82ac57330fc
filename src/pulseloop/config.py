"""Settings, built once at the edge (CLI, App) from arguments, then the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///.pulseloop/pulseloop.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class Settings:
    """Where pulseloop keeps its data and how scan links are addressed."""

    database_url: str = DEFAULT_DATABASE_URL
    public_url: str = DEFAULT_PUBLIC_URL
    org: str = "default"
    secret_key: str | None = None
    """Signs scan links; from PULSELOOP_SECRET_KEY, else a key file beside the database."""
    upload_dir: str | None = None
    """Where uploaded videos wait for their analysis (PULSELOOP_UPLOAD_DIR; None: the
    system's temporary folder). Any analysing process may take the job, so on several
    machines this must be storage they all mount at the same path."""
    tracing: bool = False
    """Emit OpenTelemetry spans through the global tracer provider (PULSELOOP_TRACING=1;
    e.g. under ``opentelemetry-instrument``); see docs/observability.md."""

    @classmethod
    def load(
        cls,
        database_url: str | None = None,
        public_url: str | None = None,
        org: str | None = None,
    ) -> Settings:
        """Arguments first, then ``PULSELOOP_*`` environment variables, then defaults."""
        env = os.environ
        return cls(
            database_url=database_url or env.get("PULSELOOP_DATABASE_URL") or DEFAULT_DATABASE_URL,
            public_url=public_url or env.get("PULSELOOP_PUBLIC_URL") or DEFAULT_PUBLIC_URL,
            org=org or env.get("PULSELOOP_ORG") or "default",
            secret_key=env.get("PULSELOOP_SECRET_KEY") or None,
            upload_dir=env.get("PULSELOOP_UPLOAD_DIR") or None,
            tracing=env.get("PULSELOOP_TRACING", "").strip().lower() in ("1", "true", "yes", "on"),
        )


def database_url_for(path_or_url: str) -> str:
    """Accept a plain file path where a URL is expected (``--db runs.db``)."""
    if "://" in path_or_url:
        return path_or_url
    return "sqlite:///" + path_or_url
