/**
 * Talking to the server about this scan link: where the patient is (`/progress`), whether
 * the link still takes a scan (`/status`), the trace upload (`/trace`) and giving up
 * (`/abandon`), each with the retries a phone's connection needs. No screen is touched
 * here: each call resolves with what happened, and the page decides what to show.
 */

const UPLOAD_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
const GIVE_UP_DELAYS_MS = [1000, 2000, 4000];

export const OPEN_STATUSES = new Set(["pending", "opened", "aligning", "capturing"]);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client for the link at `base`; `onExpiresIn(seconds)` hears the server's clock. */
export function createLink(base, onExpiresIn) {
  async function post(path, body) {
    return fetch(base + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body || {}),
      cache: "no-store",
    });
  }

  /** Tell the server where the patient is; resolves with the scan's status, or null. */
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
    if (typeof body.expires_in_s === "number") onExpiresIn(body.expires_in_s);
    return body.status;
  }

  /** What the server says about the link now: {state: "open" | "expired" | a status, scan}. */
  async function state() {
    try {
      const response = await fetch(base + "/status", {
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

  /**
   * Send the trace; resolves with "accepted", "ended" (the link is dead), "rejected" (the
   * server refused the body) or "failed" (no connection after every retry).
   * `onRetrying()` is called before each wait.
   */
  async function upload(body, onRetrying) {
    for (let attempt = 0; ; attempt++) {
      let response = null;
      try {
        response = await post("/trace", body);
      } catch (error) {
        response = null; // offline or the connection dropped: retry below
      }
      // 409: an earlier attempt arrived although its answer was lost.
      if (response && (response.status === 202 || response.status === 409)) return "accepted";
      if (response && (response.status === 410 || response.status === 404)) return "ended";
      if (response && (response.status === 413 || response.status === 422)) return "rejected";
      if (attempt >= UPLOAD_DELAYS_MS.length) return "failed";
      onRetrying();
      await sleep(UPLOAD_DELAYS_MS[attempt]);
    }
  }

  /**
   * End the scan with `body.reason`; resolves with {outcome: "failed", scan} when the
   * server recorded it, "expired", "uploaded" (another tab sent a trace) or "offline".
   */
  async function abandon(body) {
    for (let attempt = 0; ; attempt++) {
      let response = null;
      try {
        response = await post("/abandon", body);
      } catch (error) {
        response = null;
      }
      if (response && response.ok) {
        return { outcome: "failed", scan: await response.json().catch(() => ({})) };
      }
      if (response && (response.status === 410 || response.status === 404)) {
        return { outcome: "expired" };
      }
      if (response && response.status === 409) return { outcome: "uploaded" };
      if (attempt >= GIVE_UP_DELAYS_MS.length) return { outcome: "offline" };
      await sleep(GIVE_UP_DELAYS_MS[attempt]);
    }
  }

  return { report, state, upload, abandon };
}
