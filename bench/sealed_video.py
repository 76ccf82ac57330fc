"""What analysing a sealed upload costs: a 30 s 640x480 video analysed (a) from its
plaintext file, (b) the way pulseloop did before (the sealed file opened into a temporary
plaintext file, then analysed), (c) through the chunk-by-chunk reader (no plaintext on
disk), in one process, one after the other, ``--repeats`` times each.

    python bench/sealed_video.py [--repeats 3] [VIDEO ...]

Without VIDEO it uses (and makes, once) bench/out/vitals/timing-vp8.webm and
timing-h264_lossless.mp4, the files ``bench/vitals.py --timing`` uses. Wall time on a
shared machine measures the neighbours too: CPU time (this process and its threads) is
printed beside it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pulseloop.store.sealed.files import CHUNK_BYTES, SealedWriter
from pulseloop.store.sealed.keyring import DataKey
from pulseloop.store.sealed.reader import SealedVideo
from pulseloop.vitals import analyze_video
from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video

OUT = Path(__file__).resolve().parent / "out" / "vitals"
DEFAULTS = [("timing-vp8.webm", "vp8", 4000), ("timing-h264_lossless.mp4", "h264_lossless", 0)]


def _videos() -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    found = []
    for name, codec, kbps in DEFAULTS:
        video = OUT / name
        if not video.exists():
            write_video(
                video,
                PulseSpec(heart_rate_bpm=77, seed=5),
                SceneSpec(duration_s=30.0, motion_px=2.0, seed=5),
                codec=codec,  # type: ignore[arg-type]
                bitrate_kbps=kbps or 2000,
            )
        found.append(video)
    return found


def _seal(video: Path, key: DataKey, folder: Path) -> Path:
    sealed = folder / f"{video.name}.sealed"
    with video.open("rb") as src, sealed.open("wb") as out:
        writer = SealedWriter(out, key, "bench", "scan")
        while data := src.read(1 << 20):
            writer.write(data)
        writer.finish()
    return sealed


def _bpm(video: Path | str | SealedVideo) -> float | None:
    vitals = analyze_video(video).vitals
    return None if vitals is None else vitals.heart_rate_bpm


def _via_temp(source: SealedVideo) -> float | None:
    """The former path: the whole video written to a 0600 temporary file, analysed, removed."""
    fd, name = tempfile.mkstemp(prefix="pulseloop-open-", dir=Path(source.path).parent)
    try:
        with source.open() as reader, os.fdopen(fd, "wb") as out:
            while data := reader.read(CHUNK_BYTES):
                out.write(data)
        return _bpm(name)
    finally:
        os.unlink(name)


def _timed(run: Callable[[], object], repeats: int) -> tuple[list[float], list[float], object]:
    times, cpu, result = [], [], None
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    secret = AESGCM.generate_key(bit_length=256)
    key = DataKey("bench", "bench", AESGCM(secret), 0.0, secret)
    print(f"load {os.getloadavg()[0]:.1f}; best / median of {args.repeats} (seconds)")
    with tempfile.TemporaryDirectory() as folder:
        for video in args.videos or _videos():
            sealed = _seal(video, key, Path(folder))
            source = SealedVideo(str(sealed), key.id, "bench", "scan", secret)
            print(f"{video.name} ({video.stat().st_size / 1e6:.0f} MB):")
            for name, run in [
                ("plaintext file", lambda video=video: _bpm(video)),
                ("sealed, via temp file", lambda source=source: _via_temp(source)),
                ("sealed, streamed", lambda source=source: _bpm(source)),
            ]:
                times, cpu, bpm = _timed(run, args.repeats)
                print(
                    f"  {name:22} wall {min(times):5.2f} / {statistics.median(times):5.2f}  "
                    f"CPU {min(cpu):5.2f} / {statistics.median(cpu):5.2f}  ({bpm:.1f} bpm)"
                )


if __name__ == "__main__":
    main()
