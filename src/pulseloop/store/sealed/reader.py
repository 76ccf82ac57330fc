"""Reading a sealed upload without writing its plaintext anywhere: a seekable, read-only
file object that opens the 64 KiB chunks on demand, for the decoder (PyAV) to read from.

The file format is in :mod:`pulseloop.store.sealed.files`. Opening indexes the chunks
(their lengths only, nothing is decrypted); each read opens the chunks it touches, keeping
the last ``CACHED_CHUNKS`` opened, so memory stays at a few chunks whatever the video's
length and a decoder that reads forwards opens each chunk once. A chunk that does not
open (altered, moved, cut short, another scan's) raises
:class:`~pulseloop.errors.EncryptionKeyError` from the read that needed it, never garbage,
and stays in :attr:`SealedReader.error` for the decoder to raise once it is done.

This module imports nothing of the store, so a vitals worker process unpickling a
:class:`SealedVideo` stays light.

Design record. The decoder runs in the vitals process pool, so the worker needs the data
key: :class:`SealedVideo` carries it there through the pool's pipe (memory only; never in
its repr, never on disk). Considered: opening the file into a 0600 temporary file for
the decoder (what pulseloop did before), which a process killed mid-analysis left behind
as plaintext; serving chunks from the parent over a pipe, which adds a round trip per
read for no gain in what the worker could see (it sees the plaintext either way).
"""

from __future__ import annotations

import io
import os
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pulseloop.errors import EncryptionKeyError

MAGIC = b"plxv1\n"
CHUNK_BYTES = 64 * 1024
NONCE_BYTES = 12
TAG_BYTES = 16
LENGTH = struct.Struct(">I")
MAX_SEALED = NONCE_BYTES + CHUNK_BYTES + TAG_BYTES
CACHED_CHUNKS = 2
"""Opened chunks kept: the one being read and the one before (a decoder stepping back
over a boundary, e.g. an MP4 index read before its data)."""


def chunk_aad(org: str, scan_id: str, file_id: str, index: int, last: bool) -> bytes:
    """What each chunk is bound to: its organization, scan, file, position and lastness."""
    return f"pulseloop video\x1f{org}\x1f{scan_id}\x1f{file_id}\x1f{index}\x1f{int(last)}".encode()


def broken(where: str, why: str) -> EncryptionKeyError:
    """The error for a sealed file that does not open, naming why and what to do."""
    return EncryptionKeyError(
        f"{where} cannot be opened: {why}. It was cut short, altered, or copied from "
        "another scan (each chunk is bound to its file, position and scan); ask for the "
        "video again"
    )


def read_header(f: IO[bytes], where: str) -> tuple[str, str]:
    """(data key id, file id) from an open sealed file, left just after the header."""
    if f.read(len(MAGIC)) != MAGIC:
        raise broken(where, "it is not a sealed upload")
    key_id = f.readline(64).decode("ascii", "replace").strip()
    file_id = f.readline(64).decode("ascii", "replace").strip()
    return key_id, file_id


class SealedReader(io.RawIOBase):
    """The plaintext of a sealed upload as a read-only, seekable binary file."""

    def __init__(self, path: Path, aead: AESGCM, key_id: str, org: str, scan_id: str) -> None:
        super().__init__()
        self._where = f"the uploaded video of scan {scan_id!r}"
        self._aead = aead
        self._org = org
        self._scan_id = scan_id
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self.error: EncryptionKeyError | None = None
        """The first chunk that did not open: later reads answer end of file, and the
        decoder raises this once it is done (it may have swallowed the read's error)."""
        self._f = path.open("rb")
        try:
            named, self._file_id = read_header(self._f, self._where)
            if named != key_id:
                raise broken(self._where, f"it names data key {named!r}, not {key_id!r}")
            self._offsets = self._index()
        except BaseException:
            self._f.close()
            raise
        last_sealed = self._offsets[-1][1]
        self.size = (len(self._offsets) - 1) * CHUNK_BYTES + last_sealed - NONCE_BYTES - TAG_BYTES
        """The video's length in bytes."""

    def _index(self) -> list[tuple[int, int]]:
        """(offset, sealed length) of every chunk, from their length fields alone."""
        end = os.fstat(self._f.fileno()).st_size
        at = self._f.tell()
        chunks: list[tuple[int, int]] = []
        while at < end:
            index = len(chunks)
            self._f.seek(at)
            head = self._f.read(LENGTH.size)
            if len(head) != LENGTH.size:
                raise broken(self._where, "it ends inside a chunk's length")
            (size,) = LENGTH.unpack(head)
            if not NONCE_BYTES + TAG_BYTES <= size <= MAX_SEALED:
                raise broken(self._where, f"chunk {index} claims {size} bytes")
            if at + LENGTH.size + size > end:
                raise broken(self._where, f"it ends inside chunk {index}")
            if chunks and chunks[-1][1] != MAX_SEALED:  # only the last may be short
                raise broken(self._where, f"chunk {index - 1} is short but not the last")
            chunks.append((at + LENGTH.size, size))
            at += LENGTH.size + size
        if not chunks:
            raise broken(self._where, "it holds no chunk")
        return chunks

    def _chunk(self, index: int) -> bytes:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        offset, size = self._offsets[index]
        self._f.seek(offset)
        sealed = self._f.read(size)
        last = index == len(self._offsets) - 1
        aad = chunk_aad(self._org, self._scan_id, self._file_id, index, last)
        try:
            plain = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            self.error = broken(self._where, f"chunk {index} does not open")
            raise self.error from None
        self._cache[index] = plain
        if len(self._cache) > CACHED_CHUNKS:
            self._cache.popitem(last=False)
        return plain

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` (from the start, the current position or the end)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"whence {whence!r} is not 0, 1 or 2")
        if base + offset < 0:
            raise ValueError(f"cannot seek to {base + offset}, before the start")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes from the current position (all that is left if negative);
        b"" at the end."""
        if self.closed:
            raise ValueError("read of a closed SealedReader")
        if self.error is not None:
            return b""
        left = self.size - self._pos
        want = left if size is None or size < 0 else min(size, left)
        parts = []
        while want > 0:
            index, start = divmod(self._pos, CHUNK_BYTES)
            piece = self._chunk(index)[start : start + want]
            parts.append(piece)
            self._pos += len(piece)
            want -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._f.close()
        self._cache.clear()
        super().close()


@dataclass(frozen=True, slots=True)
class SealedVideo:
    """A sealed upload and the key to open it: what the analysis hands the vitals worker
    (picklable), which decodes it from :meth:`open` instead of a plaintext file."""

    path: str
    key_id: str
    org: str
    scan_id: str
    secret: bytes = field(repr=False)

    @property
    def name(self) -> str:
        """The file's name, for messages (never its content)."""
        return Path(self.path).name

    def open(self) -> SealedReader:
        """The video, opened chunk by chunk as it is read."""
        return SealedReader(
            Path(self.path), AESGCM(self.secret), self.key_id, self.org, self.scan_id
        )
