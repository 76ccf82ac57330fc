/**
 * Guidance: one hint at a time, help after a while, and an end. The page counts the time
 * each failing check holds the capture back: after `helpAfterMs` it shows help for the
 * check that failed most, after `giveUpAfterMs` it says the scan must end with that
 * check's reason (the page then POSTs /abandon, which wakes the clinic's run).
 */
import { setText } from "./dom.js";

const HINT_SETTLE_MS = 700; // a new hint must hold this long before it is shown and announced

const HINTS = {
  no_face: "Looking for your face. Hold the phone in front of your face.",
  too_dark: "It's too dark to see your face. Face a window or a lamp.",
  face_too_small: "Bring the phone closer to your face.",
  face_too_close: "Move the phone a little further away.",
  face_not_centred: "Move your face to the middle of the oval.",
  aligned: "Good. Hold still, the scan is about to start.",
  capturing: "Hold still and keep your face in the oval.",
};

const HELP = {
  no_face:
    "We can't see a face yet. Check that nothing covers the front camera (the small lens " +
    "above the screen), hold the phone upright at eye level, about 30 cm away, and look at " +
    "the screen.",
  too_dark:
    "It's too dark for the camera. Turn on a light or sit facing a window, so the light " +
    "falls on your face, not behind you.",
  face_too_small:
    "Your face looks small to the camera. Bend your elbows and bring the phone to about " +
    "30 cm (one foot) from your face, until your face fills the oval.",
  face_too_close:
    "The phone is too close. Hold it further away, about 30 cm (one foot), so your whole " +
    "face, from forehead to chin, fits inside the oval.",
  face_not_centred:
    "Your face is near the edge of the picture. Hold the phone straight in front of your " +
    "face and move it until your face sits inside the oval.",
};

export function createGuidance({ root, prompt, help, helpText, helpAfterMs, giveUpAfterMs }) {
  let hintShown = null;
  let hintWanted = null;
  let hintSince = 0;
  let tryingMs = 0; // time the checks held filming back, since the camera started
  let failingMs = {}; // that time per reason
  let helpFor = null;

  function mostFailing() {
    let best = null;
    for (const [reason, ms] of Object.entries(failingMs)) {
      if (best === null || ms > failingMs[best]) best = reason;
    }
    return best || "no_face";
  }

  return {
    /** Start counting afresh (the camera started). */
    reset() {
      tryingMs = 0;
      failingMs = {};
      helpFor = null;
      hintShown = null;
      hintWanted = null;
    },

    /** Show `key`'s hint once it has been wanted for HINT_SETTLE_MS (`now` null: at once). */
    hint(key, now) {
      if (key !== hintWanted) {
        hintWanted = key;
        hintSince = now === null ? -Infinity : now;
      }
      if (key === hintShown) return;
      if (now !== null && now - hintSince < HINT_SETTLE_MS) return;
      hintShown = key;
      setText(prompt, HINTS[key] || key);
    },

    /** Say `text` now (an event such as a restart), until the next hint replaces it. */
    say(text) {
      hintShown = text;
      hintWanted = text;
      setText(prompt, text);
    },

    /** Time spent trying that no check is to blame for (losing the face mid-capture). */
    addTrying(ms) {
      tryingMs += ms;
    },

    /**
     * Count `dt` ms against the reason filming cannot start; shows help when due. Returns
     * the reason to end the scan with once the time is up, else null.
     */
    struggle(blocking, dt) {
      tryingMs += dt;
      failingMs[blocking] = (failingMs[blocking] || 0) + dt;
      const reason = mostFailing();
      if (tryingMs >= giveUpAfterMs) return reason;
      if (tryingMs >= helpAfterMs && reason !== helpFor) {
        helpFor = reason;
        setText(helpText, HELP[reason]);
        help.hidden = false;
        root.dataset.help = reason;
      }
      return null;
    },

    /** What the page tried, for /abandon: seconds in all and per failing check. */
    summary() {
      const failing = {};
      for (const [key, ms] of Object.entries(failingMs)) failing[key] = Math.round(ms / 100) / 10;
      return { tried_s: Math.round(tryingMs / 100) / 10, failing_s: failing };
    },
  };
}
