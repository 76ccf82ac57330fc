"""Flow-control keys through the encrypting store: a concurrency key is stored as a keyed
hash, never as the value it was computed from.

Design record. A concurrency key is usually a patient id (``e.body["patientId"]``), and
the claim must compare keys in SQL, so it cannot be sealed like a payload (AES-GCM with a
fresh nonce makes every ciphertext different). The engine hands over a SHA-256 digest of
(loop, key); this layer replaces it with HMAC-SHA-256 under a key derived from the master
key and the organization (HKDF), so the stored value is equal for equal keys, differs
across organizations, and cannot be tested against a list of candidate patient ids by
anyone holding only the database. Considered: the organization's data key (it rotates,
and a key hashed before and after a rotation would count as two keys, letting a second
run of one patient start); a separate per-deployment secret (one more secret to keep and
back up, when the master key already is one).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pulseloop.store.sealed.master import MasterKey

_INFO = b"pulseloop flow keys v1 "


class FlowKeys:
    """Per-organization HMAC keys for concurrency keys, derived once and cached."""

    def __init__(self, master: MasterKey) -> None:
        self._master = master
        self._keys: dict[str, bytes] = {}

    def _key(self, org: str) -> bytes:
        key = self._keys.get(org)
        if key is None:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + org.encode())
            key = self._keys[org] = hkdf.derive(self._master.secret)
        return key

    def hide(self, org: str, digest: str) -> str:
        """The stored form of a key digest: ``h1:`` and the HMAC in hex."""
        mac = hmac.new(self._key(org), digest.encode(), hashlib.sha256).hexdigest()
        return f"h1:{mac}"
