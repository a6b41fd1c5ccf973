// Sort (click a header) and filter (the text box) every table[data-table] of report.html.
// Numeric columns (th[data-type="number"]) sort by each cell's data-sort value, an interval by
// its estimate; empty cells go last either way. Only the first data-page matching rows are
// shown until "show all". A table of over 1000 rows filters 150 ms after the last keystroke.
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function plural(count, noun) {
    return count + " " + noun + (count === 1 ? "" : "s");
  }

  function sortKey(cell, numeric) {
    if (!cell) {
      return null;
    }
    if (numeric) {
      var raw = cell.getAttribute("data-sort");
      var value = raw === null || raw === "" ? NaN : Number(raw);
      return isNaN(value) ? null : value;
    }
    var text = cell.textContent.trim();
    return text === "" ? null : text;
  }

  function compare(a, b, numeric) {
    if (a === null || b === null) {
      return a === b ? 0 : a === null ? 1 : -1;
    }
    return numeric ? a - b : collator.compare(a, b);
  }

  function setUp(section) {
    var table = section.querySelector("table[data-table]");
    var body = table.tBodies[0];
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var rows = Array.prototype.slice.call(body.rows);
    var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
    var page = Number(table.getAttribute("data-page")) || 200;
    var state = { order: rows.map(function (_, i) { return i; }), terms: [], all: false };
    var count = section.querySelector("[data-count]");
    var more = section.querySelector("[data-show-all]");
    var filter = section.querySelector("[data-filter]");

    function render(reorder) {
      var matched = 0;
      state.order.forEach(function (i) {
        var hit = state.terms.every(function (term) { return texts[i].indexOf(term) >= 0; });
        var hidden = !hit || (!state.all && matched >= page);
        if (rows[i].hidden !== hidden) {
          rows[i].hidden = hidden;
        }
        if (hit) {
          matched += 1;
        }
      });
      if (reorder) {
        var fragment = document.createDocumentFragment();
        state.order.forEach(function (i) { fragment.appendChild(rows[i]); });
        body.appendChild(fragment);
      }
      var shown = state.all ? matched : Math.min(matched, page);
      var what = matched === rows.length ? plural(rows.length, "row") :
        matched + " of " + plural(rows.length, "row") + " match";
      count.textContent = shown < matched ? what + ", first " + shown + " shown" : what;
      more.hidden = matched <= page;
      more.textContent = state.all ? "show the first " + page : "show all " + plural(matched, "row");
    }

    function sortBy(index) {
      var header = headers[index];
      var numeric = header.getAttribute("data-type") === "number";
      var descending = header.getAttribute("aria-sort") === "ascending";
      var keys = rows.map(function (row) { return sortKey(row.cells[index], numeric); });
      state.order.sort(function (a, b) {
        var ka = keys[a];
        var kb = keys[b];
        if (ka === null || kb === null) {
          return compare(ka, kb, numeric) || a - b;
        }
        return (descending ? -1 : 1) * compare(ka, kb, numeric) || a - b;
      });
      headers.forEach(function (other) { other.setAttribute("aria-sort", "none"); });
      header.setAttribute("aria-sort", descending ? "descending" : "ascending");
      render(true);
    }

    headers.forEach(function (header, index) {
      header.addEventListener("click", function () { sortBy(index); });
    });
    var pending = null;
    function applyFilter() {
      state.terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      render(false);
    }
    filter.addEventListener("input", function () {
      clearTimeout(pending);
      if (rows.length > 1000) {
        pending = setTimeout(applyFilter, 150);
      } else {
        applyFilter();
      }
    });
    more.addEventListener("click", function () {
      state.all = !state.all;
      render(false);
    });
    render(false);
  }

  Array.prototype.forEach.call(document.querySelectorAll("section[data-section]"), setUp);
})();
