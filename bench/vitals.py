"""Benchmark the camera-vitals engine against a peer on the same synthetic scans.

Run: ``pip install -e '.[vitals,bench]' && python bench/vitals.py`` (about 10 minutes on two
cores the first time; generated files are cached in ``bench/out/vitals/``).

Generates 26 face videos (30 s, 640x480, 30 fps) spanning 45-180 bpm and the conditions
of ``pulseloop.vitals.synthetic``: raw Y4M, lossless H.264, and the lossy VP8/VP9/H.264
bitrates a phone browser uses; motion, drift, flicker, weak pulses (darker skin), frame
drops, dim light, and four scans that must be refused. Each scan is analysed three ways,
in the same run: our video path, our trace path (the colour trace the browser would have
uploaded for the same frames) and the peer, the local POS method of the ``vitallens``
package (``VitalLens(method="pos")``, its own face detector, no API key). Prints per-scan
rows, accuracy on accepted scans, refusal rates, timings, the 60 s 1080p memory peak and
the ratios against the peer.

Then the fairness grid (:mod:`pulseloop.vitals.synthetic.grid`): six skin tones
(Fitzpatrick I-VI) x three heart rates x four nuisances (still, dim, sway, drifting and
flickering light), 30 s at 640x480, each scanned by our video path, our trace path (the
page's version-2 trace) and the peer, with acceptance, MAE and "> 5 bpm off" per tone and per
nuisance; and the time of a 30 s 640x480 analysis per codec (best and median of 5, with CPU
time and decoding's share). ``--fairness`` runs only those two parts, ``--timing`` only the
last (run it as ``taskset -c 0,1 python bench/vitals.py --timing`` to pin two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "2")  # the peer's onnxruntime: stay on two cores

import av
import numpy as np

from pulseloop.vitals import analyze_trace, analyze_video
from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video
from pulseloop.vitals.synthetic.grid import NUISANCES, GridCase, fairness_grid, run_case
from pulseloop.vitals.synthetic.skin import FITZPATRICK_TONES
from pulseloop.vitals.trace import parse_trace

OUT = Path(__file__).resolve().parent / "out" / "vitals"


@dataclass(frozen=True)
class Case:
    """One benchmark scan: file format, codec, subject and scene."""

    name: str
    suffix: str
    heart_bpm: float
    breath_bpm: float
    codec: str | None = None
    bitrate_kbps: int = 2000
    scene: dict[str, Any] = field(default_factory=dict)
    expect: str | None = None  # the failure reason a correct gate gives, None = accept

    @property
    def group(self) -> str:
        """raw (Y4M or lossless H.264) or lossy."""
        return "raw" if self.suffix == ".y4m" or self.codec == "h264_lossless" else "lossy"


LL = "h264_lossless"
CASES = [
    Case("raw-45-still", ".y4m", 45, 10),
    Case("raw-60-motion", ".y4m", 60, 12, scene={"motion_px": 3.0}),
    Case("raw-75-drift", ".y4m", 75, 15, scene={"drift": 0.15}),
    Case("raw-90-flicker", ".y4m", 90, 18, scene={"flicker": 0.01}),
    Case("ll-105-noisy", ".mp4", 105, 20, LL, scene={"noise_sigma": 4.0}),
    Case("ll-120-motion", ".mp4", 120, 22, LL, scene={"motion_px": 5.0}),
    Case("ll-135-darkskin", ".mp4", 135, 24, LL, scene={"pulse_amplitude": 0.0015}),
    Case("ll-150-drops", ".mp4", 150, 28, LL, scene={"frame_drop_rate": 0.1}),
    Case("ll-165-still", ".mp4", 165, 30, LL),
    Case("ll-180-motion", ".mp4", 180, 36, LL, scene={"motion_px": 2.0}),
    Case("ll-52-veryweak", ".mp4", 52, 8, LL, scene={"pulse_amplitude": 0.001}),
    Case("ll-98-dim", ".mp4", 98, 16, LL, scene={"brightness": 0.45}),
    Case("ll-66-drift-motion", ".mp4", 66, 14, LL, scene={"drift": -0.1, "motion_px": 4.0}),
    Case(
        "ll-142-flicker-drops",
        ".mp4",
        142,
        26,
        LL,
        scene={"flicker": 0.02, "frame_drop_rate": 0.05},
    ),
    Case("vp8-2500-72", ".webm", 72, 15, "vp8", 2500),
    Case("vp8-1000-110", ".webm", 110, 20, "vp8", 1000),
    Case("vp9-1500-130", ".webm", 130, 24, "vp9", 1500),
    Case("h264-2000-88", ".mp4", 88, 16, "h264", 2000),
    Case("h264-8000-140", ".mp4", 140, 26, "h264", 8000),
    Case("vp8-8000-58-motion", ".webm", 58, 12, "vp8", 8000, {"motion_px": 3.0}),
    Case("h264-4000-170", ".mp4", 170, 32, "h264", 4000),
    Case("vp8-4000-48-drops", ".webm", 48, 9, "vp8", 4000, {"frame_drop_rate": 0.05}),
    Case("refuse-shake", ".y4m", 70, 15, scene={"shake_px": 14.0}, expect="too_much_motion"),
    Case("refuse-noface", ".mp4", 80, 15, LL, scene={"face_visible": False}, expect="no_face"),
    Case("refuse-dark", ".mp4", 85, 15, LL, scene={"brightness": 0.08}, expect="too_dark"),
    Case(
        "refuse-nopulse", ".mp4", 95, 15, LL, scene={"pulse_amplitude": 0.0}, expect="weak_signal"
    ),
]


def _paths(case: Case) -> tuple[Path, Path]:
    return OUT / f"{case.name}{case.suffix}", OUT / f"{case.name}.trace.json"


def _generate(case: Case) -> str:
    video, trace = _paths(case)
    truth = Path(str(video) + ".truth.json")
    if not truth.exists():
        seed = int(case.heart_bpm)
        write_video(
            video,
            PulseSpec(
                heart_rate_bpm=case.heart_bpm, respiratory_rate_bpm=case.breath_bpm, seed=seed
            ),
            SceneSpec(duration_s=30.0, seed=seed, **case.scene),
            codec=case.codec,  # type: ignore[arg-type]
            bitrate_kbps=case.bitrate_kbps,
            trace_path=trace,
        )
    return case.name


def _peer(video: Path) -> tuple[float | None, float]:
    """The vitallens local POS method on the decoded frames; (bpm or None, seconds).

    ``export_to_json=False``: by default vitallens writes a JSON file per call into the
    working directory.
    """
    from vitallens import VitalLens

    start = time.perf_counter()
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        fps = float(stream.average_rate or 30)
    try:
        result = VitalLens(method="pos", export_to_json=False)(np.stack(frames), fps=fps)
        bpm = float(result[0]["vitals"]["heart_rate"]["value"])
    except Exception:  # the peer raises on no face etc.; that is a refusal, not a crash
        bpm = None
    return bpm, time.perf_counter() - start


def _memory_peak_mb() -> tuple[float, float, str]:
    """Peak RSS of analysing a 60 s 1080p VP8 file, in a fresh process (MB, s, reason)."""
    video = OUT / "mem-1080p-60s.webm"
    if not Path(str(video) + ".truth.json").exists():
        write_video(
            video,
            PulseSpec(heart_rate_bpm=77),
            SceneSpec(duration_s=60.0, width=1920, height=1080, noise_sigma=1.0),
            codec="vp8",
            bitrate_kbps=8000,
        )
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of this
    # (large) process would report the parent's peak.
    code = (
        "import sys, time, json\n"
        "from pulseloop.vitals import analyze_video\n"
        "t = time.perf_counter(); r = analyze_video(sys.argv[1])\n"
        "seconds = time.perf_counter() - t\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(json.dumps([int(hwm.split()[1]) / 1024, seconds,"
        " r.to_json()['failure_reason']]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(video)], capture_output=True, text=True, check=True
    )
    peak_mb, seconds, reason = json.loads(out.stdout)
    return float(peak_mb), float(seconds), str(reason)


def _errors(pairs: list[tuple[float, float]]) -> dict[str, float]:
    if not pairs:
        return {"n": 0, "mae": float("nan"), "rmse": float("nan"), "within3": float("nan")}
    err = np.array([abs(a - b) for a, b in pairs])
    return {
        "n": len(pairs),
        "mae": float(err.mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "within3": float((err <= 3.0).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-memory", action="store_true", help="skip the 1080p RSS run")
    parser.add_argument("--fairness", action="store_true", help="only the skin-tone grid")
    parser.add_argument("--width", type=int, default=640, help="fairness grid frame width")
    parser.add_argument("--timing", action="store_true", help="only the time per codec")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.timing:
        codec_timing()
        return
    if args.fairness:
        fairness(args.width)
        codec_timing()
        return
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_generate, CASES))
    print(f"generated/cached {len(CASES)} scans in {time.perf_counter() - t0:.0f} s\n")

    rows: list[dict[str, Any]] = []
    header = (
        f"{'scan':22} {'truth':>6} {'ours':>6} {'snr':>5} {'reason':15} {'t_s':>5} | "
        f"{'trace':>6} {'t_ms':>5} | {'peer':>6} {'t_s':>5} | {'rr':>4} {'ours':>5}"
    )
    print(header)
    print("-" * len(header))
    for case in CASES:
        video, trace_path = _paths(case)
        truth = json.loads(Path(str(video) + ".truth.json").read_text())
        start = time.perf_counter()
        ours = analyze_video(video)
        video_s = time.perf_counter() - start
        raw_trace = trace_path.read_bytes()
        start = time.perf_counter()
        trace = parse_trace(raw_trace)
        parse_ms = 1000 * (time.perf_counter() - start)
        start = time.perf_counter()
        from_trace = analyze_trace(trace)
        trace_ms = 1000 * (time.perf_counter() - start)
        peer_bpm, peer_s = _peer(video)
        row = {
            "case": asdict(case),
            "group": case.group,
            "truth": truth,
            "ours": ours.to_json() | {"seconds": video_s},
            "trace": from_trace.to_json() | {"ms": trace_ms, "parse_ms": parse_ms},
            "peer": {"heart_rate_bpm": peer_bpm, "seconds": peer_s},
        }
        rows.append(row)
        v, q = ours.vitals, ours.quality

        def f(x: float | None, w: int = 6, d: int = 1) -> str:
            return f"{'-':>{w}}" if x is None else f"{x:{w}.{d}f}"

        print(
            f"{case.name:22} {truth['heart_rate_bpm']:6.1f} {f(v.heart_rate_bpm)} "
            f"{f(q.snr_db, 5)} {ours.failure_reason or 'ok'!s:15} {video_s:5.2f} | "
            f"{f(from_trace.vitals.heart_rate_bpm)} {trace_ms:5.1f} | {f(peer_bpm)} "
            f"{peer_s:5.2f} | {truth['respiratory_rate_bpm']:4.0f} "
            f"{f(v.respiratory_rate_bpm, 5)}"
        )
    (OUT / "results.json").write_text(json.dumps(rows, indent=1))
    _summary(rows, skip_memory=args.skip_memory)


def _summary(rows: list[dict[str, Any]], skip_memory: bool) -> None:
    def hr_pairs(source: str, group: str | None) -> list[tuple[float, float]]:
        out = []
        for r in rows:
            value = (
                r[source]["heart_rate_bpm"]
                if source == "peer"
                else r[source]["vitals"]["heart_rate_bpm"]
            )
            if (
                r["case"]["expect"] is None
                and (group is None or r["group"] == group)
                and (value is not None)
            ):
                out.append((value, r["truth"]["heart_rate_bpm"]))
        return out

    def peer_on(source: str, group: str) -> list[tuple[float, float]]:
        """Peer errors on exactly the scans `source` accepted in `group`."""
        out = []
        for r in rows:
            accepted = r[source]["failure_reason"] is None
            if (
                r["case"]["expect"] is None
                and r["group"] == group
                and accepted
                and (r["peer"]["heart_rate_bpm"] is not None)
            ):
                out.append((r["peer"]["heart_rate_bpm"], r["truth"]["heart_rate_bpm"]))
        return out

    print("\nheart rate on accepted scans (should-accept scans only; bpm):")
    print(f"  {'source':24} {'n':>3} {'MAE':>6} {'RMSE':>6} {'<=3bpm':>7}")
    table: dict[str, dict[str, float]] = {}
    for label, source, group in [
        ("ours video, raw/lossless", "ours", "raw"),
        ("ours video, lossy", "ours", "lossy"),
        ("ours trace, raw/lossless", "trace", "raw"),
        ("ours trace, lossy frames", "trace", "lossy"),
        ("peer, raw/lossless", "peer", "raw"),
        ("peer, lossy", "peer", "lossy"),
    ]:
        e = table[label] = _errors(hr_pairs(source, group))
        print(
            f"  {label:24} {e['n']:3d} {e['mae']:6.2f} {e['rmse']:6.2f} {100 * e['within3']:6.0f}%"
        )
    same = _errors(peer_on("ours", "raw"))
    ours_raw = table["ours video, raw/lossless"]
    print(f"  peer on the same raw scans ours accepted: n={same['n']} MAE {same['mae']:.2f}")
    ratio = same["mae"] / ours_raw["mae"] if ours_raw["mae"] > 0 else float("inf")
    print(f"  ratio peer MAE / ours MAE (raw, same scans): {ratio:.2f}x (target >= 2x)")

    breath = [
        (r["ours"]["vitals"]["respiratory_rate_bpm"], r["truth"]["respiratory_rate_bpm"])
        for r in rows
        if r["ours"]["vitals"]["respiratory_rate_bpm"] is not None
    ]
    breath_t = [
        (r["trace"]["vitals"]["respiratory_rate_bpm"], r["truth"]["respiratory_rate_bpm"])
        for r in rows
        if r["trace"]["vitals"]["respiratory_rate_bpm"] is not None
    ]
    b, bt = _errors(breath), _errors(breath_t)
    print(
        f"\nbreathing rate (/min): video MAE {b['mae']:.2f} reported on {b['n']} scans; "
        f"trace MAE {bt['mae']:.2f} reported on {bt['n']} scans"
    )
    for source in ("ours", "trace"):
        for key in ("hrv_sdnn_ms", "hrv_rmssd_ms"):
            pairs = [
                (r[source]["vitals"][key], r["truth"][key])
                for r in rows
                if r[source]["vitals"][key] is not None
            ]
            bias = statistics.mean(a - b for a, b in pairs) if pairs else float("nan")
            print(
                f"HRV {key} ({source}): reported on {len(pairs)} scans, "
                f"MAE {_errors(pairs)['mae']:.1f} ms, mean bias {bias:+.1f} ms"
            )

    print("\nrefusals:")
    for source in ("ours", "trace"):
        for group in ("raw", "lossy"):
            subset = [r for r in rows if r["group"] == group and r["case"]["expect"] is None]
            refused = [r for r in subset if r[source]["failure_reason"] is not None]
            names = ", ".join(f"{r['case']['name']}={r[source]['failure_reason']}" for r in refused)
            print(
                f"  {source:5} {group:5}: {len(refused)}/{len(subset)} good scans refused "
                f"({names or '-'})"
            )
    for r in rows:
        if r["case"]["expect"] is not None:
            peer = r["peer"]["heart_rate_bpm"]
            print(
                f"  {r['case']['name']:18} expected {r['case']['expect']:15} video: "
                f"{r['ours']['failure_reason']}, trace: {r['trace']['failure_reason']}, "
                f"peer answered: {'-' if peer is None else f'{peer:.1f} bpm'} "
                f"(truth {r['truth']['heart_rate_bpm']:.1f})"
            )
    total_refused = sum(r["ours"]["failure_reason"] is not None for r in rows)
    print(f"  overall video refusal rate: {total_refused}/{len(rows)}")

    y4m = [r["ours"]["seconds"] for r in rows if r["case"]["suffix"] == ".y4m"]
    lossless = [r["ours"]["seconds"] for r in rows if r["case"]["codec"] == "h264_lossless"]
    vp8 = [r["ours"]["seconds"] for r in rows if r["case"]["codec"] == "vp8"]
    trace_ms = [r["trace"]["ms"] for r in rows]
    parse_ms = [r["trace"]["parse_ms"] for r in rows]
    peer_s = [r["peer"]["seconds"] for r in rows]
    print("\ntiming (30 s, 640x480, 30 fps, decoding included; median / max):")
    print(
        f"  ours video Y4M          {statistics.median(y4m):.2f} / {max(y4m):.2f} s (target <= 2 s)"
    )
    print(f"  ours video lossless H264 {statistics.median(lossless):.2f} / {max(lossless):.2f} s")
    print(f"  ours video VP8          {statistics.median(vp8):.2f} / {max(vp8):.2f} s")
    print(
        f"  ours trace analysis     {statistics.median(trace_ms):.1f} / {max(trace_ms):.1f} ms"
        f" (target <= 50 ms); JSON parse {statistics.median(parse_ms):.1f} ms"
    )
    print(f"  peer (decode + POS)     {statistics.median(peer_s):.2f} / {max(peer_s):.2f} s")
    ours_s = statistics.median([r["ours"]["seconds"] for r in rows])
    print(
        f"  ratio peer / ours time (median, all videos): {statistics.median(peer_s) / ours_s:.2f}x"
    )
    if not skip_memory:
        peak_mb, seconds, reason = _memory_peak_mb()
        print(
            f"\nmemory: 60 s 1080p VP8 analysed in {seconds:.1f} s, peak RSS {peak_mb:.0f} MB "
            f"(target < 500 MB), result: {reason or 'accepted'}"
        )
    print(
        f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
        " MB, mostly the peer's in-memory frames)"
    )


ROMAN = ("I", "II", "III", "IV", "V", "VI")


def _fair_case(case: GridCase) -> dict[str, Any]:
    directory = OUT / "fairness"
    directory.mkdir(parents=True, exist_ok=True)
    result = run_case(case, directory).to_json()
    bpm, seconds = _peer(Path(result["files"]["video"]))
    result["peer"] = {
        "heart_rate_bpm": bpm,
        "failure_reason": None if bpm else "error",
        "seconds": seconds,
    }
    return result


def _fair_stats(rows: list[dict[str, Any]], source: str) -> tuple[float, float, int, int]:
    """(acceptance, MAE, n more than 5 bpm off, n accepted) of one source over ``rows``."""
    errors = [
        abs(r[source]["heart_rate_bpm"] - r["truth_bpm"])
        for r in rows
        if r[source]["heart_rate_bpm"] is not None
    ]
    mae = statistics.mean(errors) if errors else float("nan")
    return len(errors) / len(rows), mae, sum(e > 5.0 for e in errors), len(errors)


def fairness(width: int) -> None:
    """Acceptance and error per skin tone and per nuisance: video, trace, peer."""
    cases = fairness_grid(width=width, duration_s=30.0)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(_fair_case, cases))
    print(
        f"\nfairness grid: {len(rows)} scans, {width}x{width * 3 // 4}, 30 s, "
        f"{time.perf_counter() - start:.0f} s"
    )
    (OUT / "fairness.json").write_text(json.dumps(rows, indent=1))
    header = f"{'group':10}" + "".join(
        f" | {name:^27}" for name in ("ours: video", "ours: trace", "peer (vitallens POS)")
    )
    print(header)
    print(f"{'':10}" + " | accepted   MAE  >5 bpm off" * 3)
    groups: list[tuple[str, list[dict[str, Any]]]] = [
        (f"tone {ROMAN[t - 1]}", [r for r in rows if r["case"]["tone"] == t])
        for t in FITZPATRICK_TONES
    ]
    groups += [(n, [r for r in rows if r["case"]["nuisance"] == n]) for n in NUISANCES]
    groups.append(("all", rows))
    for label, subset in groups:
        line = f"{label:10}"
        for source in ("video", "trace", "peer"):
            share, mae, far, _ = _fair_stats(subset, source)
            line += f" | {100 * share:7.0f} % {mae:5.2f} {far:5d}      "
        print(line)
    refused = [
        f"{GridCase(**r['case']).name}: video {r['video']['failure_reason']}, "
        f"trace {r['trace']['failure_reason']}"
        for r in rows
        if r["video"]["failure_reason"] or r["trace"]["failure_reason"]
    ]
    print("refused:", "; ".join(refused) or "none")


def codec_timing(repeats: int = 5) -> None:
    """Best and median time of a 30 s 640x480 analysis (decode included) per codec.

    Wall time on a shared machine measures the neighbours as much as the code, so the CPU
    time of the analysis and of decoding alone are printed too: on two free cores the wall
    time is about the larger of the decode's and our own work's, as the two overlap.
    """
    print(
        f"\ntime of a 30 s 640x480 analysis, decode included ({repeats} runs, best / median, "
        f"this machine now, load {os.getloadavg()[0]:.1f}):"
    )
    for name, suffix, codec, kbps in [
        ("Y4M (raw)", ".y4m", None, 0),
        ("H.264 lossless", ".mp4", "h264_lossless", 0),
        ("H.264 4 Mbit/s", ".mp4", "h264", 4000),
        ("VP8 4 Mbit/s", ".webm", "vp8", 4000),
        ("VP9 2 Mbit/s", ".webm", "vp9", 2000),
    ]:
        video = OUT / f"timing-{codec or 'raw'}{suffix}"
        if not Path(str(video) + ".truth.json").exists():
            write_video(
                video,
                PulseSpec(heart_rate_bpm=77, seed=5),
                SceneSpec(duration_s=30.0, motion_px=2.0, seed=5),
                codec=codec,  # type: ignore[arg-type]
                bitrate_kbps=kbps or 2000,
            )
        times, cpu = _timed(lambda video=video: analyze_video(video), repeats)
        _, decode_cpu = _timed(lambda video=video: _decode_only(video), repeats)
        result = analyze_video(video)
        print(
            f"  {name:16} wall {min(times):5.2f} / {statistics.median(times):5.2f} s, "
            f"CPU {min(cpu):5.2f} / {statistics.median(cpu):5.2f} s, of which decoding "
            f"{min(decode_cpu):4.2f} s ({result.failure_reason or 'accepted'})"
        )


def _timed(run: Any, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (this process and its threads) of ``repeats`` calls."""
    times, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpu


def _decode_only(video: Path) -> None:
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 2
        for _ in container.decode(stream):
            pass


if __name__ == "__main__":
    main()
