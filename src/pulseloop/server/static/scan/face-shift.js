/**
 * The face's own movement, measured on every frame from the pixels the regions are read
 * from. The page's sampling box is smoothed and ignores moves under a dead band, so it
 * hides a small sway, yet the regions slide over the face with it; the detector answers a
 * few times a second at best (once a second on a busy phone), too seldom to show a sway
 * of ~1 Hz. So the face's column and row brightness profiles (green, the sharpest channel)
 * are matched against those of the first frame of the capture, in frame coordinates, to a
 * fraction of a pixel: the face's shift since the capture began (trace `shift`, version 2;
 * docs/vitals.md, "Why version 2"). Each profile is divided by its mean, so the pulse (the
 * whole face brightening by ~0.3 %) does not move it.
 */

const SEARCH_PX = 4; // per frame, around the last shift
const WIDE_PX = 24; // when the best match is at the edge, look this far once

/** Column and row profiles of a crop {data (RGBA), width, height, x0, y0}, mean 1. */
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
  if (Math.abs(best - centre) === reach && reach < WIDE_PX) {
    return bestShift(cur, cur0, ref, ref0, around, WIDE_PX);
  }
  const left = costs.has(best - 1) ? costs.get(best - 1) : Infinity;
  const right = costs.has(best + 1) ? costs.get(best + 1) : Infinity;
  const curve = left - 2 * bestCost + right;
  if (!Number.isFinite(curve) || curve <= 0) return best;
  // Parabolic refinement through the best offset and its neighbours.
  return best + Math.max(-0.5, Math.min(0.5, (0.5 * (left - right)) / curve));
}

/** A tracker for one capture: `measure(crop)` -> [dx, dy] px since its first crop, or null. */
export function createShiftTracker() {
  let reference = null;
  let last = [0, 0];
  return {
    reset() {
      reference = null;
      last = [0, 0];
    },
    measure(crop) {
      const now = profiles(crop);
      if (!reference) {
        reference = now;
        last = [0, 0];
        return [0, 0];
      }
      const dx = bestShift(now.cols, now.x0, reference.cols, reference.x0, last[0], SEARCH_PX);
      const dy = bestShift(now.rows, now.y0, reference.rows, reference.y0, last[1], SEARCH_PX);
      if (dx === null || dy === null) return null;
      last = [dx, dy];
      return [dx, dy];
    },
  };
}
