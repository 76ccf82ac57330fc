/**
 * The face detector's client. The detector runs in static/face-worker.js: MediaPipe needs
 * 'unsafe-eval', which only that worker's policy allows; this page (it holds the link's
 * token) keeps the strict one. The worker gets video frames as ImageBitmaps and answers
 * face boxes, nothing else.
 */

// MediaPipe full-range box -> OpenCV Haar frontal-face box (measured on the same frames,
// see docs/scan-page.md): same centre x, centre 6 % of the box height higher, 85 % size.
const HAAR_SCALE = 0.85;
const HAAR_SHIFT_UP = 0.06;

/** The largest detection as a Haar-like box [x, y, w, h] in pixels, or null. */
export function largestFace(boxes, width, height) {
  let best = null;
  for (const b of boxes) {
    if (!best || b.width * b.height > best.width * best.height) best = b;
  }
  if (!best || !width) return null;
  const w = best.width * width * HAAR_SCALE;
  const h = best.height * height * HAAR_SCALE;
  const cx = best.xCenter * width;
  const cy = best.yCenter * height - HAAR_SHIFT_UP * best.height * height;
  return [cx - w / 2, cy - h / 2, w, h];
}

/**
 * Start the worker and load the model; resolves with `detect(video)`, which sends the
 * current frame and resolves with its face boxes ({xCenter, yCenter, width, height} in
 * 0..1 of the frame).
 */
export async function startDetector(workerUrl, vendor) {
  if (typeof Worker !== "function" || typeof createImageBitmap !== "function") {
    throw new Error("this browser cannot run the face finder in a worker");
  }
  const worker = new Worker(workerUrl);
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
    worker.postMessage({ type: "init", vendor });
  });
  let pending = null; // {id, resolve, reject} of the detection in flight
  let nextId = 0;
  worker.onmessage = (event) => {
    const message = event.data || {};
    if (!pending || message.id !== pending.id) return;
    const { resolve, reject } = pending;
    pending = null;
    if (message.type === "detections") resolve(Array.isArray(message.boxes) ? message.boxes : []);
    else reject(new Error(message.message || "the face finder failed"));
  };
  worker.onerror = (event) => {
    event.preventDefault();
    if (pending) pending.reject(new Error(event.message || "the face finder stopped"));
    pending = null;
  };
  return async function detect(video) {
    const frame = await createImageBitmap(video);
    const id = ++nextId;
    const answered = new Promise((resolve, reject) => {
      pending = { id, resolve, reject };
    });
    worker.postMessage({ type: "detect", id, frame }, [frame]);
    return answered;
  };
}
