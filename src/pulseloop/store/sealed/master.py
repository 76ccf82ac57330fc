"""The master key: where it comes from, and wrapping data keys with it.

The master key never enters the database; it only wraps (AES-GCM) each organization's
data keys, which the ``data_keys`` table holds. It comes from, in order:

1. ``PULSELOOP_MASTER_KEY``: 32 bytes as 64 hex digits or base64;
2. ``PULSELOOP_MASTER_KEY_FILE``: a file holding the same;
3. for an embedded SQLite file only, ``<database>.master-key`` beside it, created (mode
   0600) on first use like the scan-link key. A shared database (PostgreSQL) has no file
   every process can see, so it requires 1 or 2, and says so.

Losing the master key loses every payload: back it up apart from the database backups
(docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pulseloop.errors import EncryptionKeyError
from pulseloop.store import sqlite_path

MASTER_KEY_ENV = "PULSELOOP_MASTER_KEY"
MASTER_KEY_FILE_ENV = "PULSELOOP_MASTER_KEY_FILE"
NEW_MASTER_KEY_ENV = "PULSELOOP_NEW_MASTER_KEY"
"""Where ``pulseloop keys rotate-master-key`` reads the new key by default."""
KEY_BYTES = 32
_NONCE_BYTES = 12
_GENERATE = "python -c 'import secrets; print(secrets.token_hex(32))'"


@dataclass(frozen=True, slots=True)
class MasterKey:
    """The 256-bit key that wraps data keys, and where it came from (for messages)."""

    secret: bytes
    source: str

    def wrap(self, org: str, key_id: str, data_key: bytes) -> str:
        """A data key sealed for the ``data_keys`` table, bound to its org and id."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.secret).encrypt(nonce, data_key, _wrap_aad(org, key_id))
        return base64.b64encode(nonce + sealed).decode()

    def unwrap(self, org: str, key_id: str, wrapped: str) -> bytes:
        """The data key, or EncryptionKeyError if this master key did not wrap it."""
        raw = base64.b64decode(wrapped)
        try:
            return AESGCM(self.secret).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _wrap_aad(org, key_id)
            )
        except InvalidTag:
            raise EncryptionKeyError(
                f"the master key from {self.source} cannot open data key {key_id!r} of "
                f"organization {org!r}: this database was encrypted under another master "
                f"key. Set {MASTER_KEY_ENV} (or {MASTER_KEY_FILE_ENV}) to the master key "
                "this database was created with (see docs/security.md, 'Back up the master "
                "key'); pulseloop never reads its payloads without it"
            ) from None


def _wrap_aad(org: str, key_id: str) -> bytes:
    return f"pulseloop data key\x1f{org}\x1f{key_id}".encode()


def load_master_key(database_url: str, env: Mapping[str, str] | None = None) -> MasterKey:
    """The master key for ``database_url`` (see the module doc for the order)."""
    env = os.environ if env is None else env
    if env.get(MASTER_KEY_ENV):
        return MasterKey(parse_key(env[MASTER_KEY_ENV], MASTER_KEY_ENV), MASTER_KEY_ENV)
    if env.get(MASTER_KEY_FILE_ENV):
        path = Path(env[MASTER_KEY_FILE_ENV])
        return MasterKey(_read_key_file(path, MASTER_KEY_FILE_ENV), f"key file {str(path)!r}")
    path_text = sqlite_path(database_url)
    if path_text is None:
        scheme = database_url.split("://", 1)[0]
        raise EncryptionKeyError(
            f"{MASTER_KEY_ENV} is not set; it is required with a shared database ({scheme}://"
            "...): every process must open payloads with the same master key. Set it (or "
            f"{MASTER_KEY_FILE_ENV}) to 32 random bytes, e.g. the output of `{_GENERATE}`, "
            "and keep a copy apart from the database backups"
        )
    if path_text == ":memory:":
        return MasterKey(secrets.token_bytes(KEY_BYTES), "a key of this process")
    key_file = Path(path_text).with_suffix(".master-key")  # as embedded_key_file
    _create_key_file(key_file)
    source = f"key file {str(key_file)!r}"
    return MasterKey(_read_key_file(key_file, "the database's key file"), source)


def new_master_key(
    env_name: str | None, file: str | None, env: Mapping[str, str] | None = None
) -> MasterKey:
    """The master key to rotate to, from the environment variable ``env_name`` or from
    ``file`` (never from the command line, where other users' ``ps`` would show it)."""
    env = os.environ if env is None else env
    if file:
        path = Path(file)
        return MasterKey(_read_key_file(path, "--new-key-file"), f"key file {str(path)!r}")
    name = env_name or NEW_MASTER_KEY_ENV
    if not env.get(name):
        raise EncryptionKeyError(
            f"{name} is not set: put the new master key (32 bytes as 64 hex digits or base64, "
            f"e.g. from `{_GENERATE}`) in it, or pass --new-key-file PATH"
        )
    return MasterKey(parse_key(env[name], name), name)


def replace_key_file(key_file: Path, key: MasterKey) -> None:
    """Write ``key`` over ``key_file`` atomically, mode 0600 (a rotated embedded key)."""
    spare = key_file.with_name(f"{key_file.name}.{os.getpid()}.tmp")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.secret.hex())
        f.flush()
        os.fsync(f.fileno())
    os.replace(spare, key_file)


def embedded_key_file(database_url: str) -> Path | None:
    """``<database>.master-key`` for an embedded SQLite file, else None."""
    path_text = sqlite_path(database_url)
    if path_text is None or path_text == ":memory:":
        return None
    return Path(path_text).with_suffix(".master-key")


def parse_key(text: str, where: str) -> bytes:
    """32 bytes from 64 hex digits or base64; EncryptionKeyError naming ``where`` else."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        raw = bytes.fromhex(text)
        if len(raw) == KEY_BYTES:
            return raw
    with contextlib.suppress(binascii.Error, ValueError):
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "==")
        if len(raw) == KEY_BYTES:
            return raw
    raise EncryptionKeyError(
        f"{where} does not hold a master key: expected 32 bytes as 64 hex digits or base64 "
        f"(got {len(text)} characters). Generate one with `{_GENERATE}`"
    )


def _read_key_file(path: Path, where: str) -> bytes:
    try:
        text = path.read_text()
    except OSError as exc:
        raise EncryptionKeyError(
            f"cannot read the master key file {str(path)!r} ({where}): {exc.strerror}; "
            f"fix the path or set {MASTER_KEY_ENV}"
        ) from exc
    return parse_key(text, f"the master key file {str(path)!r}")


def _create_key_file(key_file: Path) -> None:
    """Write a new random key beside the database, 0600, atomically (first writer wins)."""
    if key_file.exists():
        return
    spare = key_file.with_name(f"{key_file.name}.{os.getpid()}.tmp")
    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_bytes(KEY_BYTES).hex())
        with contextlib.suppress(FileExistsError):  # another process linked first
            os.link(spare, key_file)
    except OSError as exc:
        raise EncryptionKeyError(
            f"cannot create the master key file {str(key_file)!r}: {exc.strerror}; set "
            f"{MASTER_KEY_ENV} or make the database folder writable"
        ) from exc
    finally:
        spare.unlink(missing_ok=True)
