// Arena battle page. Pairs: vote with buttons or keys 1-4. K-wise battles: pick samples best
// first (buttons, keys 1-K or the letters), Backspace undoes, Enter submits the ranking, T submits
// only the first pick as the best. Then the reveal, next battle (N), synced video replay (R).
(function () {
  "use strict";
  const root = document.getElementById("battle");
  if (!root) return;
  const form = document.getElementById("vote-form");
  const status = document.getElementById("status");
  const next = document.getElementById("next");
  const replay = document.getElementById("replay");
  const size = parseInt(root.dataset.size || "2", 10);
  const kwise = size > 2;
  const sides = "ABCDEFGH".slice(0, size).split("");
  const buttons = Array.from(form.querySelectorAll("button[name=outcome]"));
  const picks = Array.from(root.querySelectorAll("button.pick"));
  const rankSubmit = document.getElementById("rank-submit");
  const bestSubmit = document.getElementById("best-submit");
  const undo = document.getElementById("rank-undo");
  const rankingText = document.getElementById("ranking-text");
  const radios = Array.from(form.querySelectorAll("input[name=best]"));
  const minView = parseFloat(root.dataset.minView || "0");
  let shownAt = performance.now();
  let voted = false;
  let busy = false;
  let open = false;
  let readyTimer = null;
  let ranking = [];

  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function renderRanking() {
    if (!kwise) return;
    sides.forEach((side) => {
      const at = ranking.indexOf(side);
      document.getElementById("rank-" + side).textContent = at >= 0 ? "#" + (at + 1) : "";
    });
    picks.forEach((b) => {
      const taken = ranking.includes(b.dataset.side);
      b.disabled = !open || taken;
      b.setAttribute("aria-pressed", taken ? "true" : "false");
    });
    rankingText.textContent = "Your ranking: " + (ranking.length ? ranking.join(" > ") : "(none yet)")
      + (ranking.length && ranking.length < size ? " (pick " + (size - ranking.length) + " more)" : "");
    rankSubmit.disabled = !open || ranking.length !== size;
    bestSubmit.disabled = !open || (ranking.length === 0 && !radios.some((r) => r.checked));
    undo.disabled = !open || ranking.length === 0;
    radios.forEach((r) => { r.checked = ranking.length > 0 && r.value === ranking[0]; r.disabled = !open; });
  }

  function setVoting(enabled) {
    open = enabled;
    buttons.forEach((b) => { b.disabled = !enabled; });
    renderRanking();
  }

  function armMinimumView() {
    shownAt = performance.now();
    clearTimeout(readyTimer);
    if (minView > 0) {
      setVoting(false);
      status.textContent = "Look at " + (kwise ? "all " + size : "both") + " samples; voting opens in " + minView + " s.";
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
    // Loop all together: when any ends, all restart from the first frame.
    videos().forEach((v) => { v.onended = restartVideos; });
    restartVideos();
  }

  function pick(side) {
    if (voted || !open || ranking.includes(side)) return;
    ranking.push(side);
    if (ranking.length === size - 1) {  // the last one is implied
      ranking.push(sides.find((s) => !ranking.includes(s)));
    }
    renderRanking();
    if (ranking.length === size) rankSubmit.focus();
  }

  async function send(fields) {
    if (voted || busy) return;
    if ((performance.now() - shownAt) / 1000 < minView) {
      status.textContent = "Please look at the samples for at least " + minView + " seconds.";
      return;
    }
    busy = true;
    const body = new FormData();
    Object.entries(fields).forEach(([k, v]) => body.append(k, v));
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
      data.models.forEach((m) => reveal(m.side, m));
      status.textContent = "Vote recorded (" + data.summary + "). "
        + data.models.map((m) => "Sample " + m.side + ": " + m.name + ".").join(" ");
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
      const body = new FormData();
      if (root.dataset.k) body.append("k", root.dataset.k);
      const response = await fetch(root.dataset.newUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
      });
      const data = await response.json();
      if (!response.ok) { status.textContent = data.message || "No battle available."; return; }
      if (data.size !== size) { window.location.reload(); return; }  // another layout
      document.getElementById("prompt-text").textContent = data.prompt.text;
      const source = document.querySelector("#source .source-media");
      if (source && data.source) source.src = data.source.url;
      data.media.forEach((m) => {
        const el = document.querySelector("#side-" + m.side + " .media");
        el.src = m.url;
        document.getElementById("name-" + m.side).textContent = "";
      });
      form.action = data.vote_url;
      voted = false;
      ranking = [];
      next.hidden = true;
      armMinimumView();
      if (videos().length) syncVideos();
      (kwise ? picks[0] : buttons[0]).focus();
    } catch (err) {
      status.textContent = "Network error while loading the next battle.";
    } finally {
      busy = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const submitter = event.submitter;
    if (!kwise) {
      if (submitter && submitter.value) send({ outcome: submitter.value });
      return;
    }
    if (submitter === rankSubmit) {
      if (ranking.length === size) send({ ranking: ranking.join(",") });
    } else {
      const chosen = ranking[0] || (radios.find((r) => r.checked) || {}).value;
      if (chosen) send({ best: chosen });
      else status.textContent = "Pick the best sample first.";
    }
  });
  picks.forEach((b) => b.addEventListener("click", () => pick(b.dataset.side)));
  radios.forEach((r) => r.addEventListener("change", () => {
    if (r.checked) { ranking = [r.value]; renderRanking(); }
  }));
  if (undo) undo.addEventListener("click", () => { ranking.pop(); if (ranking.length === size - 1) ranking.pop(); renderRanking(); });
  next.addEventListener("click", loadNext);
  if (replay) replay.addEventListener("click", restartVideos);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    const key = event.key.toLowerCase();
    if (key === "n" && voted) { event.preventDefault(); loadNext(); return; }
    if (key === "r" && replay) { event.preventDefault(); restartVideos(); return; }
    if (!kwise) {
      const button = buttons.find((b) => b.dataset.key === key);
      if (button) { event.preventDefault(); send({ outcome: button.value }); }
      return;
    }
    const byNumber = picks.find((b) => b.dataset.key === key);
    const side = byNumber ? byNumber.dataset.side : sides.find((s) => s.toLowerCase() === key);
    if (side) { event.preventDefault(); pick(side); }
    else if (key === "backspace") { event.preventDefault(); undo.click(); }
    else if (key === "enter" && ranking.length === size) { event.preventDefault(); send({ ranking: ranking.join(",") }); }
    else if (key === "t" && ranking.length > 0) { event.preventDefault(); send({ best: ranking[0] }); }
  });
  armMinimumView();
  if (videos().length) syncVideos();
})();
