/**
 * The front camera: open it, lock its exposure and white balance while filming, and say
 * which modes it reports (they go up with the trace, `camera`, schema version 2).
 */

export const CAMERA_ERRORS = {
  NotAllowedError:
    "Camera access was blocked. To scan, allow this page to use the camera " +
    "(in your browser's site settings), then press Try again.",
  SecurityError:
    "Camera access was blocked. To scan, allow this page to use the camera " +
    "(in your browser's site settings), then press Try again.",
  NotFoundError: "No camera was found. Open this link on a phone or a computer with a camera.",
  OverconstrainedError:
    "No suitable camera was found. Open this link on a phone with a front camera.",
  NotReadableError:
    "The camera is being used by another app. Close other apps that use the camera, " +
    "then press Try again.",
};

const CAMERA_MODES = new Set(["none", "manual", "single-shot", "continuous"]);

/** The front camera's stream at about 640x480 and 30 frames a second. */
export function openCamera() {
  return navigator.mediaDevices.getUserMedia({
    audio: false,
    video: {
      facingMode: "user",
      width: { ideal: 640 },
      height: { ideal: 480 },
      frameRate: { ideal: 30 },
    },
  });
}

/**
 * Fixed exposure and white balance while filming (`lock`), automatic again otherwise,
 * where the camera allows it: automatic exposure hunting changes the skin's brightness by
 * far more than the pulse does. Resolves with "locked", "auto", "refused" or "unsupported".
 */
export async function lockCamera(stream, lock) {
  const track = stream && stream.getVideoTracks()[0];
  const caps = track && track.getCapabilities ? track.getCapabilities() : {};
  const wanted = {};
  const modes = { exposureMode: caps.exposureMode, whiteBalanceMode: caps.whiteBalanceMode };
  for (const [name, supported] of Object.entries(modes)) {
    const mode = lock ? "manual" : "continuous";
    if (Array.isArray(supported) && supported.includes(mode)) wanted[name] = mode;
  }
  if (!Object.keys(wanted).length) return "unsupported";
  try {
    await track.applyConstraints({ advanced: [wanted] });
    const settings = track.getSettings();
    return lock && settings.exposureMode === "manual" ? "locked" : "auto";
  } catch (error) {
    return "refused";
  }
}

/** Exposure and white-balance modes as the camera reports them now (null: not reported). */
export function cameraModes(stream) {
  const track = stream && stream.getVideoTracks()[0];
  const settings = track && track.getSettings ? track.getSettings() : {};
  const mode = (value) => (CAMERA_MODES.has(value) ? value : null);
  return {
    exposure_mode: mode(settings.exposureMode),
    white_balance_mode: mode(settings.whiteBalanceMode),
  };
}
