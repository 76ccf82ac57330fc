/*
 * The scan page: film the face for N seconds, turn every raw camera frame into the mean
 * colours of four skin regions (docs/vitals.md, trace schema version 2), upload that trace,
 * and show the result. The video itself never leaves the phone. This module is the page's
 * state machine (idle -> aligning -> capturing -> uploading | stopped) and its screens;
 * each other job is a module of its own under static/scan/:
 *
 *   camera.js      open the camera, lock exposure and white balance, report their modes
 *   detector.js    the face detector in its worker, boxes mapped to Haar-like boxes
 *   checks.js      the live checks (found, centred, near, still, lit) with hysteresis
 *   guidance.js    one hint at a time, help after a while, the reason to give up
 *   sampling.js    region colours and scene brightness from the raw frame
 *   face-shift.js  the face's own movement on every frame (trace `shift`)
 *   link.js        the server: progress reports, link status, upload, giving up
 *   screens.js     the screens (problem, ended, done, failed) and which one shows
 *
 * Two loops run while the camera is on:
 *   - the frame loop (requestVideoFrameCallback, else requestAnimationFrame + currentTime)
 *     samples every new frame with the current face box: cheap, never skips a frame;
 *   - the detection loop runs face detection as often as a time budget allows and moves
 *     the face box *target*; the frame loop glides the box towards it, so the regions stay
 *     on the same patch of skin instead of jumping with detector jitter.
 * While filming, the box and its target are kept with the face's measured shift taken out
 * (face-shift.js, on every frame), and the regions are read at the box moved by the
 * frame's shift: they follow the face to a fraction of a pixel, as the server's tracker
 * does on a video, instead of sliding over it by any move smaller than the dead band. So
 * both paths see the same skin, and the server's motion checks mean the same in both.
 *
 * The page always ends: after a while of failing checks it helps, then ends the scan with
 * the reason (guidance.js). It reports where the patient is (opened, aligning, capturing)
 * so the clinic can tell "never opened" from "stuck on the checks", and it never films into
 * a dead link: it knows when the link expires (by the server's clock), refuses to start a
 * capture that could not finish in time, and asks the server while filming whether the
 * link still works. See docs/scan-page.md for the flow and the face-box mapping.
 */
import { CAMERA_ERRORS, cameraModes, lockCamera, openCamera } from "./scan/camera.js";
import { createChecks } from "./scan/checks.js";
import { largestFace, startDetector } from "./scan/detector.js";
import { $, setText } from "./scan/dom.js";
import { createShiftTracker } from "./scan/face-shift.js";
import { createGuidance } from "./scan/guidance.js";
import { OPEN_STATUSES, createLink, sleep } from "./scan/link.js";
import { createSampler, createSceneMeter, luma, round } from "./scan/sampling.js";
import { createScreens } from "./scan/screens.js";

const root = document.getElementById("scan");
if (root) main(root);

function main(root) {
  const BASE = root.dataset.base;
  const CAPTURE_S = Number(root.dataset.seconds) || 30;
  const VENDOR = root.dataset.vendor;
  const WORKER_URL = root.dataset.worker;
  const seconds = (name, fallback) => {
    const value = Number(root.dataset[name]);
    return (Number.isFinite(value) && value > 0 ? value : fallback) * 1000;
  };
  const HELP_AFTER_MS = seconds("helpAfter", 20);
  const GIVE_UP_AFTER_MS = seconds("giveUpAfter", 60);
  const HEARTBEAT_MS = seconds("heartbeat", 5);
  const UPLOAD_MARGIN_MS = seconds("uploadMargin", 10);
  // The link's end on this page's clock: the server said how many seconds were left.
  let linkEndsAt = performance.now() + Number(root.dataset.expiresIn || 3600) * 1000;

  const FACE_LOST_RESTART_MS = 1000; // the capture starts over after this long without a face
  const FACE_HOLD_MS = 400; // a detector miss this short keeps the last box (it is a blip)
  const ALIGNED_BEFORE_START_MS = 500; // face found, centred and near for this long first
  const DETECT_BUDGET = 0.25; // share of the time detection may take while capturing
  const BOX_GLIDE = 0.15; // per frame, how far the box moves towards the detected target
  const BOX_DEADBAND = 0.03; // target moves smaller than this (face widths) are ignored
  const POLL_MS = 1000;
  const MAX_FRAME_GAP_MS = 250; // a longer gap (page hidden, tab asleep) is not counted as trying
  const SCENE_EVERY_MS = 500; // how often the whole frame's brightness is measured

  const video = $("video");
  const prompt = $("prompt");
  const heading = $("camera-heading");
  const progress = $("progress");
  const progressFill = $("progress-fill");
  const progressLabel = $("progress-label");

  const link = createLink(BASE, (expiresInS) => {
    linkEndsAt = performance.now() + expiresInS * 1000;
  });
  const evaluateChecks = createChecks(root);
  const guidance = createGuidance({
    root,
    prompt,
    help: $("help"),
    helpText: $("help-text"),
    helpAfterMs: HELP_AFTER_MS,
    giveUpAfterMs: GIVE_UP_AFTER_MS,
  });
  const sample = createSampler(video);
  const measureScene = createSceneMeter(video);
  const shifts = createShiftTracker();
  const screens = createScreens(root, CAPTURE_S);

  const msLeft = () => linkEndsAt - performance.now();
  const captureNeedsMs = () => CAPTURE_S * 1000 + UPLOAD_MARGIN_MS;

  let phase = "idle"; // idle -> aligning -> capturing -> uploading | stopped

  // ---- screens --------------------------------------------------------------------------
  const show = screens.show;

  /** A problem the patient can fix; "Try again" only while the link can still take a scan. */
  function problem(text, canRetry) {
    stopCamera();
    phase = "stopped";
    if (canRetry && msLeft() < captureNeedsMs()) {
      linkEnded("soon");
      return;
    }
    screens.problem(text, canRetry);
  }

  /** The link is dead (or about to be): say so once, with no way to film into it. */
  function linkEnded(kind) {
    stopCamera();
    phase = "stopped";
    screens.ended(kind);
  }

  function onReported(status) {
    if (status === "expired") {
      linkEnded(phase === "capturing" ? "during" : "expired");
    } else if (status && !OPEN_STATUSES.has(status) && phase !== "uploading") {
      linkEnded("gone"); // another tab uploaded or ended this link
    }
  }

  // ---- camera ---------------------------------------------------------------------------
  let stream = null;
  let detect = null; // detect(video) once the detector has started
  let running = false;
  let generation = 0; // bumps on every camera start so loops of an earlier start end

  async function startCamera() {
    $("start").disabled = true;
    if (msLeft() < captureNeedsMs()) {
      linkEnded("soon");
      return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      problem(
        "This browser can't use the camera. Open the link in Safari or Chrome " +
          "(on a secure https:// address).",
        false,
      );
      return;
    }
    show("camera", "camera");
    setText(heading, "Starting the camera");
    setText(prompt, "Starting the camera…");
    $("help").hidden = true;
    try {
      stream = await openCamera();
    } catch (error) {
      const text =
        CAMERA_ERRORS[error && error.name] ||
        "The camera could not be started. Reload the page and try again.";
      problem(text, true);
      return;
    }
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    for (const track of stream.getVideoTracks()) {
      track.addEventListener("ended", () => {
        if (running) problem("The camera stopped. Press Try again to start the scan again.", true);
      });
    }
    try {
      await video.play();
    } catch (error) {
      problem("The camera preview could not start. Press Try again.", true);
      return;
    }
    await waitForVideoSize();
    setText(prompt, "Getting ready…");
    try {
      if (!detect) detect = await startDetector(WORKER_URL, VENDOR);
    } catch (error) {
      console.error("face detector failed to start", error);
      problem(
        "The face finder could not start in this browser. Try the latest Safari or Chrome.",
        false,
      );
      return;
    }
    running = true;
    const current = ++generation;
    startAligning();
    scheduleFrame(current);
    detectLoop(current);
  }

  function waitForVideoSize() {
    if (video.videoWidth > 0) return Promise.resolve();
    return new Promise((resolve) => {
      video.addEventListener("loadedmetadata", () => resolve(), { once: true });
    });
  }

  function stopCamera() {
    running = false;
    if (stream) {
      for (const track of stream.getTracks()) track.stop();
      stream = null;
    }
    video.srcObject = null;
  }

  /** Lock (or free) exposure and white balance; the outcome is shown on the root. */
  async function lock(locked) {
    const got = await lockCamera(stream, locked);
    if (locked) root.dataset.cameraLock = got;
  }

  // ---- face detection -------------------------------------------------------------------
  // Boxes are kept in *anchor* coordinates: the frame's, less the face's shift since the
  // capture began (faceShift; [0, 0] while aligning). The regions are read at box + shift.
  let target = null; // latest detected Haar-like box [x, y, w, h], or null when no face
  let box = null; // the smoothed box the regions are taken from
  let faceShift = [0, 0]; // the face's shift on the latest frame (face-shift.js)
  let lastDetectionAt = 0;
  let detected = false; // the detector has answered at least once since the camera started
  let faceMissingSince = null; // performance.now() of the first detection without a face
  let speed = 0; // smoothed head speed, face widths per second
  let latestFrameT = null; // capture time of the newest camera frame the frame loop saw

  async function detectLoop(current) {
    while (running && current === generation) {
      const started = performance.now();
      const seenT = latestFrameT; // the frame the detector looks at (to within one frame)
      try {
        onDetections(await detect(video), seenT);
      } catch (error) {
        problem("The face finder stopped working. Reload the page and try again.", false);
        return;
      }
      // While filming, detection may take only part of the time (the model shares the
      // phone's cores with the frame loop and the camera) so no frame is missed. Head motion
      // does not depend on it: the face's shift is measured on every frame (face-shift.js).
      // Detecting every 100 ms instead raised the detections from ~0.5 to ~1.5 a second on
      // the busy 2-core test machine, still too few to show a 0.9 Hz sway, for more load.
      // Right after losing the face, look again at once to tell a blip from a real loss.
      const cost = performance.now() - started;
      let pause = 30;
      if (phase === "capturing" && faceMissingSince === null) {
        pause = Math.max(pause, cost * (1 / DETECT_BUDGET - 1));
      }
      await sleep(pause);
    }
  }

  function onDetections(boxes, seenT) {
    const now = performance.now();
    detected = true;
    const next = largestFace(boxes, video.videoWidth, video.videoHeight);
    if (!next) {
      if (faceMissingSince === null) faceMissingSince = now;
      lastDetectionAt = now;
      return;
    }
    const seenShift = recordDetection(seenT, next);
    const anchored = [next[0] - seenShift[0], next[1] - seenShift[1], next[2], next[3]];
    if (target && lastDetectionAt) {
      const dt = Math.max((now - lastDetectionAt) / 1000, 0.03);
      const was = inFrame(target);
      const moved = Math.hypot(next[0] - was[0], next[1] - was[1]) / target[2];
      speed = 0.6 * speed + 0.4 * (moved / dt);
    }
    const jump = target
      ? Math.max(...anchored.map((v, i) => Math.abs(v - target[i]))) / target[2]
      : Infinity;
    const wasLost = target === null;
    if (jump > BOX_DEADBAND || wasLost) target = anchored;
    if (!box || wasLost) box = target.slice(); // back after a loss: start where it is
    faceMissingSince = null;
    lastDetectionAt = now;
  }

  /** A box in anchor coordinates, placed on the current frame (moved by the face's shift). */
  function inFrame(anchored) {
    return [anchored[0] + faceShift[0], anchored[1] + faceShift[1], anchored[2], anchored[3]];
  }

  /**
   * The detector's own box goes up with the frame it was found on, before the dead band
   * and the glide: the server sizes head motion on it when the page sends no shift.
   * Returns the face's shift on that frame (to put the box in anchor coordinates).
   */
  function recordDetection(seenT, raw) {
    if (phase !== "capturing" || firstT === null || seenT === null || seenT < firstT) {
      return faceShift;
    }
    const t = round(seenT - firstT, 3);
    const detection = raw.map((v) => round(v, 2));
    for (let i = frames.length - 1; i >= 0 && frames[i].t_ms >= t; i--) {
      if (frames[i].t_ms === t) {
        frames[i].detection = detection;
        return frames[i].shift || faceShift;
      }
    }
    pendingDetection = detection; // its frame is not sampled yet: it goes with the next one
    return faceShift;
  }

  // ---- capture --------------------------------------------------------------------------
  let alignedSince = null;
  let frames = [];
  let frameSize = null; // [width, height] of the frames of this capture
  let firstT = null;
  let lastT = null;
  let lastLabelSecond = -1;
  let heartbeatAt = 0;
  let pendingDetection = null; // a detector box whose frame the frame loop has not sampled
  let lastFrameAt = null;
  let lighting = { luma: null, balance: null };
  let sceneLuma = null; // whole-frame brightness while no face is found
  let sceneMeasuredAt = 0;

  /** The camera is on and the detector ready: the checks run until filming can start. */
  function startAligning() {
    guidance.reset();
    detected = false;
    lastFrameAt = null;
    resetCapture(null);
  }

  function resetCapture(message) {
    const wasCapturing = phase === "capturing";
    phase = "aligning";
    alignedSince = null;
    frames = [];
    frameSize = null;
    firstT = null;
    lastT = null;
    lastLabelSecond = -1;
    pendingDetection = null;
    shifts.reset();
    // The boxes go back to frame coordinates: the next capture's shift starts at zero.
    if (box) box = inFrame(box);
    if (target) target = inFrame(target);
    faceShift = [0, 0];
    setProgress(0);
    root.dataset.state = "aligning";
    setText(heading, "Line up your face");
    if (message) guidance.say(message);
    else guidance.hint("no_face", null);
    if (wasCapturing) lock(false);
    link.report("aligning").then(onReported);
  }

  function setProgress(elapsed) {
    const shown = Math.min(elapsed, CAPTURE_S);
    progressFill.style.width = (100 * shown) / CAPTURE_S + "%";
    const second = Math.floor(shown);
    if (second !== lastLabelSecond) {
      lastLabelSecond = second;
      progress.setAttribute("aria-valuenow", String(second));
      progressLabel.textContent = second + " of " + CAPTURE_S + " seconds";
    }
  }

  function startCapturing(width, height, now) {
    if (msLeft() < captureNeedsMs()) {
      linkEnded("soon"); // the link would die before the trace could be sent
      return false;
    }
    phase = "capturing";
    root.dataset.state = "capturing";
    frameSize = [width, height];
    heartbeatAt = now + HEARTBEAT_MS;
    setText(heading, "Scanning");
    guidance.hint("capturing", null);
    lock(true);
    link.report("capturing").then(onReported);
    return true;
  }

  /** Whole-frame brightness, measured at most every SCENE_EVERY_MS (no face is found). */
  function sceneBrightness(now) {
    if (now - sceneMeasuredAt >= SCENE_EVERY_MS) {
      sceneMeasuredAt = now;
      sceneLuma = measureScene();
    }
    return sceneLuma;
  }

  function onFrame(tMs) {
    if (!running) return;
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) return;
    if (lastT !== null && tMs <= lastT) return; // the same frame again: not a new sample
    latestFrameT = tMs;
    if (box && target) {
      for (let i = 0; i < 4; i++) box[i] += (target[i] - box[i]) * BOX_GLIDE;
    }
    const now = performance.now();
    const dt = lastFrameAt === null ? 0 : Math.min(now - lastFrameAt, MAX_FRAME_GAP_MS);
    lastFrameAt = now;
    if (msLeft() <= 0) {
      linkEnded(phase === "capturing" ? "during" : "expired");
      return;
    }
    const missingFor = faceMissingSince === null ? 0 : now - faceMissingSince;
    if (missingFor > FACE_HOLD_MS) target = null; // gone, not a blip: frames carry no face
    let sampled = box && target ? sample(inFrame(box), width, height) : null;
    // While filming, the face's shift is measured where the regions were last frame, and
    // the regions are read again where the face is now.
    let moved = null;
    if (sampled && phase === "capturing") {
      moved = shifts.measure(sampled.crop);
      if (moved) {
        faceShift = moved;
        sampled = sample(inFrame(box), width, height);
      }
    }
    const regions = sampled ? sampled.means : null;
    if (regions) {
      const face = luma(regions.full_face);
      const left = luma(regions.left_cheek);
      const right = luma(regions.right_cheek);
      lighting = { luma: face, balance: Math.abs(left - right) / Math.max(left, right, 1) };
    }
    const checks = evaluateChecks({
      face: target ? inFrame(target) : null,
      width,
      height,
      speed,
      lighting,
      sceneLuma: () => sceneBrightness(now),
    });
    const blocking = checks.blocking || (checks.found && !regions ? "face_not_centred" : null);

    if (phase === "aligning") {
      if (!detected) return; // the detector has not looked yet: nothing to say
      if (blocking) {
        alignedSince = null;
        guidance.hint(blocking, now);
        const reason = guidance.struggle(blocking, dt);
        if (reason) giveUp(reason);
        return;
      }
      guidance.hint("aligned", now);
      if (alignedSince === null) alignedSince = now;
      if (now - alignedSince < ALIGNED_BEFORE_START_MS) return;
      if (!startCapturing(width, height, now)) return;
    }
    if (phase !== "capturing") return;

    if (missingFor > FACE_LOST_RESTART_MS) {
      guidance.addTrying(FACE_LOST_RESTART_MS); // losing the face counts, or it could loop
      resetCapture("We lost your face, so the scan starts again. Keep your face in the oval.");
      return;
    }
    if (width !== frameSize[0] || height !== frameSize[1]) {
      resetCapture("The camera changed, so the scan starts again. Hold the phone still.");
      return;
    }
    if (now >= heartbeatAt) {
      heartbeatAt = now + HEARTBEAT_MS;
      link.report("capturing").then(onReported); // is the link still alive?
    }
    if (firstT === null) firstT = tMs;
    lastT = tMs;
    // `face` (the box the regions were sampled with) goes with every frame that has
    // regions; a frame without a face has both null, as the schema requires. `detection`
    // is the detector's raw box on the frames it looked at (recordDetection), else null;
    // `shift` the face's own movement since the first frame (face-shift.js), or null.
    if (sampled && moved === null && firstT === tMs) moved = shifts.measure(sampled.crop);
    const face = regions ? inFrame(box).map((v) => round(v, 2)) : null;
    const shift = regions && moved ? moved.map((v) => round(v, 3)) : null;
    frames.push({ t_ms: round(tMs - firstT, 3), regions, face, detection: pendingDetection, shift });
    pendingDetection = null;
    const elapsed = (tMs - firstT) / 1000;
    setProgress(elapsed);
    if (elapsed >= CAPTURE_S) finishCapture();
  }

  // ---- frame loop -----------------------------------------------------------------------
  const hasVideoFrameCallback = "requestVideoFrameCallback" in HTMLVideoElement.prototype;

  function scheduleFrame(current) {
    if (!running || current !== generation) return;
    if (hasVideoFrameCallback) {
      video.requestVideoFrameCallback((now, metadata) => {
        // captureTime: when the camera took the frame (Chrome); mediaTime: its media clock.
        const t =
          typeof metadata.captureTime === "number" && metadata.captureTime > 0
            ? metadata.captureTime
            : metadata.mediaTime * 1000;
        onFrame(t);
        scheduleFrame(current);
      });
    } else {
      requestAnimationFrame(() => {
        onFrame(video.currentTime * 1000);
        scheduleFrame(current);
      });
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden && running && phase === "capturing") {
      resetCapture("The scan starts again because the page was hidden. Keep this page open.");
    }
  });

  // The link can run out while nobody films (intro, a problem screen): say so when it does.
  function watchExpiry() {
    const left = msLeft();
    if (left <= 0) {
      const alive = ["intro", "camera", "aligning", "capturing", "problem"];
      if (alive.includes(root.dataset.state)) {
        linkEnded(phase === "capturing" ? "during" : "expired");
      }
      return;
    }
    setTimeout(watchExpiry, Math.min(left + 50, 5000));
  }

  // ---- giving up --------------------------------------------------------------------------
  async function giveUp(reason) {
    phase = "stopped";
    stopCamera();
    root.dataset.state = "ending";
    guidance.say("Ending the scan…");
    const { outcome, scan } = await link.abandon({ reason, ...guidance.summary() });
    if (outcome === "failed") showFailed(scan);
    else if (outcome === "expired") linkEnded("expired");
    else if (outcome === "uploaded") poll(); // another tab sent a trace: show that outcome
    else showFailed({ failure_message: "We couldn't see your face well enough to scan." });
  }

  // ---- upload and result ----------------------------------------------------------------
  async function finishCapture() {
    phase = "uploading";
    const [frameWidth, frameHeight] = frameSize;
    const trace = {
      version: 2,
      frame_width: frameWidth,
      frame_height: frameHeight,
      user_agent: navigator.userAgent.slice(0, 1024),
      camera: cameraModes(stream),
      frames,
    };
    stopCamera();
    show("processing");
    setText($("processing-text"), "Sending your measurements…");
    const sent = await link.upload(JSON.stringify(trace), () => {
      setText(
        $("processing-text"),
        "Your connection dropped. Trying again in a few seconds… Please keep this page open.",
      );
    });
    if (sent === "accepted") {
      setText($("processing-text"), "This takes a few seconds. Please keep this page open.");
      poll();
    } else if (sent === "ended") {
      linkEnded("during");
    } else if (sent === "rejected") {
      phase = "stopped";
      retryIfAlive("Your scan could not be sent. Press Try again to scan again.");
    } else {
      phase = "stopped";
      retryIfAlive(
        "Your scan could not be sent. Check your internet connection, then press Try again.",
      );
    }
  }

  /** Offer "Try again" only if the server still takes a scan on this link. */
  async function retryIfAlive(text) {
    const { state, scan } = await link.state();
    if (state === "open") problem(text, true);
    else showOutcome(state, scan);
  }

  function showOutcome(state, scan) {
    if (state === "completed") showDone((scan && scan.vitals) || {});
    else if (state === "failed") showFailed(scan || {});
    else if (state === "processing") {
      show("processing");
      poll();
    } else linkEnded("gone");
  }

  async function poll() {
    for (;;) {
      const { state, scan } = await link.state();
      if (state === "completed" || state === "failed") return showOutcome(state, scan);
      if (state === "expired") return linkEnded("expired");
      await sleep(POLL_MS);
    }
  }

  const showDone = screens.done;
  const showFailed = screens.failed;

  // ---- wiring ---------------------------------------------------------------------------
  $("start").addEventListener("click", startCamera);
  $("retry").addEventListener("click", async () => {
    $("retry").disabled = true;
    const { state, scan } = await link.state();
    $("retry").disabled = false;
    if (state !== "open") {
      showOutcome(state, scan);
      return;
    }
    $("start").disabled = false;
    startCamera();
  });
  window.addEventListener("pagehide", stopCamera);

  const state = root.dataset.state;
  if (state === "processing") poll();
  if (state === "intro") {
    const left = msLeft();
    if (left < captureNeedsMs()) {
      linkEnded("soon");
    } else {
      if (left < captureNeedsMs() + GIVE_UP_AFTER_MS) {
        const note = $("expiry-note");
        note.textContent =
          "This link expires in about " +
          Math.floor(left / 1000) +
          " seconds. Start the scan now.";
        note.hidden = false;
      }
      link.report("opened").then((status) => {
        if (status === "expired") linkEnded("expired");
      });
      watchExpiry();
    }
  }
}
