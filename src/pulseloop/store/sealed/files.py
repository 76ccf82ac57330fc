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
request hands it, the reader one chunk.

Design record. Considered: a seekable decrypting reader handed to the decoder (no
plaintext on disk at all), but the decoder runs in the vitals process pool, which would
need the raw data key, and PyAV seeks; so the analysis opens the file into a temporary
file (0600, in the upload folder, removed as soon as the analysis ends) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from cryptography.exceptions import InvalidTag

from pulseloop.errors import EncryptionKeyError
from pulseloop.store.sealed.keyring import DataKey
from pulseloop.store.sealed.store import EncryptedStore

MAGIC = b"plxv1\n"
CHUNK_BYTES = 64 * 1024
_NONCE = 12
_LENGTH = struct.Struct(">I")
_MAX_SEALED = _NONCE + CHUNK_BYTES + 16


def _aad(org: str, scan_id: str, file_id: str, index: int, last: bool) -> bytes:
    return f"pulseloop video\x1f{org}\x1f{scan_id}\x1f{file_id}\x1f{index}\x1f{int(last)}".encode()


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
        nonce = os.urandom(_NONCE)
        aad = _aad(self._org, self._scan_id, self._file_id, self._index, last)
        sealed = nonce + self._key.aead.encrypt(nonce, plain, aad)
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1


def sealed_key_id(path: Path) -> str | None:
    """The data key id a sealed file names, or None when it is not a sealed file."""
    with path.open("rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return None
        return f.readline(64).decode("ascii", "replace").strip()


def _chunks(f: BinaryIO, where: str) -> Iterator[tuple[int, bytes, bool]]:
    """(index, sealed chunk, is last) for each chunk of an open sealed file."""
    index = 0
    head = f.read(_LENGTH.size)
    while head:
        if len(head) != _LENGTH.size:
            raise _broken(where, "it ends inside a chunk's length")
        (size,) = _LENGTH.unpack(head)
        if not _NONCE + 16 <= size <= _MAX_SEALED:
            raise _broken(where, f"chunk {index} claims {size} bytes")
        sealed = f.read(size)
        if len(sealed) != size:
            raise _broken(where, f"it ends inside chunk {index}")
        head = f.read(_LENGTH.size)
        yield index, sealed, not head
        index += 1


def open_to_temp(path: Path, key: DataKey, org: str, scan_id: str) -> Path:
    """The video of sealed file ``path`` written to a new temporary file beside it (mode
    0600); the caller deletes it. EncryptionKeyError if the file was altered, cut short
    or sealed for another scan."""
    where = f"the uploaded video of scan {scan_id!r}"
    fd, name = tempfile.mkstemp(prefix="pulseloop-open-", suffix=".video", dir=path.parent)
    out = Path(name)
    try:
        with path.open("rb") as f, os.fdopen(fd, "wb") as dst:
            if f.read(len(MAGIC)) != MAGIC:
                raise _broken(where, "it is not a sealed upload")
            key_id = f.readline(64).decode("ascii", "replace").strip()
            file_id = f.readline(64).decode("ascii", "replace").strip()
            if key_id != key.id:
                raise _broken(where, f"it names data key {key_id!r}, not {key.id!r}")
            last = False
            for index, sealed, last in _chunks(f, where):
                aad = _aad(org, scan_id, file_id, index, last)
                try:
                    dst.write(key.aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad))
                except InvalidTag:
                    raise _broken(where, f"chunk {index} does not open") from None
            if not last:
                raise _broken(where, "it holds no chunk")
    except BaseException:
        with contextlib.suppress(OSError):
            out.unlink()
        raise
    return out


def _broken(where: str, why: str) -> EncryptionKeyError:
    return EncryptionKeyError(
        f"{where} cannot be opened: {why}. It was cut short, altered, or copied from "
        "another scan (each chunk is bound to its file, position and scan); ask for the "
        "video again"
    )


async def opened_upload(store: object, path: Path, org: str, scan_id: str) -> Path:
    """A path the decoder can read the upload at ``path`` from: a new temporary file the
    caller deletes (when it differs from ``path``), or ``path`` itself for a store that
    does not encrypt. A file an encrypting store did not seal is refused, never read."""
    key_id = await asyncio.to_thread(sealed_key_id, path)
    if not isinstance(store, EncryptedStore):
        if key_id is not None:
            raise _broken(f"the uploaded video of scan {scan_id!r}", "it is sealed and this "
                          "store does not encrypt")  # fmt: skip
        return path
    if key_id is None:
        raise _broken(f"the uploaded video of scan {scan_id!r}", "it is not a sealed upload")
    key = await store.keyring.by_id(key_id)
    return await asyncio.to_thread(open_to_temp, path, key, org, scan_id)


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
