/**
 * The page's screens (intro, camera, problem, ended, processing, done, failed): one is
 * shown at a time, its heading takes the focus (screen readers start there), and the root's
 * `data-state` says which (tests and support read it). No camera or server work here.
 */
import { $, setText } from "./dom.js";

export function createScreens(root, captureS) {
  const ENDED_TEXT = {
    expired: "Scan links only work for a limited time, and this one has run out.",
    during:
      "This link ran out while you were scanning, so the scan could not be used. " +
      "You don't need to do anything on this page.",
    soon:
      "This link runs out too soon to finish a scan: a scan takes about " +
      captureS +
      " seconds.",
    gone: "This link can't be used any more.",
  };

  function show(screen, state) {
    for (const section of root.querySelectorAll(".screen")) {
      section.hidden = section.id !== "screen-" + screen;
    }
    root.dataset.state = state || screen;
    const title = $("screen-" + screen).querySelector("h1");
    if (title) title.focus();
  }

  return {
    show,

    /** A problem the patient can fix, with "Try again" when `canRetry`. */
    problem(text, canRetry) {
      $("problem-text").textContent = text;
      $("retry").hidden = !canRetry;
      show("problem");
    },

    /** The link is dead (or about to be): `kind` is expired, during, soon or gone. */
    ended(kind) {
      setText(
        $("ended-heading"),
        kind === "soon" ? "This link is about to expire" : "This scan link has expired",
      );
      setText($("ended-text"), ENDED_TEXT[kind] || ENDED_TEXT.expired);
      show("ended");
    },

    done(vitals) {
      const heart = vitals.heart_rate_bpm;
      const breath = vitals.respiratory_rate_bpm;
      setText(
        root.querySelector('[data-vital="heart_rate_bpm"]'),
        typeof heart === "number" ? Math.round(heart) + " beats per minute" : "Not measured",
      );
      setText(
        root.querySelector('[data-vital="respiratory_rate_bpm"]'),
        typeof breath === "number"
          ? Math.round(breath) + " breaths per minute"
          : "Not measured this time",
      );
      show("done", "completed");
    },

    failed(scan) {
      setText($("failed-reason"), scan.failure_message || "The scan could not be measured.");
      setText($("failed-tip-text"), scan.failure_tip || "");
      $("failed-tip").hidden = !scan.failure_tip;
      if (scan.failure_reason) root.dataset.reason = scan.failure_reason;
      show("failed", "failed");
    },
  };
}
