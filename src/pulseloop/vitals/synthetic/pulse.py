"""A synthetic blood-volume pulse with known heart rate, HRV and breathing.

Shapes: ``pulse_at(t_s (n,)) -> (n,)`` in arbitrary units (peak-to-trough about 1).

The beat train is built from inter-beat intervals (IBIs) whose mean is exactly
``60 / heart_rate_bpm``. HRV comes from respiratory sinus arrhythmia (the IBI follows the
breath: frequency modulation), a slow 0.1 Hz (Mayer-wave) component and beat-to-beat jitter.
Breathing also modulates the pulse amplitude and its baseline, the three modulations that
respiratory-rate estimators read (Charlton et al. 2016, "An assessment of algorithms to
estimate respiratory rate from the ECG and PPG", Physiol. Meas. 37(4)). Each beat is two
Gaussian waves, the systolic peak and the later, smaller diastolic wave, which gives the
pulse the harmonics and dicrotic shape of a real PPG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PulseSpec:
    """What the synthetic subject's heart and lungs do."""

    heart_rate_bpm: float = 72.0
    respiratory_rate_bpm: float = 15.0
    rsa_ms: float = 40.0  # peak IBI swing with each breath (frequency modulation)
    mayer_ms: float = 20.0  # 0.1 Hz IBI swing
    jitter_ms: float = 12.0  # beat-to-beat IBI noise
    amplitude_modulation: float = 0.15  # fraction of pulse amplitude swung by breathing
    baseline_modulation: float = 0.25  # baseline swing, in pulse amplitudes
    seed: int = 0


@dataclass(frozen=True, slots=True)
class BeatTrain:
    """Beat onsets (s) and the truth derived from them."""

    onsets_s: FloatArray
    spec: PulseSpec

    @property
    def ibi_ms(self) -> FloatArray:
        """Inter-beat intervals in ms, ``(n_beats - 1,)``."""
        return np.diff(self.onsets_s) * 1000.0

    def heart_rate_bpm(self, start_s: float, end_s: float) -> float:
        """Mean heart rate over the beats inside ``[start_s, end_s]``."""
        ibi = self._ibi_within(start_s, end_s)
        return float(60_000.0 / ibi.mean())

    def sdnn_ms(self, start_s: float, end_s: float) -> float:
        """Standard deviation of the IBIs inside the window."""
        return float(np.std(self._ibi_within(start_s, end_s), ddof=1))

    def rmssd_ms(self, start_s: float, end_s: float) -> float:
        """Root mean square of successive IBI differences inside the window."""
        return float(np.sqrt(np.mean(np.diff(self._ibi_within(start_s, end_s)) ** 2)))

    def _ibi_within(self, start_s: float, end_s: float) -> FloatArray:
        inside = (self.onsets_s >= start_s) & (self.onsets_s <= end_s)
        return np.diff(self.onsets_s[inside]) * 1000.0


def beat_train(spec: PulseSpec, duration_s: float) -> BeatTrain:
    """Beat onsets covering ``[-2 s, duration_s + 2 s]`` with the spec's HRV."""
    rng = np.random.default_rng(spec.seed)
    mean_ibi_s = 60.0 / spec.heart_rate_bpm
    n_beats = int((duration_s + 4.0) / mean_ibi_s) + 3
    breath_hz = spec.respiratory_rate_bpm / 60.0
    breath_phase = rng.uniform(0, 2 * np.pi)
    mayer_phase = rng.uniform(0, 2 * np.pi)
    ibis = np.empty(n_beats)
    # HRV shrinks as the heart speeds up; the spec's swings are those at 75 bpm.
    scale = (mean_ibi_s / 0.8) ** 1.5
    t = -2.0
    for k in range(n_beats):
        # RSA: the heart speeds up on inspiration, so the IBI follows the breath (FM).
        rsa = spec.rsa_ms * np.sin(2 * np.pi * breath_hz * t + breath_phase)
        mayer = spec.mayer_ms * np.sin(2 * np.pi * 0.1 * t + mayer_phase)
        swing_ms = scale * (rsa + mayer + rng.normal(0.0, spec.jitter_ms))
        ibis[k] = mean_ibi_s + swing_ms / 1000.0
        t += ibis[k]
    # The IBIs are shifted so their mean is exactly the requested rate (the ground truth).
    ibis += mean_ibi_s - ibis.mean()
    onsets = -2.0 + np.concatenate(([0.0], np.cumsum(ibis)))
    return BeatTrain(onsets_s=onsets, spec=spec)


def pulse_at(train: BeatTrain, t_s: FloatArray) -> FloatArray:
    """The pulse waveform sampled at ``t_s``: beats, amplitude and baseline modulation."""
    spec = train.spec
    t_s = np.asarray(t_s, dtype=np.float64)
    onsets = train.onsets_s
    idx = np.clip(np.searchsorted(onsets, t_s, side="right") - 1, 0, len(onsets) - 2)
    ibi = onsets[idx + 1] - onsets[idx]
    phase = (t_s - onsets[idx]) / ibi
    # Systolic wave at 25 % of the beat, diastolic (dicrotic) wave at 60 %, half as high.
    systolic = np.exp(-0.5 * ((phase - 0.25) / 0.10) ** 2)
    diastolic = 0.45 * np.exp(-0.5 * ((phase - 0.60) / 0.12) ** 2)
    beat = systolic + diastolic
    beat -= 0.28  # roughly zero-mean per beat
    breath = np.sin(2 * np.pi * spec.respiratory_rate_bpm / 60.0 * t_s + 0.7)
    amplitude = 1.0 + spec.amplitude_modulation * breath
    baseline = spec.baseline_modulation * breath
    return np.asarray(amplitude * beat + baseline, dtype=np.float64)
