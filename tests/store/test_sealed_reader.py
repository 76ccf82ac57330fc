"""The reader the analysis decodes sealed uploads through: every seek and read returns
exactly the upload's bytes, whatever chunk boundaries they cross; a damaged chunk raises
the clear error from the read that needs it (and stays raised for the decoder); the chunks
around it still read."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from pulseloop.errors import EncryptionKeyError
from pulseloop.store.sealed.files import SealedWriter
from pulseloop.store.sealed.keyring import DataKey
from pulseloop.store.sealed.reader import CACHED_CHUNKS, CHUNK_BYTES, SealedReader, SealedVideo

SECRET = bytes(range(32))
KEY = DataKey("k1", "clinic-a", AESGCM(SECRET), 0.0, SECRET)
VIDEO = os.urandom(3 * CHUNK_BYTES + 1234)  # three full chunks and a short last one
BOUNDARIES = [n * CHUNK_BYTES + d for n in range(5) for d in (-2, -1, 0, 1) if n or d >= 0]


def _sealed(folder: Path, video: bytes = VIDEO, scan_id: str = "s1") -> Path:
    path = folder / "upload.video"
    with path.open("wb") as out:
        writer = SealedWriter(out, KEY, "clinic-a", scan_id)
        for at in range(0, len(video), 10_000):  # handed over in pieces, as a request does
            writer.write(video[at : at + 10_000])
        writer.finish()
    return path


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sealed(tmp_path_factory.mktemp("sealed"))


def _reader(path: Path, scan_id: str = "s1") -> SealedReader:
    return SealedVideo(str(path), KEY.id, "clinic-a", scan_id, SECRET).open()


offsets = st.one_of(st.sampled_from(BOUNDARIES), st.integers(0, len(VIDEO) + 100))
lengths = st.one_of(
    st.sampled_from([0, 1, 2, CHUNK_BYTES, CHUNK_BYTES + 1, -1]), st.integers(0, 3 * CHUNK_BYTES)
)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from([0, 1, 2]), offsets, lengths), max_size=8))
def test_seeks_and_reads_across_chunks_return_exactly_the_upload(
    sealed: Path, steps: list[tuple[int, int, int]]
) -> None:
    with _reader(sealed) as reader:
        expected = io.BytesIO(VIDEO)  # what a plaintext file would answer
        assert reader.size == len(VIDEO) and reader.seekable() and reader.readable()
        for whence, offset, length in steps:
            target = {0: offset, 1: offset - reader.tell(), 2: offset - len(VIDEO)}[whence]
            assert reader.seek(target, whence) == expected.seek(target, whence)
            assert reader.read(length) == expected.read(length)
            assert reader.tell() == expected.tell()
            assert len(reader._cache) <= CACHED_CHUNKS  # memory stays at a few chunks


def test_the_reader_fills_buffers_and_refuses_bad_seeks(sealed: Path) -> None:
    with _reader(sealed) as reader:
        buffer = bytearray(CHUNK_BYTES + 7)
        reader.seek(CHUNK_BYTES - 3)
        assert reader.readinto(buffer) == len(buffer)
        assert bytes(buffer) == VIDEO[CHUNK_BYTES - 3 : 2 * CHUNK_BYTES + 4]
        with pytest.raises(ValueError, match="before the start"):
            reader.seek(-1)
        with pytest.raises(ValueError, match="whence 7"):
            reader.seek(0, 7)
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)


def test_the_key_crosses_to_a_worker_but_never_shows(sealed: Path) -> None:
    video = SealedVideo(str(sealed), KEY.id, "clinic-a", "s1", SECRET)
    assert SECRET.hex() not in repr(video) and repr(SECRET) not in repr(video)
    assert repr(SECRET) not in repr(KEY)
    with pickle.loads(pickle.dumps(video)).open() as reader:  # as the vitals pool sends it
        assert reader.read() == VIDEO


def test_a_damaged_chunk_raises_the_clear_error_only_where_it_is_read(tmp_path: Path) -> None:
    path = _sealed(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # inside chunk 1 or 2 of four
    path.write_bytes(bytes(raw))
    with _reader(path) as reader:
        assert reader.read(100) == VIDEO[:100]  # chunk 0 still opens
        with pytest.raises(EncryptionKeyError, match=r"scan 's1' cannot be opened: chunk \d does"):
            reader.read()
        assert isinstance(reader.error, EncryptionKeyError)
        reader.seek(0)
        assert reader.read(10) == b""  # nothing more once a chunk failed: the decoder stops


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda raw: raw[:-1], "ends inside chunk 3"),
        (lambda raw: raw[: raw.index(b"\n", 6) + 1 + 33], "holds no chunk"),
        (lambda raw: raw[:10], "ends inside|holds no chunk|not a sealed"),
        (lambda raw: b"RIFF" + raw[4:], "not a sealed upload"),
    ],
)
def test_a_file_cut_or_replaced_is_refused_when_opened(
    tmp_path: Path, damage: object, why: str
) -> None:
    path = _sealed(tmp_path)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(EncryptionKeyError, match=why):
        _reader(path)


def test_another_scans_file_or_key_is_refused(sealed: Path) -> None:
    with (
        _reader(sealed, scan_id="s2") as reader,
        pytest.raises(EncryptionKeyError, match="chunk 0"),
    ):
        reader.read(1)
    with pytest.raises(EncryptionKeyError, match="names data key 'k1', not 'k2'"):
        SealedVideo(str(sealed), "k2", "clinic-a", "s1", SECRET).open()
