"""A skin-tone scale for synthetic faces: Fitzpatrick I-VI, from reflectance and melanin.

Shapes: ``skin_gain(tone) -> (3,)`` RGB gain applied to the photo's skin pixels;
``pulse_signature(tone) -> (3,)`` relative pulsatile strength of R, G, B (green of the
reference tone = 1).

Melanin in the epidermis absorbs light on its way to the blood-perfused dermis and back,
much more at short wavelengths (absorption ~ lambda^-3.3, Jacques 2013, "Optical properties
of biological tissues: a review", Phys. Med. Biol. 58(11)). Two consequences, both modelled:

1. Lower reflectance, most in blue and green: the skin colours below are camera sRGB means
   of facial skin under one fixed exposure, light (I) to very dark (VI), as reported for
   Fitzpatrick groups (e.g. the individual typology angle bands of Chardon et al. 1991,
   Int. J. Cosmet. Sci. 13(4)); the photo's own skin is tone II.
2. A weaker pulse: the share of the reflected light that has travelled through the dermis
   (the only part the blood volume pulse modulates) falls as the skin darkens, because the
   surface reflection of the stratum corneum (here ``SURFACE_REFLECTANCE``) stays while the
   diffuse part shrinks. With the colours below this makes the green pulse 2.4x weaker for
   tone VI than for tone I, and blue almost vanish, in line with the 2-3x lower pulsatile
   amplitude and the larger rPPG errors reported for Fitzpatrick V-VI (Nowara et al. 2020,
   "A meta-analysis of the impact of skin type and gender on non-contact photoplethysmography
   measurements", CVPR Workshops; Dasari et al. 2021, "Evaluation of biases in remote
   photoplethysmography methods", npj Digit. Med. 4).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Mean facial-skin sRGB per Fitzpatrick type at the reference exposure (index 0 = type I).
SKIN_RGB: tuple[tuple[float, float, float], ...] = (
    (206.0, 174.0, 152.0),  # I
    (195.0, 163.3, 137.8),  # II: the astronaut photo's own skin
    (172.0, 133.0, 104.0),  # III
    (142.0, 101.0, 73.0),  # IV
    (106.0, 71.0, 49.0),  # V
    (74.0, 48.0, 34.0),  # VI
)
FITZPATRICK_TONES = tuple(range(1, len(SKIN_RGB) + 1))
REFERENCE_TONE = 2
# Absolute reflectance of an sRGB value of 255 and of the skin's surface (specular and
# epidermal scatter, which never meets blood).
WHITE_REFLECTANCE = 0.8
SURFACE_REFLECTANCE = 0.10
MIN_DERMAL_SHARE = 0.05
# Relative pulsatile strength of R, G, B in light skin (de Haan & van Leest 2014).
_SIGNATURE_LIGHT = np.array([0.33, 0.77, 0.53], dtype=np.float64)


def _rgb(tone: int) -> FloatArray:
    if tone not in FITZPATRICK_TONES:
        raise ValueError(f"skin_tone {tone!r} is not a Fitzpatrick type; use 1-6")
    return np.asarray(SKIN_RGB[tone - 1], dtype=np.float64)


def dermal_share(tone: int) -> FloatArray:
    """``(3,)`` share of the reflected light per channel that passed through the dermis."""
    reflectance = _rgb(tone) / 255.0 * WHITE_REFLECTANCE
    return np.maximum(1.0 - SURFACE_REFLECTANCE / reflectance, MIN_DERMAL_SHARE)


def skin_gain(tone: int) -> FloatArray:
    """``(3,)`` gain that turns the photo's skin (tone II) into ``tone``."""
    return _rgb(tone) / _rgb(REFERENCE_TONE)


def pulse_signature(tone: int) -> FloatArray:
    """``(3,)`` pulsatile strength of R, G, B for ``tone``; the reference's green is 1."""
    light = _SIGNATURE_LIGHT / _SIGNATURE_LIGHT[1]
    reference = dermal_share(REFERENCE_TONE)[1]
    return np.asarray(light * dermal_share(tone) / reference, dtype=np.float64)
