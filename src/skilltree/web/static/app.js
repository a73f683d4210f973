// skilltree: progressive enhancement. Every form works without this file; with it, status
// changes, undo and note previews happen in place, and the roadmap answers to the keyboard.
"use strict";
(function () {
  document.documentElement.classList.add("js");
  const toast = document.querySelector(".toast");
  let toastTimer = 0;

  async function post(form, submitter, extra) {
    const body = new FormData(form, submitter);
    for (const [name, value] of Object.entries(extra || {})) body.set(name, value);
    const response = await fetch(form.getAttribute("action"), {
      method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    return response.json();
  }

  function showToast(message, withUndo) {
    if (!toast) return;
    toast.replaceChildren();
    const text = document.createElement("span");
    text.textContent = message;
    toast.append(text);
    if (withUndo && document.querySelector(".undo-form")) {
      const undo = document.createElement("button");
      undo.type = "button";
      undo.textContent = "Undo";
      undo.addEventListener("click", () => runUndo());
      toast.append(undo);
    }
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, 6000);
  }

  function applyBar(container, bar) {
    if (!container || !bar) return;
    const progress = container.querySelector("progress");
    if (progress) { progress.value = bar.percent; progress.textContent = Math.round(bar.percent) + "%"; }
    const set = (sel, v) => { const el = container.querySelector(sel); if (el) el.textContent = v; };
    set("[data-done]", bar.done);
    set("[data-counted]", bar.counted);
    set("[data-percent]", Math.round(bar.percent));
  }

  function apply(state) {
    applyBar(document.querySelector(".roadmap-head > [data-bar]"), state.bar);
    for (const [slug, row] of Object.entries(state.rows)) {
      const el = document.getElementById("t-" + slug);
      if (!el) continue;
      el.dataset.status = row.status || "";
      const own = el.querySelector(":scope > form.status, :scope > .topic-status form.status");
      if (own) {
        for (const button of own.querySelectorAll("button")) {
          button.setAttribute("aria-pressed", String(button.value === row.status));
        }
      }
      if (row.bar) applyBar(el.querySelector("summary [data-bar]"), row.bar);
    }
    const changed = document.getElementById("t-" + state.topic);
    if (changed && changed.classList.contains("topic")) {
      changed.classList.remove("flash");
      void changed.offsetWidth;
      changed.classList.add("flash");
    }
  }

  async function runUndo() {
    const form = document.querySelector(".undo-form");
    if (!form) return;
    try {
      const state = await post(form);
      apply(state);
      showToast(state.message, false);
    } catch (error) {
      showToast("Nothing to undo.", false);
    }
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.matches("form.status")) {
      event.preventDefault();
      try {
        const state = await post(form, event.submitter);
        apply(state);
        showToast(state.message, true);
      } catch (error) {
        form.submit();  // fall back to the plain post and its page
      }
    } else if (form.matches(".undo-form")) {
      event.preventDefault();
      runUndo();
    } else if (form.matches(".note-form") && event.submitter && event.submitter.value === "preview") {
      event.preventDefault();
      const target = document.querySelector("[data-preview-target]");
      try {
        const result = await post(form, event.submitter);
        // Rendered and sanitised by the server (the same nh3 allow-list as saved notes).
        target.innerHTML = "<h3>Preview</h3>" + result.html;
        target.hidden = false;
      } catch (error) {
        form.submit();
      }
    }
  });

  // "Only what is left": the same class the server sets for ?left=true, toggled in place.
  const filter = document.querySelector("[data-filter]");
  const tree = document.querySelector(".tree");
  if (filter && tree) {
    filter.addEventListener("change", () => {
      tree.classList.toggle("only-left", filter.checked);
      const url = new URL(location.href);
      if (filter.checked) url.searchParams.set("left", "true"); else url.searchParams.delete("left");
      history.replaceState(null, "", url);
    });
  }

  // Keyboard: j/k move between topics, t/i/d/s set a status, u undoes.
  const KEYS = { t: "todo", i: "in_progress", d: "done", s: "skipped" };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest("input, textarea, select, [contenteditable]")) return;
    const topics = Array.from(document.querySelectorAll(".topic")).filter((el) => el.offsetParent !== null);
    const current = target.closest(".topic, .topic-head");
    if (event.key === "j" || event.key === "k") {
      if (!topics.length) return;
      let index = current ? topics.indexOf(current) : -1;
      index = event.key === "j" ? Math.min(index + 1, topics.length - 1) : Math.max(index - 1, 0);
      const link = topics[index].querySelector(".title");
      if (link) { link.focus(); link.scrollIntoView({ block: "nearest" }); }
      event.preventDefault();
    } else if (KEYS[event.key] && current) {
      const button = current.querySelector('form.status button[value="' + KEYS[event.key] + '"]');
      if (button) { button.form.requestSubmit(button); event.preventDefault(); }
    } else if (event.key === "u" && document.querySelector(".undo-form")) {
      runUndo();
      event.preventDefault();
    }
  });

  // The review session: space shows the answer, 1-4 rate it.
  const answer = document.querySelector("[data-answer]");
  if (answer) {
    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.target.closest("input, textarea, select")) return;
      if (event.key === " " && !answer.open && event.target === document.body) {
        answer.open = true;
        event.preventDefault();
      }
      const button = document.querySelector('.ratings [data-key="' + event.key + '"]');
      if (button) { button.click(); event.preventDefault(); }
    });
  }

  // E-mailed links carry their token in the fragment, which never reaches the server's logs.
  // A form that needs more than the token (a new password) is filled, not submitted.
  const tokenForm = document.querySelector("[data-token-from-fragment]");
  if (tokenForm) {
    const field = tokenForm.querySelector("[data-from-fragment]") || tokenForm.querySelector('[name="token"]');
    const token = new URLSearchParams(location.hash.slice(1)).get(field.dataset.fromFragment || "token");
    if (token) {
      field.value = token;
      history.replaceState(null, "", location.pathname);
      if (tokenForm.matches("[data-needs-token]")) {
        tokenForm.querySelector('[type="password"], [name="code"]').focus();
        const other = document.querySelector("[data-request-link]");
        if (other) other.hidden = true;
      } else {
        tokenForm.requestSubmit();
      }
    }
  }
})();
