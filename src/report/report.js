// The two-way map between original and residual instructions, and a
// self-check whose results go into #check (read by the tests).
(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message)); publish(); });
  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  var check = document.getElementById("check");
  var detail = document.getElementById("detail");
  var originals = {};
  all("tr[data-o]").forEach(function (r) { originals[r.dataset.o] = r; });
  var residuals = all("tr[data-r]");
  var byOriginal = {};
  residuals.forEach(function (r) {
    var a = r.dataset.from;
    if (a) { (byOriginal[a] = byOriginal[a] || []).push(r); }
  });
  var lit = { hl: [], hv: [], sel: [] };

  function mark(kind, els) {
    lit[kind].forEach(function (e) { e.classList.remove(kind); });
    lit[kind] = els.filter(function (e) { return e; });
    lit[kind].forEach(function (e) { e.classList.add(kind); });
    return lit[kind];
  }
  // The rows and graph cells of the original instruction at hex address a.
  function originalOf(a) {
    return [originals[a], document.getElementById("a_g_" + a)].filter(function (e) { return e; });
  }
  function text(row) { return row.querySelector("td.t").textContent; }
  function targetsOfResidual(row) { return row.dataset.from ? originalOf(row.dataset.from) : []; }
  // Selects a residual row: highlights its original instruction and
  // explains it (quiet: only the highlighting, for the self-check).
  function selectResidual(row, quiet) {
    mark("sel", [row]);
    var found = mark("hl", targetsOfResidual(row));
    if (quiet) { return found; }
    var how = row.getAttribute("title");
    detail.textContent = "residual " + row.querySelector("td.a").textContent + "  " + text(row) +
      ": " + how + (row.dataset.from && originals[row.dataset.from] ? " (" + text(originals[row.dataset.from]) + ")" : "");
    if (found.length) { found[0].scrollIntoView({ block: "nearest" }); }
    return found;
  }
  // Selects the original instruction at a: highlights its residual
  // instructions; returns those found highlighted.
  function selectOriginal(a, quiet) {
    var row = originals[a];
    if (!row) { return []; }
    mark("sel", [row]);
    mark("hl", (byOriginal[a] || []).concat(originalOf(a).slice(1)));
    var mine = (byOriginal[a] || []).filter(function (r) { return r.classList.contains("hl"); });
    if (quiet) { return mine; }
    var kinds = {};
    (byOriginal[a] || []).forEach(function (r) { kinds[r.dataset.how] = (kinds[r.dataset.how] || 0) + 1; });
    var parts = Object.keys(kinds).sort().map(function (k) { return kinds[k] + " " + k; });
    detail.textContent = "original " + a + "  " + text(row) + "  [" + row.getAttribute("title") + "]: " +
      (parts.length ? parts.join(", ") + " in the residual code" : "no residual instruction");
    if (byOriginal[a]) { byOriginal[a][0].scrollIntoView({ block: "nearest" }); }
    return mine;
  }

  document.addEventListener("click", function (e) {
    var t = e.target;
    var r = t.closest && t.closest("tr[data-r]");
    if (r) { selectResidual(r); return; }
    var o = t.closest && t.closest("tr[data-o]");
    if (o) { selectOriginal(o.dataset.o); return; }
    var g = t.closest && t.closest("g[id^='a_g_']");
    if (g) { e.preventDefault(); selectOriginal(g.id.slice(4)); }
  });
  residuals.forEach(function (r) {
    r.addEventListener("mouseenter", function () { mark("hv", targetsOfResidual(r)); });
    r.addEventListener("mouseleave", function () { mark("hv", []); });
  });

  function publish() {
    check.dataset.errors = String(errors.length);
    check.dataset.errorText = errors.slice(0, 5).join(" | ");
  }
  // Self-check: every residual instruction's origin is found, and every
  // original instruction finds all its residual instructions.
  try {
    var linked = 0, external = 0, svgCells = 0, mapped = 0;
    residuals.forEach(function (r) {
      if (r.dataset.ext) { external++; return; }
      if (selectResidual(r, true).length > 0) { linked++; } else { errors.push("no original for residual " + r.dataset.r); }
    });
    Object.keys(originals).forEach(function (a) {
      var expected = (byOriginal[a] || []).length;
      if (selectOriginal(a, true).length !== expected) { errors.push("residual of " + a + " not all found"); }
      if (expected > 0) { mapped++; }
      if (document.getElementById("a_g_" + a)) { svgCells++; }
    });
    mark("hl", []); mark("sel", []);
    detail.textContent = "Click an instruction: its residual or original counterparts are highlighted and explained here.";
    check.dataset.originalInstructions = String(Object.keys(originals).length);
    check.dataset.residualInstructions = String(residuals.length);
    check.dataset.linked = String(linked);
    check.dataset.external = String(external);
    check.dataset.mappedOriginals = String(mapped);
    check.dataset.svgCells = String(svgCells);
    check.dataset.blocks = String(all("div.oblock").length);
    check.dataset.residualBlocks = String(all("div.rblock").length);
  } catch (e) {
    errors.push(String(e));
  }
  publish();
  check.dataset.ready = "1";
})();
