"""Encryption at rest: envelope encryption (AES-GCM) of every patient-bearing payload.

``master`` loads the master key, ``master_check`` records which one is current,
``keyring`` keeps each organization's data keys, ``columns`` names the payload columns and
binds each ciphertext to its row, ``store`` wraps a backend, ``resealer`` re-encrypts
older rows in the background, ``rewrap`` rotates the master key, ``files`` seals uploaded
videos and ``reader`` reads them back for the decoder without writing plaintext.
"""

from __future__ import annotations

from pulseloop.store.sealed.master import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    MasterKey,
    load_master_key,
)
from pulseloop.store.sealed.resealer import Resealer, reseal_all
from pulseloop.store.sealed.store import EncryptedStore

__all__ = [
    "MASTER_KEY_ENV",
    "MASTER_KEY_FILE_ENV",
    "EncryptedStore",
    "MasterKey",
    "Resealer",
    "load_master_key",
    "reseal_all",
]
