/**
 * Reading colours from the raw camera frame: the mean [r, g, b] of each skin region of the
 * face box (docs/vitals.md, "Where the regions are"), and the whole frame's brightness
 * (a dark room is "too dark", not "no face"). Colours are read with canvas getImageData
 * before anything is encoded: compression would erase the 0.3 % change the pulse makes.
 */

// Regions as fractions [x0, y0, x1, y1] of a Haar-like face box (docs/vitals.md).
const REGIONS = {
  forehead: [0.32, 0.12, 0.68, 0.25],
  left_cheek: [0.15, 0.55, 0.38, 0.75],
  right_cheek: [0.62, 0.55, 0.85, 0.75],
  full_face: [0.1, 0.05, 0.9, 0.95],
};
const REGION_NAMES = Object.keys(REGIONS);
const MIN_REGION_PX = 4;

export const round = (value, digits) => {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
};

export const luma = ([r, g, b]) => 0.299 * r + 0.587 * g + 0.114 * b;

/** Each region's integer pixel rectangle (edges rounded as the server rebuilds them), or null. */
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

/**
 * `sample(face, width, height)` -> {means, crop} for the current frame of `video`, or null
 * when a region falls off the frame. `crop` is the full-face rectangle's pixels
 * {data, width, height, x0, y0} (the face-shift tracker reads it).
 */
export function createSampler(video) {
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true, alpha: false });
  return function sample(face, width, height) {
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
    return { means, crop: { data, width: sw, height: sh, x0: ox, y0: oy } };
  };
}

/** `measure()` -> mean luma (0-255) of the whole current frame, from a 32x24 thumbnail. */
export function createSceneMeter(video) {
  const canvas = document.createElement("canvas");
  canvas.width = 32;
  canvas.height = 24;
  const context = canvas.getContext("2d", { willReadFrequently: true, alpha: false });
  return function measure() {
    context.drawImage(video, 0, 0, 32, 24);
    const data = context.getImageData(0, 0, 32, 24).data;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += luma([data[i], data[i + 1], data[i + 2]]);
    return sum / (data.length / 4);
  };
}
