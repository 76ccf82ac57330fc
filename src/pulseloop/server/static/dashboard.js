// Live status for the dashboard: every element with data-live="N" is re-fetched from the
// same URL every N seconds and swapped in place (no inline script: the CSP forbids it).
// Stops once the fresh page has no live element (e.g. the run finished), and pauses
// while the tab is hidden or the person is using a control inside the live region.
(function () {
  "use strict";
  var region = document.querySelector("[data-live]");
  if (!region || !window.fetch || !window.DOMParser) return;
  var seconds = Math.max(2, parseInt(region.getAttribute("data-live"), 10) || 5);

  function busy() {
    var active = document.activeElement;
    return document.hidden || (active && region.contains(active) &&
      /^(SELECT|INPUT|TEXTAREA|SUMMARY)$/.test(active.tagName));
  }

  function refresh() {
    if (busy()) { schedule(); return; }
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "Accept": "text/html" },
      cache: "no-store",
      redirect: "manual"
    }).then(function (response) {
      if (response.type === "opaqueredirect" || response.status === 303) {
        window.location.assign("/dashboard/sign-in");  // the session ended
        return null;
      }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null) { schedule(); return; }
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
      if (!fresh) return;
      region.replaceWith(fresh);
      region = fresh;
      if (fresh.hasAttribute("data-live")) schedule();
    }).catch(function () { schedule(); });
  }

  function schedule() { window.setTimeout(refresh, seconds * 1000); }
  schedule();
})();
