"""A simulated patient: films a synthetic face and uploads it the way the scan page does.

The page finds the face in each camera frame and uploads per-frame region colours (never
the video). Here the "camera" is a synthetic face video with a known pulse
(:mod:`pulseloop.vitals.synthetic`), the face is found by the server-side detector, and
the same colour trace is POSTed to the scan link. Needs the vitals extra.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class PatientVisit:
    """What the simulated patient did and what was true."""

    heart_rate_bpm: float
    respiratory_rate_bpm: float
    upload_status: int
    frames: int


def film_trace(heart_rate_bpm: float, duration_s: float = 20.0, seed: int = 7) -> tuple[bytes, Any]:
    """Render a synthetic face video, turn it into the page's colour trace.

    Returns the upload body and the ground truth.
    """
    from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video
    from pulseloop.vitals.video import trace_from_video

    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "face.y4m"
        truth = write_video(
            video,
            PulseSpec(heart_rate_bpm=heart_rate_bpm, seed=seed),
            SceneSpec(duration_s=duration_s, seed=seed),
        )
        trace = trace_from_video(video)
    return json.dumps(trace.to_json()).encode(), truth


def upload(scan_url: str, body: bytes) -> int:
    """POST the trace to the scan link; return the HTTP status."""
    request = urllib.request.Request(
        scan_url.rstrip("/") + "/trace",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # the scan link we made
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def visit(scan_url: str, heart_rate_bpm: float, duration_s: float = 20.0) -> PatientVisit:
    """Do the scan at ``scan_url`` as a patient whose heart beats at ``heart_rate_bpm``."""
    body, truth = await asyncio.to_thread(film_trace, heart_rate_bpm, duration_s)
    status = await asyncio.to_thread(upload, scan_url, body)
    frames = len(json.loads(body)["frames"])
    return PatientVisit(truth.heart_rate_bpm, truth.respiratory_rate_bpm, status, frames)
