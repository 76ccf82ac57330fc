/**
 * The live checks before filming starts: face found, in the middle, near enough (not too
 * near), still, well lit. Each check has hysteresis (enter, leave) so it does not flicker
 * at its edge; the checks list shows them (not a live region: its labels never change,
 * only the marks, which screen readers read on demand).
 */
import { setText } from "./dom.js";

const DARK_SCENE_LUMA = 40; // below: "too dark" rather than "no face" (vitals MIN_BRIGHTNESS)
const CENTRED = [0.15, 0.19]; // |dx| of the face centre, fraction of the frame width
const NEAR_MIN = [0.2, 0.18]; // face width / frame width
const NEAR_MAX = [0.8, 0.85];
const STILL = [0.3, 0.45]; // face widths per second

/**
 * `evaluate({face, width, height, speed, lighting, sceneLuma})` -> {found, blocking}:
 * `blocking` is the reason filming cannot start (the first failing one of found, near,
 * centred), or null when it can. `sceneLuma()` (whole-frame brightness) is asked only
 * when no face is found.
 */
export function createChecks(root) {
  const items = {};
  for (const item of root.querySelectorAll("[data-check]")) items[item.dataset.check] = item;
  const passing = { found: false, centred: false, near: false, still: false, lit: false };

  /** A check with hysteresis: it passes below `enter`, and fails again only past `leave`. */
  function within(name, value, [enter, leave], below) {
    const limit = passing[name] ? leave : enter;
    return below ? value < limit : value > limit;
  }

  function show(name, ok) {
    passing[name] = ok;
    const item = items[name];
    const value = ok ? "true" : "false";
    if (item.dataset.ok === value) return;
    item.dataset.ok = value;
    setText(item.querySelector("[data-said]"), ok ? ": yes" : ": not yet");
  }

  return function evaluate({ face, width, height, speed, lighting, sceneLuma }) {
    const found = face !== null;
    show("found", found);
    if (!found) {
      for (const name of ["centred", "near", "still", "lit"]) show(name, false);
      const scene = sceneLuma();
      const dark = scene !== null && scene < DARK_SCENE_LUMA;
      return { found, blocking: dark ? "too_dark" : "no_face" };
    }
    const [x, y, w, h] = face;
    const dx = Math.abs((x + w / 2) / width - 0.5);
    const dy = Math.abs((y + h / 2) / height - 0.5);
    const centred = within("centred", Math.max(dx, dy * 0.75), CENTRED, true);
    show("centred", centred);
    const size = w / width;
    const notTooSmall = within("near", size, NEAR_MIN, false);
    const notTooBig = size < (passing.near ? NEAR_MAX[1] : NEAR_MAX[0]);
    show("near", notTooSmall && notTooBig);
    show("still", within("still", speed, STILL, true));
    const { luma: faceLuma, balance } = lighting;
    const lit =
      faceLuma === null ||
      (faceLuma >= 50 && faceLuma <= 225 && (balance === null || balance <= 0.25));
    show("lit", lit);
    let blocking = null;
    if (!notTooSmall) blocking = "face_too_small";
    else if (!notTooBig) blocking = "face_too_close";
    else if (!centred) blocking = "face_not_centred";
    return { found, blocking };
  };
}
