/*
 * The scan page: film the face for N seconds, turn every raw camera frame into the mean
 * colours of four skin regions (docs/vitals.md, trace schema version 2), upload that trace,
 * and show the result. The video itself never leaves the phone: compression would erase
 * the 0.3 % colour change the pulse makes, so colours are read from the raw frame with
 * canvas getImageData before anything is encoded.
 *
 * Two loops run while the camera is on:
 *   - the frame loop (requestVideoFrameCallback, else requestAnimationFrame + currentTime)
 *     samples every new frame with the current face box: cheap, never skips a frame;
 *   - the detection loop runs MediaPipe face detection as often as a time budget allows
 *     and moves the face box *target*; the frame loop glides the box towards it, so the
 *     regions stay on the same patch of skin instead of jumping with detector jitter.
 *
 * The page always ends. While the checks fail, it counts the time each failing check held
 * the capture back: after HELP_AFTER it shows help for the check that failed most, after
 * GIVE_UP_AFTER it ends the scan with that check's reason (POST /abandon), which wakes the
 * clinic's run. It reports where the patient is (opened, aligning, capturing) so the clinic
 * can tell "never opened" from "stuck on the checks", and it never films into a dead link:
 * it knows when the link expires (by the server's clock), refuses to start a capture that
 * could not finish in time, and asks the server while filming whether the link still works.
 * See docs/scan-page.md for the flow and the face-box mapping.
 */
(() => {
  "use strict";

  const root = document.getElementById("scan");
  if (!root) return;
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

  // Regions as fractions [x0, y0, x1, y1] of a Haar-like face box (docs/vitals.md).
  const REGIONS = {
    forehead: [0.32, 0.12, 0.68, 0.25],
    left_cheek: [0.15, 0.55, 0.38, 0.75],
    right_cheek: [0.62, 0.55, 0.85, 0.75],
    full_face: [0.1, 0.05, 0.9, 0.95],
  };
  const REGION_NAMES = Object.keys(REGIONS);
  const MIN_REGION_PX = 4;
  // MediaPipe full-range box -> OpenCV Haar frontal-face box (measured on the same frames,
  // see docs/scan-page.md): same centre x, centre 6 % of the box height higher, 85 % size.
  const HAAR_SCALE = 0.85;
  const HAAR_SHIFT_UP = 0.06;

  const FACE_LOST_RESTART_MS = 1000; // the capture starts over after this long without a face
  const FACE_HOLD_MS = 400; // a detector miss this short keeps the last box (it is a blip)
  const ALIGNED_BEFORE_START_MS = 500; // face found, centred and near for this long first
  const DETECT_BUDGET = 0.25; // share of main-thread time detection may take while capturing
  const DETECT_EVERY_MS = 100; // while capturing, at most ten detections a second
  const BOX_GLIDE = 0.15; // per frame, how far the box moves towards the detected target
  const BOX_DEADBAND = 0.03; // target moves smaller than this (face widths) are ignored
  const UPLOAD_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
  const GIVE_UP_DELAYS_MS = [1000, 2000, 4000];
  const POLL_MS = 1000;
  const MAX_FRAME_GAP_MS = 250; // a longer gap (page hidden, tab asleep) is not counted as trying
  const HINT_SETTLE_MS = 700; // a new hint must hold this long before it is shown and announced
  const SCENE_EVERY_MS = 500; // how often the whole frame's brightness is measured
  const DARK_SCENE_LUMA = 40; // below: "too dark" rather than "no face" (vitals MIN_BRIGHTNESS)
  // Thresholds with hysteresis (enter, leave) so a check does not flicker at its edge.
  const CENTRED = [0.15, 0.19]; // |dx| of the face centre, fraction of the frame width
  const NEAR_MIN = [0.2, 0.18]; // face width / frame width
  const NEAR_MAX = [0.8, 0.85];
  const STILL = [0.3, 0.45]; // face widths per second

  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const prompt = $("prompt");
  const heading = $("camera-heading");
  const progress = $("progress");
  const progressFill = $("progress-fill");
  const progressLabel = $("progress-label");

  const msLeft = () => linkEndsAt - performance.now();
  const captureNeedsMs = () => CAPTURE_S * 1000 + UPLOAD_MARGIN_MS;

  // ---- screens --------------------------------------------------------------------------
  function show(screen, state) {
    for (const section of root.querySelectorAll(".screen")) {
      section.hidden = section.id !== "screen-" + screen;
    }
    root.dataset.state = state || screen;
    const title = $("screen-" + screen).querySelector("h1");
    if (title) title.focus();
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  /** A problem the patient can fix; "Try again" only while the link can still take a scan. */
  function problem(text, canRetry) {
    stopCamera();
    phase = "stopped";
    if (canRetry && msLeft() < captureNeedsMs()) {
      linkEnded("soon");
      return;
    }
    $("problem-text").textContent = text;
    $("retry").hidden = !canRetry;
    show("problem");
  }

  const ENDED_TEXT = {
    expired: "Scan links only work for a limited time, and this one has run out.",
    during:
      "This link ran out while you were scanning, so the scan could not be used. " +
      "You don't need to do anything on this page.",
    soon:
      "This link runs out too soon to finish a scan: a scan takes about " +
      CAPTURE_S +
      " seconds.",
    gone: "This link can't be used any more.",
  };

  /** The link is dead (or about to be): say so once, with no way to film into it. */
  function linkEnded(kind) {
    stopCamera();
    phase = "stopped";
    setText($("ended-heading"), kind === "soon" ? "This link is about to expire" : "This scan link has expired");
    setText($("ended-text"), ENDED_TEXT[kind] || ENDED_TEXT.expired);
    show("ended");
  }

  // ---- talking to the server --------------------------------------------------------------
  async function post(path, body) {
    return fetch(BASE + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body || {}),
      cache: "no-store",
    });
  }

  /** Tell the server where the patient is; returns the scan's status, or null. */
  async function report(status) {
    let response = null;
    try {
      response = await post("/progress", { status });
    } catch (error) {
      return null; // offline for a moment: the report is informational
    }
    if (response.status === 410 || response.status === 404) return "expired";
    if (!response.ok) return null;
    const body = await response.json().catch(() => null);
    if (!body) return null;
    if (typeof body.expires_in_s === "number") {
      linkEndsAt = performance.now() + body.expires_in_s * 1000;
    }
    return body.status;
  }

  /** What the server says about the link right now: "open", "expired", or a scan status. */
  async function linkState() {
    try {
      const response = await fetch(BASE + "/status", {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.status === 410 || response.status === 404) return { state: "expired" };
      if (!response.ok) return { state: "open" };
      const scan = await response.json();
      return { state: OPEN_STATUSES.has(scan.status) ? "open" : scan.status, scan };
    } catch (error) {
      return { state: "open" }; // cannot tell: let the patient try
    }
  }
  const OPEN_STATUSES = new Set(["pending", "opened", "aligning", "capturing"]);

  // ---- camera ---------------------------------------------------------------------------
  let stream = null;
  let detector = null;
  let running = false;
  let generation = 0; // bumps on every camera start so loops of an earlier start end

  const CAMERA_ERRORS = {
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
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: {
          facingMode: "user",
          width: { ideal: 640 },
          height: { ideal: 480 },
          frameRate: { ideal: 30 },
        },
      });
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
      await startDetector();
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

  // Fixed exposure and white balance while filming, where the camera allows it: automatic
  // exposure hunting changes the skin's brightness by far more than the pulse does. The
  // outcome is shown on the root (tests, support) and the modes the camera reports go up
  // with the trace (`camera`, schema version 2).
  async function lockCamera(lock) {
    const track = stream && stream.getVideoTracks()[0];
    const caps = track && track.getCapabilities ? track.getCapabilities() : {};
    const wanted = {};
    const modes = { exposureMode: caps.exposureMode, whiteBalanceMode: caps.whiteBalanceMode };
    for (const [name, supported] of Object.entries(modes)) {
      const mode = lock ? "manual" : "continuous";
      if (Array.isArray(supported) && supported.includes(mode)) wanted[name] = mode;
    }
    let got = "unsupported";
    if (Object.keys(wanted).length) {
      try {
        await track.applyConstraints({ advanced: [wanted] });
        const settings = track.getSettings();
        got = lock && settings.exposureMode === "manual" ? "locked" : "auto";
      } catch (error) {
        got = "refused";
      }
    }
    if (lock) root.dataset.cameraLock = got;
  }

  const CAMERA_MODES = new Set(["none", "manual", "single-shot", "continuous"]);

  /** Exposure and white-balance modes as the camera reports them now (null: not reported). */
  function cameraModes() {
    const track = stream && stream.getVideoTracks()[0];
    const settings = track && track.getSettings ? track.getSettings() : {};
    const mode = (value) => (CAMERA_MODES.has(value) ? value : null);
    return {
      exposure_mode: mode(settings.exposureMode),
      white_balance_mode: mode(settings.whiteBalanceMode),
    };
  }

  // ---- face detection -------------------------------------------------------------------
  let target = null; // latest detected Haar-like box [x, y, w, h], or null when no face
  let box = null; // the smoothed box the regions are taken from
  let lastDetectionAt = 0;
  let detected = false; // the detector has answered at least once since the camera started
  let faceMissingSince = null; // performance.now() of the first detection without a face
  let speed = 0; // smoothed head speed, face widths per second
  let latestFrameT = null; // capture time of the newest camera frame the frame loop saw

  // The detector runs in static/face-worker.js: MediaPipe needs 'unsafe-eval', which only
  // that worker's policy allows; this page (it holds the link's token) keeps the strict one.
  // The worker gets video frames as ImageBitmaps and answers face boxes, nothing else.
  let pending = null; // {id, resolve, reject} of the detection in flight
  let nextId = 0;

  async function startDetector() {
    if (typeof Worker !== "function" || typeof createImageBitmap !== "function") {
      throw new Error("this browser cannot run the face finder in a worker");
    }
    if (detector) return;
    const worker = new Worker(WORKER_URL);
    await new Promise((resolve, reject) => {
      worker.onmessage = (event) => {
        const message = event.data || {};
        if (message.type === "ready") resolve();
        else reject(new Error(message.message || "the face finder did not start"));
      };
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message || "the face finder did not load"));
      };
      worker.postMessage({ type: "init", vendor: VENDOR });
    });
    worker.onmessage = (event) => {
      const message = event.data || {};
      if (!pending || message.id !== pending.id) return;
      const { resolve, reject } = pending;
      pending = null;
      if (message.type === "detections") resolve({ detections: boxesAsDetections(message.boxes) });
      else reject(new Error(message.message || "the face finder failed"));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      if (pending) pending.reject(new Error(event.message || "the face finder stopped"));
      pending = null;
    };
    detector = worker;
  }

  function boxesAsDetections(boxes) {
    return (Array.isArray(boxes) ? boxes : []).map((boundingBox) => ({ boundingBox }));
  }

  /**
   * One frame of the camera through the worker (MediaPipe-shaped results go to
   * onDetections); returns the main-thread milliseconds it took. The model runs in the
   * worker, so waiting for its answer costs the page's frame loop nothing.
   */
  async function detectFrame() {
    const seenT = latestFrameT; // the frame the bitmap is taken from (to within one frame)
    const started = performance.now();
    const frame = await createImageBitmap(video);
    const id = ++nextId;
    const answered = new Promise((resolve, reject) => {
      pending = { id, resolve, reject };
    });
    detector.postMessage({ type: "detect", id, frame }, [frame]);
    const mainThreadMs = performance.now() - started;
    onDetections(await answered, seenT);
    return mainThreadMs;
  }

  function onDetections(results, seenT) {
    const now = performance.now();
    const width = video.videoWidth;
    const height = video.videoHeight;
    detected = true;
    let best = null;
    for (const detection of results.detections || []) {
      const b = detection.boundingBox;
      if (!best || b.width * b.height > best.width * best.height) best = b;
    }
    if (!best || !width) {
      if (faceMissingSince === null) faceMissingSince = now;
      lastDetectionAt = now;
      return;
    }
    const w = best.width * width * HAAR_SCALE;
    const h = best.height * height * HAAR_SCALE;
    const cx = best.xCenter * width;
    const cy = best.yCenter * height - HAAR_SHIFT_UP * best.height * height;
    const next = [cx - w / 2, cy - h / 2, w, h];
    recordDetection(seenT, next);
    if (target && lastDetectionAt) {
      const dt = Math.max((now - lastDetectionAt) / 1000, 0.03);
      const moved = Math.hypot(next[0] - target[0], next[1] - target[1]) / target[2];
      speed = 0.6 * speed + 0.4 * (moved / dt);
    }
    const jump = target
      ? Math.max(...next.map((v, i) => Math.abs(v - target[i]))) / target[2]
      : Infinity;
    const wasLost = target === null;
    if (jump > BOX_DEADBAND || wasLost) target = next;
    if (!box || wasLost) box = target.slice(); // back after a loss: start where it is
    faceMissingSince = null;
    lastDetectionAt = now;
  }

  /**
   * The detector's own box goes up with the frame it was found on, before the dead band
   * and the glide: the sampled box hides head motion smaller than the dead band (a sway
   * of 0.03 face widths never moved it), yet the regions slide over the face with it, so
   * the server needs the raw boxes to see that motion, remove it, or refuse the scan.
   */
  function recordDetection(seenT, raw) {
    if (phase !== "capturing" || firstT === null || seenT === null || seenT < firstT) return;
    const t = round(seenT - firstT, 3);
    const detection = raw.map((v) => round(v, 2));
    for (let i = frames.length - 1; i >= 0 && frames[i].t_ms >= t; i--) {
      if (frames[i].t_ms === t) {
        frames[i].detection = detection;
        return;
      }
    }
    pendingDetection = detection; // its frame is not sampled yet: it goes with the next one
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function detectLoop(current) {
    while (running && current === generation) {
      const started = performance.now();
      let cost = 0;
      try {
        cost = await detectFrame();
      } catch (error) {
        problem("The face finder stopped working. Reload the page and try again.", false);
        return;
      }
      // While filming, detection may use only part of the main thread so no frame is missed,
      // yet it must run often enough for the server to see head motion in its raw boxes (a
      // sway of ~1 Hz needs several a second; pausing for 3x the whole round trip to the
      // worker gave one every 2 s on a busy machine, and the sway went unseen). Right after
      // losing the face, look again at once to tell a blip from a real loss.
      let pause = 30;
      if (phase === "capturing" && faceMissingSince === null) {
        const sinceStart = performance.now() - started;
        pause = Math.max(pause, cost * (1 / DETECT_BUDGET - 1), DETECT_EVERY_MS - sinceStart);
      }
      await sleep(pause);
    }
  }

  // ---- checks ---------------------------------------------------------------------------
  const checkItems = {};
  for (const item of root.querySelectorAll("[data-check]")) checkItems[item.dataset.check] = item;
  const passing = { found: false, centred: false, near: false, still: false, lit: false };

  /** A check with hysteresis: it passes below `enter`, and fails again only past `leave`. */
  function within(name, value, [enter, leave], below) {
    const limit = passing[name] ? leave : enter;
    return below ? value < limit : value > limit;
  }

  function showCheck(name, ok) {
    passing[name] = ok;
    const item = checkItems[name];
    const value = ok ? "true" : "false";
    if (item.dataset.ok === value) return;
    item.dataset.ok = value;
    setText(item.querySelector("[data-said]"), ok ? ": yes" : ": not yet");
  }

  let lighting = { luma: null, balance: null };
  let sceneLuma = null; // whole-frame brightness while no face is found
  let sceneMeasuredAt = 0;
  const sceneCanvas = document.createElement("canvas");
  sceneCanvas.width = 32;
  sceneCanvas.height = 24;
  const sceneContext = sceneCanvas.getContext("2d", { willReadFrequently: true, alpha: false });

  function measureScene(now) {
    if (now - sceneMeasuredAt < SCENE_EVERY_MS) return;
    sceneMeasuredAt = now;
    sceneContext.drawImage(video, 0, 0, 32, 24);
    const data = sceneContext.getImageData(0, 0, 32, 24).data;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += luma([data[i], data[i + 1], data[i + 2]]);
    sceneLuma = sum / (data.length / 4);
  }

  /**
   * The checks of the current frame, and `blocking`: the reason filming cannot start (the
   * first failing one of found, near, centred), or null when it can.
   */
  function evaluateChecks(now) {
    const width = video.videoWidth;
    const height = video.videoHeight;
    const found = target !== null;
    showCheck("found", found);
    if (!found) {
      for (const name of ["centred", "near", "still", "lit"]) showCheck(name, false);
      measureScene(now);
      const dark = sceneLuma !== null && sceneLuma < DARK_SCENE_LUMA;
      return { found, blocking: dark ? "too_dark" : "no_face" };
    }
    const [x, y, w, h] = target;
    const dx = Math.abs((x + w / 2) / width - 0.5);
    const dy = Math.abs((y + h / 2) / height - 0.5);
    const centred = within("centred", Math.max(dx, dy * 0.75), CENTRED, true);
    showCheck("centred", centred);
    const size = w / width;
    const notTooSmall = within("near", size, NEAR_MIN, false);
    const notTooBig = size < (passing.near ? NEAR_MAX[1] : NEAR_MAX[0]);
    showCheck("near", notTooSmall && notTooBig);
    showCheck("still", within("still", speed, STILL, true));
    const { luma: faceLuma, balance } = lighting;
    const lit =
      faceLuma === null ||
      (faceLuma >= 50 && faceLuma <= 225 && (balance === null || balance <= 0.25));
    showCheck("lit", lit);
    let blocking = null;
    if (!notTooSmall) blocking = "face_too_small";
    else if (!notTooBig) blocking = "face_too_close";
    else if (!centred) blocking = "face_not_centred";
    return { found, blocking };
  }

  // ---- guidance: one hint at a time, help after a while, and an end ------------------------
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

  let phase = "idle"; // idle -> aligning -> capturing -> uploading | stopped
  let hintShown = null;
  let hintWanted = null;
  let hintSince = 0;
  let tryingMs = 0; // time the checks held filming back, since the camera started
  let failingMs = {}; // that time per reason
  let helpFor = null;
  let lastFrameAt = null;

  /** Show `key`'s hint once it has been wanted for HINT_SETTLE_MS (`now` null: at once). */
  function hint(key, now) {
    if (key !== hintWanted) {
      hintWanted = key;
      hintSince = now === null ? -Infinity : now;
    }
    if (key === hintShown) return;
    if (now !== null && now - hintSince < HINT_SETTLE_MS) return;
    hintShown = key;
    setText(prompt, HINTS[key] || key);
  }

  /** Say `text` now (an event such as a restart), until the next hint replaces it. */
  function say(text) {
    hintShown = text;
    hintWanted = text;
    setText(prompt, text);
  }

  function mostFailing() {
    let best = null;
    for (const [reason, ms] of Object.entries(failingMs)) {
      if (best === null || ms > failingMs[best]) best = reason;
    }
    return best || "no_face";
  }

  /** Count this frame's time against the reason filming cannot start; help, then end. */
  function struggle(blocking, dt) {
    if (!blocking || !detected) return;
    tryingMs += dt;
    failingMs[blocking] = (failingMs[blocking] || 0) + dt;
    const reason = mostFailing();
    if (tryingMs >= GIVE_UP_AFTER_MS) {
      giveUp(reason);
      return;
    }
    if (tryingMs >= HELP_AFTER_MS && reason !== helpFor) {
      helpFor = reason;
      setText($("help-text"), HELP[reason]);
      $("help").hidden = false;
      root.dataset.help = reason;
    }
  }

  // ---- sampling -------------------------------------------------------------------------
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true, alpha: false });

  function regionRects(face, width, height) {
    const [x, y, w, h] = face;
    const rects = {};
    for (const name of REGION_NAMES) {
      const [fx0, fy0, fx1, fy1] = REGIONS[name];
      const x0 = Math.max(Math.round(x + fx0 * w), 0);
      const y0 = Math.max(Math.round(y + fy0 * h), 0);
      const x1 = Math.min(Math.round(x + fx1 * w), width);
      const y1 = Math.min(Math.round(y + fy1 * h), height);
      if (x1 - x0 < MIN_REGION_PX || y1 - y0 < MIN_REGION_PX) return null;
      rects[name] = [x0, y0, x1, y1];
    }
    return rects;
  }

  /** Mean [r, g, b] of each region of the current raw frame, or null. */
  function sampleRegions(face, width, height) {
    const rects = regionRects(face, width, height);
    if (!rects) return null;
    // Every region lies inside full_face, so one getImageData of its rectangle serves all.
    const [ox, oy, ox1, oy1] = rects.full_face;
    const sw = ox1 - ox;
    const sh = oy1 - oy;
    if (canvas.width < sw || canvas.height < sh) {
      canvas.width = Math.max(canvas.width, sw);
      canvas.height = Math.max(canvas.height, sh);
    }
    context.drawImage(video, ox, oy, sw, sh, 0, 0, sw, sh);
    const data = context.getImageData(0, 0, sw, sh).data;
    lastCrop = { data, x0: ox, y0: oy, width: sw, height: sh };
    const means = {};
    for (const name of REGION_NAMES) {
      const [x0, y0, x1, y1] = rects[name];
      let r = 0;
      let g = 0;
      let b = 0;
      for (let row = y0 - oy; row < y1 - oy; row++) {
        let i = (row * sw + (x0 - ox)) * 4;
        const end = (row * sw + (x1 - ox)) * 4;
        for (; i < end; i += 4) {
          r += data[i];
          g += data[i + 1];
          b += data[i + 2];
        }
      }
      const n = (x1 - x0) * (y1 - y0);
      means[name] = [round(r / n, 3), round(g / n, 3), round(b / n, 3)];
    }
    return means;
  }

  // ---- face shift: the face's own movement, measured on every frame ------------------------
  // The detector answers a few times a second at best (once a second on a busy phone), too
  // seldom to show a sway of ~1 Hz; the pixels the regions are read from show it on every
  // frame. The face's column and row brightness profiles (green, the sharpest channel) are
  // matched against those of the first frame of the capture, in frame coordinates, to a
  // fraction of a pixel: the face's shift since the capture began. Each profile is divided
  // by its mean, so the pulse (the whole face brightening by ~0.3 %) does not move it.
  const SHIFT_SEARCH_PX = 4; // per frame, around the last shift
  const SHIFT_WIDE_PX = 24; // when the best match is at the edge, look this far once
  let lastCrop = null; // the pixels of the last sampled full-face rectangle
  let shiftRef = null; // {cols, rows, x0, y0}: the capture's first profiles
  let lastShift = [0, 0];

  function profiles(crop) {
    const { data, width, height } = crop;
    const cols = new Float64Array(width);
    const rows = new Float64Array(height);
    for (let row = 0, i = 1; row < height; row++) {
      let sum = 0;
      for (let col = 0; col < width; col++, i += 4) {
        cols[col] += data[i];
        sum += data[i];
      }
      rows[row] = sum;
    }
    for (const profile of [cols, rows]) {
      let mean = 0;
      for (const v of profile) mean += v;
      mean = mean / profile.length || 1;
      for (let k = 0; k < profile.length; k++) profile[k] /= mean;
    }
    return { cols, rows, x0: crop.x0, y0: crop.y0 };
  }

  /** Mean squared difference of `cur` (from `cur0`) against `ref` (from `ref0`) shifted by s. */
  function mismatch(cur, cur0, ref, ref0, s) {
    const from = Math.max(cur0, ref0 + s);
    const to = Math.min(cur0 + cur.length, ref0 + s + ref.length);
    if (to - from < cur.length / 2) return Infinity;
    let sum = 0;
    for (let a = from; a < to; a++) {
      const d = cur[a - cur0] - ref[a - s - ref0];
      sum += d * d;
    }
    return sum / (to - from);
  }

  /** The sub-pixel shift of `cur` against `ref`, searched within `reach` px of `around`. */
  function bestShift(cur, cur0, ref, ref0, around, reach) {
    const centre = Math.round(around);
    let best = centre;
    let bestCost = Infinity;
    const costs = new Map();
    for (let s = centre - reach; s <= centre + reach; s++) {
      const cost = mismatch(cur, cur0, ref, ref0, s);
      costs.set(s, cost);
      if (cost < bestCost) {
        bestCost = cost;
        best = s;
      }
    }
    if (!Number.isFinite(bestCost)) return null;
    if (Math.abs(best - centre) === reach && reach < SHIFT_WIDE_PX) {
      return bestShift(cur, cur0, ref, ref0, around, SHIFT_WIDE_PX);
    }
    const left = costs.has(best - 1) ? costs.get(best - 1) : Infinity;
    const right = costs.has(best + 1) ? costs.get(best + 1) : Infinity;
    const curve = left - 2 * bestCost + right;
    if (!Number.isFinite(curve) || curve <= 0) return best;
    return best + Math.max(-0.5, Math.min(0.5, (0.5 * (left - right)) / curve));
  }

  /** The face's [dx, dy] in pixels since the capture's first frame, or null. */
  function faceShift() {
    if (!lastCrop) return null;
    const now = profiles(lastCrop);
    if (!shiftRef) {
      shiftRef = now;
      lastShift = [0, 0];
      return [0, 0];
    }
    const dx = bestShift(now.cols, now.x0, shiftRef.cols, shiftRef.x0, lastShift[0], SHIFT_SEARCH_PX);
    const dy = bestShift(now.rows, now.y0, shiftRef.rows, shiftRef.y0, lastShift[1], SHIFT_SEARCH_PX);
    if (dx === null || dy === null) return null;
    lastShift = [dx, dy];
    return [round(dx, 3), round(dy, 3)];
  }

  const round = (value, digits) => {
    const scale = 10 ** digits;
    return Math.round(value * scale) / scale;
  };
  const luma = ([r, g, b]) => 0.299 * r + 0.587 * g + 0.114 * b;

  // ---- capture --------------------------------------------------------------------------
  let alignedSince = null;
  let frames = [];
  let frameSize = null; // [width, height] of the frames of this capture
  let firstT = null;
  let lastT = null;
  let lastLabelSecond = -1;
  let heartbeatAt = 0;
  let pendingDetection = null; // a detector box whose frame the frame loop has not sampled

  /** The camera is on and the detector ready: the checks run until filming can start. */
  function startAligning() {
    tryingMs = 0;
    failingMs = {};
    helpFor = null;
    detected = false;
    lastFrameAt = null;
    hintShown = null;
    hintWanted = null;
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
    shiftRef = null;
    setProgress(0);
    root.dataset.state = "aligning";
    setText(heading, "Line up your face");
    if (message) say(message);
    else hint("no_face", null);
    if (wasCapturing) lockCamera(false);
    report("aligning").then(onReported);
  }

  function onReported(status) {
    if (status === "expired") {
      linkEnded(phase === "capturing" ? "during" : "expired");
    } else if (status && !OPEN_STATUSES.has(status) && phase !== "uploading") {
      linkEnded("gone"); // another tab uploaded or ended this link
    }
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
    hint("capturing", null);
    lockCamera(true);
    report("capturing").then(onReported);
    return true;
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
    lastCrop = null;
    const regions = box && target ? sampleRegions(box, width, height) : null;
    if (regions) {
      const face = luma(regions.full_face);
      const left = luma(regions.left_cheek);
      const right = luma(regions.right_cheek);
      lighting = { luma: face, balance: Math.abs(left - right) / Math.max(left, right, 1) };
    }
    const checks = evaluateChecks(now);
    const blocking = checks.blocking || (checks.found && !regions ? "face_not_centred" : null);

    if (phase === "aligning") {
      if (!detected) return; // the detector has not looked yet: nothing to say
      if (blocking) {
        alignedSince = null;
        hint(blocking, now);
        struggle(blocking, dt);
        return;
      }
      hint("aligned", now);
      if (alignedSince === null) alignedSince = now;
      if (now - alignedSince < ALIGNED_BEFORE_START_MS) return;
      if (!startCapturing(width, height, now)) return;
    }
    if (phase !== "capturing") return;

    if (missingFor > FACE_LOST_RESTART_MS) {
      tryingMs += FACE_LOST_RESTART_MS; // losing the face counts as trying, or it could loop
      resetCapture("We lost your face, so the scan starts again. Keep your face in the oval.");
      return;
    }
    if (width !== frameSize[0] || height !== frameSize[1]) {
      resetCapture("The camera changed, so the scan starts again. Hold the phone still.");
      return;
    }
    if (now >= heartbeatAt) {
      heartbeatAt = now + HEARTBEAT_MS;
      report("capturing").then(onReported); // is the link still alive?
    }
    if (firstT === null) firstT = tMs;
    lastT = tMs;
    // `face` (the box the regions were sampled with) goes with every frame that has
    // regions; a frame without a face has both null, as the schema requires. `detection`
    // is the detector's raw box on the frames it looked at (recordDetection), else null.
    // `shift` is the face's own movement on this frame (faceShift), null without a face.
    const face = regions ? box.map((v) => round(v, 2)) : null;
    const shift = regions ? faceShift() : null;
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
    say("Ending the scan…");
    const failing = {};
    for (const [key, ms] of Object.entries(failingMs)) failing[key] = round(ms / 1000, 1);
    const body = { reason, tried_s: round(tryingMs / 1000, 1), failing_s: failing };
    for (let attempt = 0; ; attempt++) {
      let response = null;
      try {
        response = await post("/abandon", body);
      } catch (error) {
        response = null;
      }
      if (response && response.ok) {
        const scan = await response.json().catch(() => ({}));
        showFailed(scan);
        return;
      }
      if (response && (response.status === 410 || response.status === 404)) {
        linkEnded("expired");
        return;
      }
      if (response && response.status === 409) {
        poll(); // it was uploaded after all (another tab): show that outcome
        return;
      }
      if (attempt >= GIVE_UP_DELAYS_MS.length) {
        showFailed({ failure_message: "We couldn't see your face well enough to scan." });
        return;
      }
      await sleep(GIVE_UP_DELAYS_MS[attempt]);
    }
  }

  // ---- upload and result ----------------------------------------------------------------
  function finishCapture() {
    phase = "uploading";
    const [frameWidth, frameHeight] = frameSize;
    const trace = {
      version: 2,
      frame_width: frameWidth,
      frame_height: frameHeight,
      user_agent: navigator.userAgent.slice(0, 1024),
      camera: cameraModes(),
      frames,
    };
    stopCamera();
    show("processing");
    setText($("processing-text"), "Sending your measurements…");
    upload(JSON.stringify(trace));
  }

  async function upload(body) {
    for (let attempt = 0; ; attempt++) {
      let response = null;
      try {
        response = await fetch(BASE + "/trace", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body,
          cache: "no-store",
        });
      } catch (error) {
        response = null; // offline or the connection dropped: retry below
      }
      if (response && (response.status === 202 || response.status === 409)) {
        // 409: an earlier attempt arrived although its answer was lost.
        setText($("processing-text"), "This takes a few seconds. Please keep this page open.");
        poll();
        return;
      }
      if (response && (response.status === 410 || response.status === 404)) {
        linkEnded("during");
        return;
      }
      if (response && (response.status === 413 || response.status === 422)) {
        phase = "stopped";
        retryIfAlive("Your scan could not be sent. Press Try again to scan again.");
        return;
      }
      if (attempt >= UPLOAD_DELAYS_MS.length) {
        phase = "stopped";
        retryIfAlive(
          "Your scan could not be sent. Check your internet connection, then press Try again.",
        );
        return;
      }
      setText(
        $("processing-text"),
        "Your connection dropped. Trying again in a few seconds… Please keep this page open.",
      );
      await sleep(UPLOAD_DELAYS_MS[attempt]);
    }
  }

  /** Offer "Try again" only if the server still takes a scan on this link. */
  async function retryIfAlive(text) {
    const { state, scan } = await linkState();
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
      const { state, scan } = await linkState();
      if (state === "completed" || state === "failed") return showOutcome(state, scan);
      if (state === "expired") return linkEnded("expired");
      await sleep(POLL_MS);
    }
  }

  function showDone(vitals) {
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
  }

  function showFailed(scan) {
    setText($("failed-reason"), scan.failure_message || "The scan could not be measured.");
    setText($("failed-tip-text"), scan.failure_tip || "");
    $("failed-tip").hidden = !scan.failure_tip;
    if (scan.failure_reason) root.dataset.reason = scan.failure_reason;
    show("failed", "failed");
  }

  // ---- wiring ---------------------------------------------------------------------------
  $("start").addEventListener("click", startCamera);
  $("retry").addEventListener("click", async () => {
    $("retry").disabled = true;
    const { state, scan } = await linkState();
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
      report("opened").then((status) => {
        if (status === "expired") linkEnded("expired");
      });
      watchExpiry();
    }
  }
})();
