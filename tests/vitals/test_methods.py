"""POS and CHROM on constructed colour signals: shapes, and the pulse survives intensity noise."""

from __future__ import annotations

import numpy as np
import pytest

from pulseloop.vitals.methods import chrom, pos
from pulseloop.vitals.spectrum import peak_hz, power_spectrum, snr_db

FS_HZ = 30.0
SKIN = np.array([180.0, 140.0, 110.0])
PULSE_DIRECTION = np.array([0.33, 0.77, 0.53])


def _colours(f_hz: float, n: int = 600, seed: int = 0) -> np.ndarray:
    """(n, 2 regions, 3): skin x (1 + pulse x signature) x strong shared intensity change."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS_HZ
    pulse = 0.003 * np.sin(2 * np.pi * f_hz * t)
    intensity = 1.0 + 0.05 * np.sin(2 * np.pi * 0.3 * t) + 0.01 * rng.standard_normal(n)
    rgb = SKIN * (1 + pulse[:, None] * PULSE_DIRECTION) * intensity[:, None]
    rgb = rgb + 0.05 * rng.standard_normal(rgb.shape)
    return np.stack([rgb, rgb * 1.1], axis=1)


@pytest.mark.parametrize("method", [pos, chrom])
@pytest.mark.parametrize("f_hz", [0.8, 1.5, 2.9])
def test_method_recovers_pulse_frequency_through_intensity_noise(
    method: object, f_hz: float
) -> None:
    colours = _colours(f_hz)
    out = method(colours, FS_HZ)  # type: ignore[operator]
    assert out.shape == (600, 2)
    for region in range(2):
        spectrum = power_spectrum(out[:, region], FS_HZ)
        found = peak_hz(spectrum, (0.7, 3.2))
        assert abs(found - f_hz) < 0.02
        assert snr_db(spectrum, found) > 5.0


def test_green_channel_alone_is_swamped_by_the_intensity_noise() -> None:
    # The point of POS/CHROM: the raw green channel does not show the pulse here.
    green = _colours(1.5)[:, 0, 1]
    spectrum = power_spectrum(green, FS_HZ)
    assert (
        snr_db(spectrum, 1.5)
        < snr_db(power_spectrum(pos(_colours(1.5), FS_HZ)[:, 0], FS_HZ), 1.5) - 10
    )


@pytest.mark.parametrize("method", [pos, chrom])
def test_method_refuses_too_few_samples(method: object) -> None:
    with pytest.raises(ValueError, match="samples"):
        method(np.ones((10, 3)), FS_HZ)  # type: ignore[operator]


def test_peak_interpolation_is_sub_bin() -> None:
    t = np.arange(300) / FS_HZ
    spectrum = power_spectrum(np.sin(2 * np.pi * 1.2345 * t), FS_HZ, min_fft=512)
    bin_hz = spectrum.freq_hz[1]
    assert abs(peak_hz(spectrum, (0.7, 3.0)) - 1.2345) < bin_hz / 4
