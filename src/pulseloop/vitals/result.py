"""The result of a scan analysis, and its JSON form.

``VitalsResult.to_json()`` has exactly the keys ``vitals``, ``quality``, ``waveform``,
``spectrum`` and ``failure_reason``; see ``docs/vitals.md`` for every field. A refused scan
has all vitals null and ``failure_reason`` set to a :class:`FailureReason` code; the
quality figures measured before the refusal are still reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pulseloop.vitals.quality import FAILURE_MESSAGES, FailureReason


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True, slots=True)
class Vitals:
    """The vital signs; None where not measured, with the reason in ``unavailable``."""

    heart_rate_bpm: float | None = None
    respiratory_rate_bpm: float | None = None
    hrv_sdnn_ms: float | None = None
    hrv_rmssd_ms: float | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Vitals as JSON, rounded to meaningful precision."""
        return {
            "heart_rate_bpm": _round(self.heart_rate_bpm, 1),
            "respiratory_rate_bpm": _round(self.respiratory_rate_bpm, 1),
            "hrv_sdnn_ms": _round(self.hrv_sdnn_ms, 1),
            "hrv_rmssd_ms": _round(self.hrv_rmssd_ms, 1),
            "unavailable": dict(self.unavailable),
        }


@dataclass(frozen=True, slots=True)
class Quality:
    """Signal and capture quality; None where the analysis stopped before measuring it."""

    snr_db: float | None = None
    confidence: float = 0.0
    face_coverage: float | None = None
    motion: float | None = None
    brightness: float | None = None
    frame_rate_hz: float | None = None
    duration_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Quality as JSON."""
        return {
            "snr_db": _round(self.snr_db, 2),
            "confidence": round(self.confidence, 3),
            "face_coverage": _round(self.face_coverage, 3),
            "motion": _round(self.motion, 3),
            "brightness": _round(self.brightness, 1),
            "frame_rate_hz": _round(self.frame_rate_hz, 2),
            "duration_s": _round(self.duration_s, 2),
        }


@dataclass(frozen=True, slots=True)
class Waveform:
    """The pulse, downsampled for plotting: ``values[i]`` at ``i / fs_hz`` seconds."""

    fs_hz: float
    values: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        """Waveform as JSON."""
        return {"fs_hz": self.fs_hz, "values": [round(v, 3) for v in self.values]}


@dataclass(frozen=True, slots=True)
class PulseSpectrum:
    """The pulse spectrum for plotting: power (max 1) at each frequency in per-minute."""

    freq_bpm: tuple[float, ...]
    power: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        """Spectrum as JSON."""
        return {
            "freq_bpm": [round(f, 1) for f in self.freq_bpm],
            "power": [round(p, 4) for p in self.power],
        }


@dataclass(frozen=True, slots=True)
class VitalsResult:
    """Everything a scan analysis produces."""

    vitals: Vitals
    quality: Quality
    waveform: Waveform | None = None
    spectrum: PulseSpectrum | None = None
    failure_reason: FailureReason | None = None

    @property
    def ok(self) -> bool:
        """True when the scan passed the quality gate."""
        return self.failure_reason is None

    @property
    def failure_message(self) -> str | None:
        """What the person should do differently, when the scan was refused."""
        return None if self.failure_reason is None else FAILURE_MESSAGES[self.failure_reason]

    def to_json(self) -> dict[str, Any]:
        """The JSON-serialisable result (exactly the five documented keys)."""
        return {
            "vitals": self.vitals.to_json(),
            "quality": self.quality.to_json(),
            "waveform": None if self.waveform is None else self.waveform.to_json(),
            "spectrum": None if self.spectrum is None else self.spectrum.to_json(),
            "failure_reason": None if self.failure_reason is None else str(self.failure_reason),
        }
