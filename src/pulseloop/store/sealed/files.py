"""Uploaded video files sealed at rest: encrypted with the organization's data key as they
stream in, opened only while they are analysed.

A sealed file reads::

    b"plxv1\\n" <data key id> b"\\n" <file id, 32 hex digits> b"\\n"
    then chunks, each: <4-byte big-endian length n> <12-byte nonce> <n - 12 bytes of
    AES-GCM ciphertext and tag> of at most CHUNK_BYTES of video

Each chunk's associated data binds the organization, the scan, the file id, the chunk's
index and whether it is the last: a chunk moved to another file or position, a file cut
short at a chunk boundary (its last chunk was not sealed as the last) or cut inside a
chunk all fail to open, with :class:`~pulseloop.errors.EncryptionKeyError`, never
garbage. Memory stays bounded: the writer holds at most one chunk beyond what the
request hands it; the analysis reads the file through
:class:`~pulseloop.store.sealed.reader.SealedReader`, a few chunks at a time, so no
plaintext of an upload is ever written to disk.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from pathlib import Path
from typing import IO

from pulseloop.store.sealed.keyring import DataKey
from pulseloop.store.sealed.reader import (
    CHUNK_BYTES,
    LENGTH,
    MAGIC,
    NONCE_BYTES,
    SealedVideo,
    broken,
    chunk_aad,
)
from pulseloop.store.sealed.store import EncryptedStore

__all__ = ["CHUNK_BYTES", "MAGIC", "SealedVideo", "SealedWriter", "opened_upload"]


async def file_key(store: object, org: str) -> DataKey | None:
    """The key to seal ``org``'s uploads with; None for a store that does not encrypt
    (benchmarks: the file is then written as it comes)."""
    return await store.keyring.current(org) if isinstance(store, EncryptedStore) else None


class SealedWriter:
    """Writes a video to ``out`` sealed chunk by chunk (call :meth:`finish` at the end)."""

    def __init__(self, out: IO[bytes], key: DataKey, org: str, scan_id: str) -> None:
        self._out = out
        self._key = key
        self._org = org
        self._scan_id = scan_id
        self._file_id = secrets.token_hex(16)
        self._pending = bytearray()
        self._index = 0
        out.write(MAGIC + f"{key.id}\n{self._file_id}\n".encode())

    def write(self, data: bytes) -> None:
        """Take more of the video; full chunks are sealed once more follows them."""
        self._pending += data
        while len(self._pending) > CHUNK_BYTES:  # strictly more: this chunk is not the last
            self._seal(bytes(self._pending[:CHUNK_BYTES]), last=False)
            del self._pending[:CHUNK_BYTES]

    def finish(self) -> None:
        """Seal what is left as the last chunk."""
        self._seal(bytes(self._pending), last=True)
        self._pending.clear()

    def _seal(self, plain: bytes, last: bool) -> None:
        nonce = os.urandom(NONCE_BYTES)
        aad = chunk_aad(self._org, self._scan_id, self._file_id, self._index, last)
        sealed = nonce + self._key.aead.encrypt(nonce, plain, aad)
        self._out.write(LENGTH.pack(len(sealed)) + sealed)
        self._index += 1


def sealed_key_id(path: Path) -> str | None:
    """The data key id a sealed file names, or None when it is not a sealed file."""
    with path.open("rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return None
        return f.readline(64).decode("ascii", "replace").strip()


async def opened_upload(store: object, path: Path, org: str, scan_id: str) -> Path | SealedVideo:
    """What the decoder reads the upload at ``path`` from: a :class:`SealedVideo` (opened
    chunk by chunk as it is read, never to disk), or ``path`` itself for a store that does
    not encrypt. A file an encrypting store did not seal is refused, never read."""
    key_id = await asyncio.to_thread(sealed_key_id, path)
    where = f"the uploaded video of scan {scan_id!r}"
    if not isinstance(store, EncryptedStore):
        if key_id is not None:
            raise broken(where, "it is sealed and this store does not encrypt")
        return path
    if key_id is None:
        raise broken(where, "it is not a sealed upload")
    key = await store.keyring.by_id(key_id)
    return SealedVideo(str(path), key.id, org, scan_id, key.secret)


def seal_in_place(path: Path, key: DataKey, org: str, scan_id: str) -> None:
    """Replace the plaintext video at ``path`` with its sealed form (written beside it,
    0600, then renamed over it), reading it a chunk at a time."""
    fd, name = tempfile.mkstemp(prefix="pulseloop-seal-", suffix=".video", dir=path.parent)
    spare = Path(name)
    try:
        with path.open("rb") as src, os.fdopen(fd, "wb") as dst:
            writer = SealedWriter(dst, key, org, scan_id)
            while data := src.read(CHUNK_BYTES):
                writer.write(data)
            writer.finish()
        os.replace(spare, path)
    except BaseException:
        spare.unlink(missing_ok=True)
        raise


async def sealed_upload(store: object, path: Path, org: str, scan_id: str) -> None:
    """Seal a video handed over already on disk (``ScanService.accept_video`` from Python;
    the HTTP upload seals as it streams), unless it is sealed or the store does not
    encrypt."""
    if not isinstance(store, EncryptedStore):
        return
    if await asyncio.to_thread(sealed_key_id, path) is not None:
        return
    key = await store.keyring.current(org)
    await asyncio.to_thread(seal_in_place, path, key, org, scan_id)
