/**
 * The face detector, in a Web Worker of its own.
 *
 * MediaPipe's face detection (Emscripten/embind glue) builds functions with `new Function`,
 * which needs the Content-Security-Policy source 'unsafe-eval'. That policy is granted to
 * this worker alone (the server sends it with this file); the page that holds the scan
 * link's token keeps the strict policy. The worker never learns the token: it is served
 * from /static/, the page sends it only video frames, and it answers only face boxes.
 *
 * Protocol (postMessage):
 *   page -> worker  {type: "init", vendor}            load the model from `vendor`
 *   worker -> page  {type: "ready"} | {type: "error", message}
 *   page -> worker  {type: "detect", id, frame}       frame: an ImageBitmap (transferred)
 *   worker -> page  {type: "detections", id, boxes}   boxes: [{xCenter, yCenter, width,
 *                                                     height}] in 0..1 of the frame
 */
"use strict";

let detector = null;
let answer = null; // resolves the detection in flight with its boxes

function boxesOf(results) {
  const boxes = [];
  for (const detection of (results && results.detections) || []) {
    const b = detection.boundingBox;
    if (b) boxes.push({ xCenter: b.xCenter, yCenter: b.yCenter, width: b.width, height: b.height });
  }
  if (results && results.image && typeof results.image.close === "function") {
    results.image.close(); // a copy of the frame we do not use: free its memory now
  }
  return boxes;
}

/**
 * This MediaPipe release's own worker mode is unfinished (it passes its model files to
 * importScripts and never loads its graph), so the worker looks like a page to it: a
 * `window`, and a `document` whose script tags load with importScripts and whose canvas
 * is an OffscreenCanvas. Nothing else of the DOM is used (measured in Chromium 156).
 */
function lookLikeAPage() {
  const noop = () => {};
  self.window = self;
  self.document = {
    body: {
      appendChild(element) {
        if (element.tag === "script") element.load();
      },
    },
    currentScript: null,
    addEventListener: noop,
    removeEventListener: noop,
    querySelector: () => null,
    getElementById: () => null,
    createElement(tag) {
      if (tag === "canvas") return new OffscreenCanvas(1, 1);
      const listeners = {};
      const attributes = {};
      return {
        tag,
        setAttribute(name, value) {
          attributes[name] = value;
        },
        addEventListener(name, listener) {
          listeners[name] = listener;
        },
        load() {
          try {
            importScripts(attributes.src);
          } catch (error) {
            if (listeners.error) listeners.error(error);
            return;
          }
          if (listeners.load) listeners.load();
        },
      };
    },
  };
}

async function init(vendor) {
  lookLikeAPage();
  importScripts(vendor + "face_detection.js");
  detector = new self.FaceDetection({ locateFile: (file) => vendor + file });
  // Only { model: "full" }: in this release the short-range graph, and any other option
  // (minDetectionConfidence, selfieMode), make the detection calculator fail to open
  // ("options_.has_num_classes()"), measured in Chromium 156. The default threshold is 0.5.
  detector.setOptions({ model: "full" });
  detector.onResults((results) => {
    if (answer) answer(boxesOf(results));
  });
  await detector.initialize();
}

async function detect(frame) {
  const found = new Promise((resolve) => {
    answer = resolve;
  });
  // MediaPipe calls onResults before send() resolves; should a release ever answer later,
  // a frame with no answer soon after counts as "no face" instead of stalling the loop.
  const late = new Promise((resolve) => setTimeout(() => resolve([]), 250));
  try {
    await detector.send({ image: frame });
    return await Promise.race([found, late]);
  } finally {
    answer = null;
    frame.close();
  }
}

self.onmessage = async (event) => {
  const message = event.data || {};
  if (message.type === "init") {
    try {
      await init(String(message.vendor));
      self.postMessage({ type: "ready" });
    } catch (error) {
      self.postMessage({ type: "error", message: String((error && error.message) || error) });
    }
  } else if (message.type === "detect") {
    try {
      const boxes = await detect(message.frame);
      self.postMessage({ type: "detections", id: message.id, boxes });
    } catch (error) {
      self.postMessage({ type: "error", id: message.id, message: String(error) });
    }
  }
};
