// Berth console live updates: every second, fetch this page again and swap each
// <section data-live id=…> whose markup changed. Forms outside those sections are untouched.
"use strict";
(function () {
  const INTERVAL_MS = 1000;
  let busy = false;

  async function refresh() {
    if (busy || document.hidden || !document.querySelector("[data-live]")) return;
    busy = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (response.redirected && new URL(response.url).pathname === "/console/sign-in") {
        location.assign("/console/sign-in");
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const section of fresh.querySelectorAll("[data-live][id]")) {
        const current = document.getElementById(section.id);
        if (current && current.innerHTML !== section.innerHTML) {
          const logs = current.querySelectorAll("pre.logs");
          const atBottom = Array.from(logs).map(
            (pre) => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8
          );
          current.innerHTML = section.innerHTML;
          current.querySelectorAll("pre.logs").forEach((pre, i) => {
            if (atBottom[i] !== false) pre.scrollTop = pre.scrollHeight;
          });
        }
      }
      document.body.dataset.refreshedAt = String(Date.now());
    } catch (e) {
      // A failed poll is retried on the next tick.
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, INTERVAL_MS);
  document.querySelectorAll("pre.logs").forEach((pre) => { pre.scrollTop = pre.scrollHeight; });
})();
