"""Render a synthetic face video: a real photo whose skin pulses, under a camera's flaws.

Shapes: ``render(spec) -> iterator of Frame``, each ``rgb (height, width, 3) uint8`` and
``face (4,)`` the true face box ``[x, y, w, h]`` (or None when the face is out of view).

The face is scikit-image's bundled astronaut photo (Eileen Collins), cropped to head and
shoulders. Skin pixels (a YCrCb skin threshold inside the face oval) are multiplied by
``1 + amplitude * pulse(t) * signature`` where ``signature`` is the relative pulsatile
strength of R, G, B in skin (about 0.33 : 0.77 : 0.53, de Haan & van Leest 2014, "Improved
motion robustness of remote-PPG by using the blood volume pulse signature"). ``skin_tone``
(Fitzpatrick 1-6, :mod:`pulseloop.vitals.synthetic.skin`) recolours all skin of the photo
(face, ears, neck) and lowers and reshapes the signature as melanin does. Then the whole
frame gets illumination drift and flicker (the same gain on all channels), head motion
(translation), sensor noise and 8-bit quantisation, in that order, as in a camera.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt
from skimage import data as skimage_data

from pulseloop.vitals.synthetic.pulse import BeatTrain, pulse_at
from pulseloop.vitals.synthetic.skin import pulse_signature, skin_gain

_astronaut: Callable[[], npt.NDArray[np.uint8]] = skimage_data.astronaut
PULSE_SIGNATURE = np.array([0.33, 0.77, 0.53], dtype=np.float32) / 0.77  # green = 1
_CROP = (10, 250, 65, 385)  # rows, cols of the astronaut photo: 320 x 240 head and shoulders
_FACE_IN_CROP = (112.0, 56.0, 95.0, 95.0)  # Haar face box inside the crop, x y w h
_OVAL_IN_CROP = (159.0, 122.5, 46.0, 59.0)  # face oval centre x, y and half-axes


@dataclass(frozen=True, slots=True)
class SceneSpec:
    """Camera, lighting and subject knobs. Amplitudes are fractions unless named in px."""

    duration_s: float = 10.0
    fps: float = 30.0
    width: int = 640
    height: int = 480
    pulse_amplitude: float = 0.003  # green-channel change per unit pulse (darker skin: less)
    brightness: float = 1.0  # global exposure gain (0.1 = very dark room)
    noise_sigma: float = 2.0  # sensor noise per pixel, 0-255 units
    motion_px: float = 0.0  # slow head sway amplitude (0.2-0.45 Hz)
    shake_px: float = 0.0  # fast jerky motion amplitude (1-3 Hz, inside the pulse band)
    sway_px: float = 0.0  # periodic head sway amplitude at ``sway_hz`` (x; y at half, 90 deg)
    sway_hz: float = 0.9  # e.g. rocking or nodding in time, inside the pulse band
    skin_tone: int | None = None  # Fitzpatrick 1-6; None = the photo's own skin (type II)
    drift: float = 0.0  # illumination change over the whole scan (0.1 = +10 %)
    flicker: float = 0.0  # flicker amplitude after aliasing by the frame rate
    flicker_hz: float = 9.7  # apparent flicker frequency
    frame_drop_rate: float = 0.0  # share of frames the camera skips
    timestamp_jitter_ms: float = 1.0
    face_visible: bool = True  # False: the camera sees the wall behind the subject
    face_lost_after_s: float | None = None  # the subject walks out of view at this time
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    """One rendered frame with its capture time and true face box."""

    t_s: float
    rgb: npt.NDArray[np.uint8]
    face: npt.NDArray[np.float64] | None


def _recolour(
    image: npt.NDArray[np.uint8], skin: npt.NDArray[np.bool_], centre: tuple[int, int], tone: int
) -> npt.NDArray[np.uint8]:
    """All skin of the subject (the skin blob at the face centre: face, neck) as ``tone``."""
    # Only near the head: the backdrop has skin-coloured patches that would join the blob.
    near = np.zeros(skin.shape, dtype=np.uint8)
    half = (round(0.2 * skin.shape[1]), round(0.45 * skin.shape[0]))
    cv2.ellipse(near, (centre[0], centre[1] + half[1] // 3), half, 0, 0, 360, 1, -1)
    closed = cv2.morphologyEx(
        (skin & (near > 0)).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)
    )
    _, labels = cv2.connectedComponents(closed)
    label = labels[centre[1], centre[0]]
    if label == 0:
        return image
    blob = cv2.GaussianBlur((labels == label).astype(np.float32), (0, 0), 1.5)[..., None]
    gain = skin_gain(tone).astype(np.float32)
    out = image.astype(np.float32) * (1.0 + blob * (gain - 1.0))
    return np.asarray(np.clip(out + 0.5, 0, 255), dtype=np.uint8)


@cache
def _base_images(
    width: int, height: int, tone: int | None = None
) -> tuple[npt.NDArray[np.float32], ...]:
    """The still scene, the skin mask, and the wall-only scene at ``width`` x ``height``."""
    r0, r1, c0, c1 = _CROP
    crop = _astronaut()[r0:r1, c0:c1]
    image = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)
    sx, sy = width / (c1 - c0), height / (r1 - r0)
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    skin = (ycc[..., 1] > 135) & (ycc[..., 1] < 180) & (ycc[..., 2] > 80) & (ycc[..., 2] < 130)
    cx, cy, ax, ay = _OVAL_IN_CROP
    if tone is not None:
        image = _recolour(
            np.asarray(image, dtype=np.uint8), skin, (round(cx * sx), round(cy * sy)), tone
        )
    oval = np.zeros((height, width), dtype=np.uint8)
    cv2.ellipse(
        oval, (round(cx * sx), round(cy * sy)), (round(ax * sx), round(ay * sy)), 0, 0, 360, 1, -1
    )
    mask = cv2.GaussianBlur((skin & (oval > 0)).astype(np.float32), (0, 0), 1.5)
    wall_src = _astronaut()[0:60, 0:80]  # plain backdrop, no face
    wall = cv2.resize(wall_src, (width, height), interpolation=cv2.INTER_CUBIC)
    return image.astype(np.float32), np.asarray(mask, dtype=np.float32), wall.astype(np.float32)


def true_face_box(spec: SceneSpec) -> npt.NDArray[np.float64]:
    """The still scene's face box at the spec's frame size, ``[x, y, w, h]``."""
    r0, r1, c0, c1 = _CROP
    sx, sy = spec.width / (c1 - c0), spec.height / (r1 - r0)
    x, y, w, h = _FACE_IN_CROP
    return np.array([x * sx, y * sy, w * sx, h * sy], dtype=np.float64)


def frame_times(spec: SceneSpec) -> npt.NDArray[np.float64]:
    """Capture times (s) after frame drops and timestamp jitter; strictly increasing."""
    rng = np.random.default_rng(spec.seed + 1)
    n = round(spec.duration_s * spec.fps)
    t = np.arange(n) / spec.fps
    keep = rng.random(n) >= spec.frame_drop_rate
    keep[0] = True
    t = t[keep] + rng.normal(0.0, spec.timestamp_jitter_ms / 1000.0, int(keep.sum()))
    t[0] = 0.0
    return np.maximum.accumulate(t + np.arange(t.size) * 1e-6)


def head_offset_px(spec: SceneSpec, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Head translation ``(n, 2)`` in px: slow sway plus optional fast shake."""
    rng = np.random.default_rng(spec.seed + 2)
    ph = rng.uniform(0, 2 * np.pi, 6)
    dx = spec.motion_px * (
        0.6 * np.sin(2 * np.pi * 0.23 * t_s + ph[0]) + 0.4 * np.sin(2 * np.pi * 0.41 * t_s + ph[1])
    )
    dy = 0.5 * spec.motion_px * np.sin(2 * np.pi * 0.31 * t_s + ph[2])
    if spec.sway_px:
        # A periodic rock of the head: a rhythm, unlike the slow, irregular sway above.
        phase = 2 * np.pi * spec.sway_hz * t_s + ph[5]
        dx = dx + spec.sway_px * np.sin(phase)
        dy = dy + 0.5 * spec.sway_px * np.cos(phase)
    if spec.shake_px:
        f = rng.uniform(1.0, 3.0, 2)
        dx = dx + spec.shake_px * np.sin(2 * np.pi * f[0] * t_s + ph[3])
        dy = dy + spec.shake_px * np.sin(2 * np.pi * f[1] * t_s + ph[4])
    return np.stack([dx, dy], axis=1)


def render(spec: SceneSpec, train: BeatTrain) -> Iterator[Frame]:
    """Yield the frames of the scan, one at a time (memory stays at a few frames)."""
    image, mask, wall = _base_images(spec.width, spec.height, spec.skin_tone)
    if not spec.face_visible:
        image, mask = wall, np.zeros_like(mask)
    t_all = frame_times(spec)
    offsets = head_offset_px(spec, t_all)
    pulse = pulse_at(train, t_all).astype(np.float32)
    gain = spec.brightness * (
        1.0
        + spec.drift * t_all / max(spec.duration_s, 1e-9)
        + spec.flicker * np.sin(2 * np.pi * spec.flicker_hz * t_all)
    )
    ys, xs = np.nonzero(mask > 1e-3)
    y0, y1, x0, x1 = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) if ys.size else (0, 0, 0, 0)
    signature = (
        PULSE_SIGNATURE
        if spec.skin_tone is None
        else pulse_signature(spec.skin_tone).astype(np.float32)
    )
    sub_mask = mask[y0:y1, x0:x1, None] * signature
    noise = np.empty((spec.height, spec.width, 3), dtype=np.float32)
    flat_noise = noise.reshape(spec.height, spec.width * 3)
    cv2.setRNGSeed(spec.seed + 3)
    face0 = true_face_box(spec)
    for i, t_s in enumerate(t_all):
        frame = image.copy()
        frame[y0:y1, x0:x1] *= 1.0 + spec.pulse_amplitude * pulse[i] * sub_mask
        shift = np.array([[1, 0, offsets[i, 0]], [0, 1, offsets[i, 1]]], dtype=np.float32)
        if offsets[i].any():
            moved = cv2.warpAffine(
                frame, shift, (spec.width, spec.height), borderMode=cv2.BORDER_REFLECT
            )
            frame = np.asarray(moved, dtype=np.float32)
        frame *= np.float32(gain[i])
        face: npt.NDArray[np.float64] | None = face0 + np.array([*offsets[i], 0.0, 0.0])
        if spec.face_lost_after_s is not None and t_s >= spec.face_lost_after_s:
            frame[:] = wall * np.float32(gain[i])
            face = None
        if not spec.face_visible:
            face = None
        if spec.noise_sigma > 0:
            # Filled as one channel (a scalar mean/sigma on the 3-channel array would only fill
            # the first channel): the same numbers as per-channel sigmas, 40 % faster.
            cv2.randn(flat_noise, np.zeros(1), np.full(1, spec.noise_sigma))
            frame += noise
        rgb = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
        yield Frame(t_s=float(t_s), rgb=rgb, face=face)
