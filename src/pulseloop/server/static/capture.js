/*
 * The scan page: film the face for N seconds, turn every raw camera frame into the mean
 * colours of four skin regions (docs/vitals.md, trace schema version 1), upload that trace,
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
 * See docs/scan-page.md for the flow and the face-box mapping.
 */
(() => {
  "use strict";

  const root = document.getElementById("scan");
  if (!root) return;
  const BASE = root.dataset.base;
  const CAPTURE_S = Number(root.dataset.seconds) || 30;
  const VENDOR = root.dataset.vendor;

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
  const BOX_GLIDE = 0.15; // per frame, how far the box moves towards the detected target
  const BOX_DEADBAND = 0.03; // target moves smaller than this (face widths) are ignored
  const UPLOAD_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
  const POLL_MS = 1000;

  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const prompt = $("prompt");
  const progress = $("progress");
  const progressFill = $("progress-fill");
  const progressLabel = $("progress-label");

  // ---- screens --------------------------------------------------------------------------
  function show(screen, state) {
    for (const section of root.querySelectorAll(".screen")) {
      section.hidden = section.id !== "screen-" + screen;
    }
    root.dataset.state = state || screen;
    const heading = $("screen-" + screen).querySelector("h1");
    if (heading) heading.focus();
  }

  function problem(text, canRetry) {
    stopCamera();
    $("problem-text").textContent = text;
    $("retry").hidden = !canRetry;
    show("problem");
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

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
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      problem(
        "This browser can't use the camera. Open the link in Safari or Chrome " +
          "(on a secure https:// address).",
        false,
      );
      return;
    }
    show("camera");
    setText(prompt, "Starting the camera…");
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
    resetCapture();
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

  // ---- face detection -------------------------------------------------------------------
  let target = null; // latest detected Haar-like box [x, y, w, h], or null when no face
  let box = null; // the smoothed box the regions are taken from
  let lastDetectionAt = 0;
  let faceMissingSince = null; // performance.now() of the first detection without a face
  let speed = 0; // smoothed head speed, face widths per second

  async function startDetector() {
    if (typeof window.FaceDetection !== "function") throw new Error("detector not loaded");
    if (detector) return;
    detector = new window.FaceDetection({ locateFile: (file) => VENDOR + file });
    // Only { model: "full" }: in this release the short-range graph, and any other option
    // (minDetectionConfidence, selfieMode), make the detection calculator fail to open
    // ("options_.has_num_classes()"), measured in Chromium 156. The default threshold is 0.5.
    detector.setOptions({ model: "full" });
    detector.onResults(onDetections);
    await detector.initialize();
  }

  function onDetections(results) {
    const now = performance.now();
    const width = video.videoWidth;
    const height = video.videoHeight;
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

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function detectLoop(current) {
    while (running && current === generation) {
      const started = performance.now();
      try {
        await detector.send({ image: video });
      } catch (error) {
        problem("The face finder stopped working. Reload the page and try again.", false);
        return;
      }
      const cost = performance.now() - started;
      // While filming, detection may use only part of the main thread so no frame is missed;
      // right after losing the face, look again at once to tell a blip from a real loss.
      let pause = 30;
      if (phase === "capturing" && faceMissingSince === null) {
        pause = Math.max(pause, cost * (1 / DETECT_BUDGET - 1));
      }
      await sleep(pause);
    }
  }

  // ---- checks ---------------------------------------------------------------------------
  const checkItems = {};
  for (const item of root.querySelectorAll("[data-check]")) checkItems[item.dataset.check] = item;

  function showCheck(name, ok, text) {
    const item = checkItems[name];
    const value = ok ? "true" : "false";
    if (item.dataset.ok !== value) item.dataset.ok = value;
    setText(item.querySelector(".text"), text);
  }

  let lighting = { luma: null, balance: null };

  function evaluateChecks() {
    const width = video.videoWidth;
    const height = video.videoHeight;
    const found = target !== null;
    const result = { found, centred: false, near: false, still: false, lit: false };
    showCheck("found", found, found ? "Face found" : "Looking for your face");
    if (!found) {
      showCheck("centred", false, "Face centred");
      showCheck("near", false, "Close enough");
      showCheck("still", false, "Holding still");
      showCheck("lit", false, "Evenly lit");
      return result;
    }
    const [x, y, w, h] = target;
    const dx = (x + w / 2) / width - 0.5;
    const dy = (y + h / 2) / height - 0.5;
    result.centred = Math.abs(dx) < 0.15 && Math.abs(dy) < 0.2;
    showCheck(
      "centred",
      result.centred,
      result.centred ? "Face centred" : "Move your face to the middle of the oval",
    );
    const size = w / width;
    result.near = size >= 0.2 && size <= 0.8;
    showCheck(
      "near",
      result.near,
      size < 0.2
        ? "Bring the phone closer"
        : size > 0.8
          ? "Move the phone a little further away"
          : "Close enough",
    );
    result.still = speed < 0.3;
    showCheck("still", result.still, result.still ? "Holding still" : "Hold still");
    const { luma, balance } = lighting;
    let litText = "Evenly lit";
    if (luma !== null && luma < 50) litText = "Too dark: face a window or a lamp";
    else if (luma !== null && luma > 225) litText = "Too bright: move out of direct light";
    else if (balance !== null && balance > 0.25) litText = "Uneven light: turn to face the light";
    result.lit = litText === "Evenly lit";
    showCheck("lit", result.lit, litText);
    return result;
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

  const round = (value, digits) => {
    const scale = 10 ** digits;
    return Math.round(value * scale) / scale;
  };
  const luma = ([r, g, b]) => 0.299 * r + 0.587 * g + 0.114 * b;

  // ---- capture --------------------------------------------------------------------------
  let phase = "aligning"; // aligning -> capturing -> uploading
  let alignedSince = null;
  let frames = [];
  let frameSize = null; // [width, height] of the frames of this capture
  let firstT = null;
  let lastT = null;
  let announcedCapturing = false;
  let lastLabelSecond = -1;

  function resetCapture(message) {
    phase = "aligning";
    alignedSince = null;
    frames = [];
    frameSize = null;
    firstT = null;
    lastT = null;
    lastLabelSecond = -1;
    setProgress(0);
    root.dataset.state = "aligning";
    setText(prompt, message || "Fit your face inside the oval and hold still.");
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

  function onFrame(tMs) {
    if (!running) return;
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) return;
    if (lastT !== null && tMs <= lastT) return; // the same frame again: not a new sample
    if (box && target) {
      for (let i = 0; i < 4; i++) box[i] += (target[i] - box[i]) * BOX_GLIDE;
    }
    const now = performance.now();
    const missingFor = faceMissingSince === null ? 0 : now - faceMissingSince;
    if (missingFor > FACE_HOLD_MS) target = null; // gone, not a blip: frames carry no face
    const regions = box && target ? sampleRegions(box, width, height) : null;
    if (regions) {
      const face = luma(regions.full_face);
      const left = luma(regions.left_cheek);
      const right = luma(regions.right_cheek);
      lighting = { luma: face, balance: Math.abs(left - right) / Math.max(left, right, 1) };
    }
    const checks = evaluateChecks();

    if (phase === "aligning") {
      const aligned = checks.found && checks.centred && checks.near && regions !== null;
      if (!aligned) {
        alignedSince = null;
        return;
      }
      if (alignedSince === null) alignedSince = now;
      if (now - alignedSince < ALIGNED_BEFORE_START_MS) return;
      phase = "capturing";
      root.dataset.state = "capturing";
      frameSize = [width, height];
      setText(prompt, "Scanning. Hold still and keep your face in the oval.");
      if (!announcedCapturing) {
        announcedCapturing = true;
        postCapturing();
      }
    }
    if (phase !== "capturing") return;

    if (missingFor > FACE_LOST_RESTART_MS) {
      resetCapture("We lost your face, so the scan starts again. Keep your face in the oval.");
      return;
    }
    if (width !== frameSize[0] || height !== frameSize[1]) {
      resetCapture("The camera changed, so the scan starts again. Hold the phone still.");
      return;
    }
    if (firstT === null) firstT = tMs;
    lastT = tMs;
    const face = regions ? box.map((v) => round(v, 2)) : null;
    frames.push({ t_ms: round(tMs - firstT, 3), regions, face });
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

  // ---- upload and result ----------------------------------------------------------------
  function postCapturing() {
    fetch(BASE + "/capturing", {
      method: "POST",
      headers: { Accept: "application/json" },
      cache: "no-store",
    }).catch(() => {}); // informational: the upload is what counts
  }

  function finishCapture() {
    phase = "uploading";
    const [frameWidth, frameHeight] = frameSize;
    const trace = {
      version: 1,
      frame_width: frameWidth,
      frame_height: frameHeight,
      user_agent: navigator.userAgent.slice(0, 1024),
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
      if (response && response.status === 410) {
        problem("This link expired during the scan. Please ask your care team for a new link.", false);
        return;
      }
      if (response && response.status === 404) {
        problem("This scan link doesn't work any more. Please ask your care team for a new link.", false);
        return;
      }
      if (response && (response.status === 413 || response.status === 422)) {
        problem("Your scan could not be sent. Press Try again to scan again.", true);
        return;
      }
      if (attempt >= UPLOAD_DELAYS_MS.length) {
        problem(
          "Your scan could not be sent. Check your internet connection, then press Try again.",
          true,
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

  async function poll() {
    for (;;) {
      let scan = null;
      try {
        const response = await fetch(BASE + "/status", {
          headers: { Accept: "application/json" },
          cache: "no-store",
        });
        if (response.status === 410) {
          problem("This link has expired. Please ask your care team for a new link.", false);
          return;
        }
        if (response.ok) scan = await response.json();
      } catch (error) {
        scan = null; // keep polling through network blips
      }
      if (scan && scan.status === "completed") return showDone(scan.vitals || {});
      if (scan && scan.status === "failed") return showFailed(scan.failure_message);
      if (scan && scan.status === "expired") {
        problem("This link has expired. Please ask your care team for a new link.", false);
        return;
      }
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

  function showFailed(message) {
    setText($("failed-reason"), message || "The scan could not be measured.");
    show("failed", "failed");
  }

  // ---- wiring ---------------------------------------------------------------------------
  $("start").addEventListener("click", startCamera);
  $("retry").addEventListener("click", () => {
    $("start").disabled = false;
    startCamera();
  });
  window.addEventListener("pagehide", stopCamera);
  if (root.dataset.state === "processing") poll();
})();
