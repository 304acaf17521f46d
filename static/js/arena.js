// Arena battle page: vote with buttons or keys 1-4, reveal, next battle (N), synced video replay (R).
(function () {
  "use strict";
  const root = document.getElementById("battle");
  if (!root) return;
  const form = document.getElementById("vote-form");
  const status = document.getElementById("status");
  const next = document.getElementById("next");
  const replay = document.getElementById("replay");
  const buttons = Array.from(form.querySelectorAll("button[name=outcome]"));
  const minView = parseFloat(root.dataset.minView || "0");
  let shownAt = performance.now();
  let voted = false;
  let busy = false;
  let readyTimer = null;

  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function setVoting(enabled) {
    buttons.forEach((b) => { b.disabled = !enabled; });
  }

  function armMinimumView() {
    shownAt = performance.now();
    clearTimeout(readyTimer);
    if (minView > 0) {
      setVoting(false);
      status.textContent = "Look at both samples; voting opens in " + minView + " s.";
      readyTimer = setTimeout(() => {
        if (!voted) { setVoting(true); status.textContent = "You can vote now."; }
      }, minView * 1000 + 50);
    } else {
      setVoting(true);
    }
  }

  function videos() { return Array.from(root.querySelectorAll("video.media")); }

  function restartVideos() {
    videos().forEach((v) => { v.currentTime = 0; const p = v.play(); if (p) p.catch(() => {}); });
  }

  function syncVideos() {
    // Loop both together: when either ends, both restart from the first frame.
    videos().forEach((v) => { v.onended = restartVideos; });
    restartVideos();
  }

  async function vote(outcome) {
    if (voted || busy) return;
    if ((performance.now() - shownAt) / 1000 < minView) {
      status.textContent = "Please look at both samples for at least " + minView + " seconds.";
      return;
    }
    busy = true;
    const body = new FormData();
    body.append("outcome", outcome);
    body.append("csrfmiddlewaretoken", csrfToken());
    try {
      const response = await fetch(form.action, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      if (!response.ok) { status.textContent = data.message || "Vote not accepted."; return; }
      voted = true;
      setVoting(false);
      reveal("A", data.model_a);
      reveal("B", data.model_b);
      status.textContent = "Vote recorded. Sample A: " + data.model_a.name + ". Sample B: " + data.model_b.name + ".";
      next.hidden = false;
      next.focus();
    } catch (err) {
      status.textContent = "Network error; your vote was not sent. Try again.";
    } finally {
      busy = false;
    }
  }

  function reveal(side, model) {
    const el = document.getElementById("name-" + side);
    el.textContent = "";
    const link = document.createElement("a");
    link.href = model.url;
    link.textContent = model.name;
    el.append("— ", link);
  }

  async function loadNext() {
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(root.dataset.newUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      if (!response.ok) { status.textContent = data.message || "No battle available."; return; }
      document.getElementById("prompt-text").textContent = data.prompt.text;
      data.media.forEach((m) => {
        const el = document.querySelector("#side-" + m.side + " .media");
        el.src = m.url;
        document.getElementById("name-" + m.side).textContent = "";
      });
      form.action = data.vote_url;
      voted = false;
      next.hidden = true;
      armMinimumView();
      if (videos().length) syncVideos();
      buttons[0].focus();
    } catch (err) {
      status.textContent = "Network error while loading the next battle.";
    } finally {
      busy = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const outcome = event.submitter ? event.submitter.value : null;
    if (outcome) vote(outcome);
  });
  next.addEventListener("click", loadNext);
  if (replay) replay.addEventListener("click", restartVideos);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    const key = event.key.toLowerCase();
    const button = buttons.find((b) => b.dataset.key === key);
    if (button) { event.preventDefault(); vote(button.value); }
    else if (key === "n" && voted) { event.preventDefault(); loadNext(); }
    else if (key === "r" && replay) { event.preventDefault(); restartVideos(); }
  });
  armMinimumView();
  if (videos().length) syncVideos();
})();
