// skilltree: a study room, live (docs/realtime.md). Without this file the room is a page of
// plain forms; with it, the same form's text goes over the room's WebSocket, and messages,
// deletions, presence and typing arrive as they happen. A dropped socket reconnects with a
// fresh ticket and `last_seq`, so the server replays exactly what this page has not shown.
"use strict";
(function () {
  const room = document.querySelector("[data-room]");
  if (!room || !window.WebSocket) return;
  const list = room.querySelector(".messages");
  const form = room.querySelector("[data-send]");
  const field = form.querySelector("[name=body]");
  const csrf = form.querySelector("[name=csrf_token]").value;
  const state = room.querySelector("[data-live-state]");
  const typing = room.querySelector("[data-typing]");
  const template = document.getElementById("message-template");
  const me = Number(room.dataset.me);
  const base = "/v1/orgs/" + room.dataset.org + "/rooms/" + room.dataset.roomKey;
  // Reconnecting cannot help after these (docs/realtime.md, close codes).
  const FINAL = [1008, 4029, 4401, 4403];
  let lastSeq = Number(room.dataset.lastSeq);
  let socket = null;
  let beat = 0;
  let attempt = 0;
  let lastTyping = 0;
  const typists = new Map();

  function say(text) { state.textContent = text; }

  function nameOf(userId) {
    const item = room.querySelector('[data-presence] [data-user="' + userId + '"]');
    return item ? item.querySelector(".name").textContent : "Someone";
  }

  function time(iso) {
    const at = new Date(iso);
    return String(at.getUTCHours()).padStart(2, "0") + ":" + String(at.getUTCMinutes()).padStart(2, "0");
  }

  function showMessage(frame) {
    if (document.getElementById("m-" + frame.seq)) return;
    const item = template.content.firstElementChild.cloneNode(true);
    const author = frame.author || nameOf(frame.author_id);
    item.id = "m-" + frame.seq;
    item.dataset.seq = frame.seq;
    item.classList.toggle("mine", frame.author_id === me);
    item.querySelector(".author").textContent = author;
    const stamp = item.querySelector("time");
    stamp.dateTime = frame.created_at;
    stamp.textContent = time(frame.created_at);
    item.querySelector(".body").textContent = frame.body;  // text, never HTML
    const remove = item.querySelector("form.delete-message");
    if (remove) {
      remove.action = location.pathname + "/messages/" + frame.seq + "/delete";
      remove.querySelector("button").setAttribute(
        "aria-label", "Delete the message from " + author + " at " + time(frame.created_at));
    }
    if (frame.deleted) markDeleted(item);
    list.append(item);
    const empty = room.querySelector("[data-empty]");
    if (empty) empty.remove();
    typists.delete(frame.author_id);
    showTyping();
    item.scrollIntoView({ block: "nearest" });
  }

  function markDeleted(item) {
    item.classList.add("deleted");
    const body = item.querySelector(".body");
    const note = document.createElement("em");
    note.className = "muted";
    note.textContent = "Message deleted";
    body.replaceChildren(note);
    const remove = item.querySelector("form.delete-message");
    if (remove) {
      if (remove.contains(document.activeElement)) field.focus();
      remove.hidden = true;
    }
  }

  function setPresence(userId, online) {
    const item = room.querySelector('[data-presence] [data-user="' + userId + '"]');
    if (!item) return;
    item.className = online ? "online" : "away";
    item.querySelector(".state").textContent = online ? "here" : "away";
  }

  function showTyping() {
    const now = Date.now();
    const names = [];
    for (const [userId, until] of typists) {
      if (until > now) names.push(nameOf(userId)); else typists.delete(userId);
    }
    typing.textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " typing…" : "";
  }

  function receive(frame) {
    switch (frame.type) {
      case "welcome":
        attempt = 0;
        say("Live: messages appear as they are sent.");
        for (const item of room.querySelectorAll("[data-presence] [data-user]")) {
          setPresence(Number(item.dataset.user), frame.present.includes(Number(item.dataset.user)));
        }
        clearInterval(beat);
        beat = setInterval(() => send({ type: "heartbeat" }), frame.heartbeat_seconds * 1000);
        break;
      case "message":
        lastSeq = Math.max(lastSeq, frame.seq);
        showMessage(frame);
        break;
      case "deletion": {
        lastSeq = Math.max(lastSeq, frame.seq);
        const target = document.getElementById("m-" + frame.target_seq);
        if (target) markDeleted(target);
        break;
      }
      case "reset":
        location.reload();  // too far behind to replay: the page has the newest messages
        break;
      case "presence":  // batched: everyone who came or went in the last interval
        for (const userId of frame.online) setPresence(userId, true);
        for (const userId of frame.offline) setPresence(userId, false);
        break;
      case "typing":
        if (frame.user_id !== me) { typists.set(frame.user_id, Date.now() + 4000); showTyping(); }
        break;
      case "error":
        say(frame.detail);
        break;
    }
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(frame)); return true; }
    return false;
  }

  async function connect() {
    say("Connecting…");
    let url;
    try {
      const response = await fetch(base + "/tickets", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      });
      if (response.status === 401 || response.status === 403 || response.status === 404) {
        say("You can no longer join this room; reload the page.");
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      url = (await response.json()).url;
    } catch (error) {
      retry();
      return;
    }
    socket = new WebSocket(location.origin.replace(/^http/, "ws") + url + "&last_seq=" + lastSeq);
    socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      clearInterval(beat);
      socket = null;
      if (FINAL.includes(event.code)) { say("Disconnected (" + (event.reason || event.code) + "); reload the page."); return; }
      retry();
    });
  }

  function retry() {
    // Exponential back-off with full jitter, so a restarted server is not stampeded.
    const delay = Math.random() * Math.min(10000, 250 * 2 ** attempt++);
    say("Reconnecting…");
    setTimeout(connect, delay);
  }

  form.addEventListener("submit", (event) => {
    const body = field.value.trim();
    if (!body) return;
    // Without a socket the form is posted as it is (and the page reloads).
    if (send({ type: "message", body })) {
      event.preventDefault();
      field.value = "";
      field.focus();
    }
  });

  field.addEventListener("input", () => {
    const now = Date.now();
    if (now - lastTyping > 2000 && field.value) { lastTyping = now; send({ type: "typing" }); }
  });

  list.addEventListener("submit", (event) => {
    const remove = event.target.closest("form.delete-message");
    if (!remove) return;
    const seq = Number(remove.closest("[data-seq]").dataset.seq);
    if (send({ type: "delete", seq })) event.preventDefault();
  });

  setInterval(showTyping, 1000);
  window.addEventListener("pagehide", () => { if (socket) socket.close(1000, "page closed"); });
  connect();
})();
