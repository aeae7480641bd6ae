// Tables too wide for the screen (phones) are shown one row per block, each cell under its
// column's heading, instead of being cut off at the screen's edge.
(function () {
  "use strict";
  function label(table) {
    var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return th.textContent.trim();
    });
    table.querySelectorAll("tbody tr").forEach(function (row) {
      Array.prototype.forEach.call(row.children, function (cell, i) {
        if (heads[i]) cell.setAttribute("data-label", heads[i]);
        if (!cell.textContent.trim()) cell.classList.add("vestespy-empty");
      });
    });
  }
  function fit() {
    document.querySelectorAll("article table").forEach(function (table) {
      if (!table.querySelector("thead")) return;
      table.classList.remove("vestespy-stacked");
      var box = table.parentElement;
      if (table.scrollWidth > box.clientWidth + 1) {
        label(table);
        table.classList.add("vestespy-stacked");
      }
    });
  }
  window.addEventListener("load", fit);
  window.addEventListener("resize", fit);
})();
