// Sortable leaderboard columns: click a column button; aria-sort tells assistive tech the order.
(function () {
  "use strict";
  const table = document.getElementById("leaderboard");
  if (!table) return;
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((th, column) => {
    const button = th.querySelector("button");
    if (!button) return;
    button.addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      const numeric = button.dataset.type === "number";
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
    });
  });
})();
