// Sortable leaderboard columns: click a column button; aria-sort tells assistive tech the order.
// The style-control toggle sorts by the "Rank (style control)" column in place (without
// JavaScript it is a link to ?view=style, which the server orders the same way).
(function () {
  "use strict";
  const table = document.getElementById("leaderboard");
  if (!table) return;
  const headers = Array.from(table.tHead.rows[0].cells);

  function sortBy(th, column, ascending) {
    const button = th.querySelector("button");
    const numeric = button && button.dataset.type === "number";
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = a.cells[column].dataset.sort || "";
      const y = b.cells[column].dataset.sort || "";
      if (x === "" || y === "") return (x === "") - (y === "");  // missing values last
      const order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
    headers.forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  headers.forEach((th, column) => {
    const button = th.querySelector("button");
    if (!button) return;
    button.addEventListener("click", () => {
      sortBy(th, column, th.getAttribute("aria-sort") !== "ascending");
    });
  });

  const toggle = document.getElementById("style-toggle");
  const styleHead = document.getElementById("style-rank-head");
  if (!toggle || !styleHead) return;
  const plainHead = headers[0];
  const links = { plain: "", style: "" };
  const current = new URL(toggle.href, window.location.href);
  links[toggle.dataset.view === "style" ? "plain" : "style"] = current.search || "?";
  links[toggle.dataset.view] = window.location.search || "?";
  toggle.addEventListener("click", (event) => {
    event.preventDefault();
    const toStyle = toggle.dataset.view !== "style";
    if (toStyle) sortBy(styleHead, headers.indexOf(styleHead), true);
    else sortBy(plainHead, 0, true);
    toggle.dataset.view = toStyle ? "style" : "plain";
    toggle.setAttribute("aria-pressed", toStyle ? "true" : "false");
    toggle.textContent = toStyle ? "Order by rating" : "Order by style control";
    toggle.href = toStyle ? links.plain : links.style;
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", toStyle ? links.style : links.plain);
    }
  });
})();
