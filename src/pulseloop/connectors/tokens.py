"""Scan link tokens: unguessable, re-derivable for the same scan, stored only hashed.

A step re-executed after a crash must hand out the *same* link (the first one may already
be in a patient's SMS), yet the database keeps only a hash, so a leaked database leaks no
live link. So the token is ``HMAC-SHA256(secret, scan id)`` (256 bits) and the row holds
``SHA-256(token)``. The secret comes from ``PULSELOOP_SECRET_KEY`` or a key file created
beside the SQLite database (mode 0600), never from the database itself. A database other
processes share (PostgreSQL) needs ``PULSELOOP_SECRET_KEY``: every process that makes or
checks links must hold the same secret, and no file beside the database is shared.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pulseloop.config import Settings
from pulseloop.errors import StoreError
from pulseloop.store import sqlite_path


def derive_token(secret: bytes, scan_id: str) -> str:
    """The link token of a scan (URL-safe, 43 characters)."""
    digest = hmac.new(secret, scan_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    """What the database stores and looks links up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def load_secret(settings: Settings) -> bytes:
    """The signing secret: configured, or read/created beside the database."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = sqlite_path(settings.database_url)
    if path is None:
        raise StoreError(
            "PULSELOOP_SECRET_KEY is not set; it is required with a shared database "
            f"({_scheme(settings.database_url)}): every worker and server process must sign "
            "scan links with the same key. Set it to the same long random value everywhere, "
            "e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    if path == ":memory:":
        return secrets.token_bytes(32)  # links live as long as this process
    key_file = Path(path).with_suffix(".key")
    if not key_file.exists():
        # write aside, then link into place: atomic, and the first process to link wins
        spare = key_file.with_name(f"{key_file.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_bytes(32).hex())
            with contextlib.suppress(FileExistsError):  # another process linked first
                os.link(spare, key_file)
        except OSError as exc:
            raise StoreError(
                f"cannot create the scan-link key {str(key_file)!r}: {exc.strerror}; set "
                "PULSELOOP_SECRET_KEY or make the database folder writable"
            ) from exc
        finally:
            spare.unlink(missing_ok=True)
    return bytes.fromhex(key_file.read_text().strip())


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] + "://..."
