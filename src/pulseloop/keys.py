"""API keys: random, shown once, stored only as SHA-256.

A key reads ``pl_<id>_<secret>``: ``id`` (12 hex characters) names the key in listings and
``pulseloop keys revoke`` without revealing it, ``secret`` is 256 random bits. A plain
SHA-256 is enough (no slow hash): the secret is random, not a password, so there is
nothing to guess from a leaked hash.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "pl_"


def new_api_key() -> tuple[str, str]:
    """A fresh ``(key id, key)``; print the key once, store :func:`hash_api_key` of it."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> str:
    """What the database stores and looks keys up by."""
    return hashlib.sha256(key.encode()).hexdigest()
