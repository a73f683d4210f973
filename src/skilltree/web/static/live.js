// skilltree: live pages (the activity feed, the mentors' view). The page is complete without
// this file; with it, the page listens to its organisation's event stream and, when something
// happens, fetches itself again and swaps the parts marked [data-live]. The server's template
// stays the only renderer, so what appears live is exactly what a reload would show.
"use strict";
(function () {
  const source = document.querySelector("[data-stream]");
  if (!source || !window.EventSource) return;
  const state = document.querySelector("[data-live-state]");
  let refreshing = null;
  let again = false;

  function say(text) {
    if (!state) return;
    state.textContent = text;
    state.hidden = false;
  }

  async function refresh() {
    // One refresh at a time; events arriving meanwhile ask for one more, not one each.
    if (refreshing) { again = true; return; }
    refreshing = (async () => {
      const response = await fetch(location.href, {
        credentials: "same-origin", headers: { Accept: "text/html" },
      });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-live][id]")) {
        const replacement = fresh.getElementById(region.id);
        if (replacement) region.replaceWith(document.importNode(replacement, true));
      }
    })();
    try { await refreshing; } catch (error) { say("Could not update; reload the page."); }
    refreshing = null;
    if (again) { again = false; refresh(); }
  }

  // EventSource reconnects by itself after the server's `retry:` hint and sends Last-Event-ID,
  // so the server replays what was missed; `reset` means too much was missed to replay.
  const events = new EventSource(source.dataset.stream);
  events.addEventListener("open", () => say("Live: new activity appears here as it happens."));
  events.addEventListener("feed", refresh);
  events.addEventListener("reset", refresh);
  events.addEventListener("error", () => {
    say(events.readyState === EventSource.CLOSED
      ? "Live updates stopped; reload the page."
      : "Reconnecting…");
  });
  window.addEventListener("pagehide", () => events.close());
})();
