// Concord console: live updates over server-sent events, and the chart.
// Hand-written, no dependencies. Everything from the server is put into
// the page as text (textContent, setAttribute), never as HTML.
(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");
  if (page !== "overview" && page !== "list" && page !== "transaction") return;

  var es = new EventSource(page === "overview" ? "/events?view=overview" : "/events");
  // A stream the server dropped (this page fell behind) reconnects on its
  // own; a list or transaction page reloads then, to show what it missed.
  // The stream opens once the server is watching: what changed while the
  // page was loading is found by reading the page again, once.
  var opened = false;
  es.addEventListener("open", function () {
    if (opened && page !== "overview") location.reload();
    if (!opened && page !== "overview") checkMissed();
    opened = true;
  });
  function checkMissed() {
    fetch(location.href, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (text) {
      if (text === null) return;
      var fresh = new DOMParser().parseFromString(text, "text/html");
      if (page === "transaction") {
        var now = fresh.querySelector("main"), shown = document.querySelector("main");
        if (now && shown && now.innerHTML !== shown.innerHTML) location.reload();
        return;
      }
      var top = fresh.querySelector("#txs tbody tr");
      var table = document.getElementById("txs");
      if (!top || !table || table.getAttribute("data-live") !== "1") return;
      var id = top.getAttribute("data-id");
      var rows = table.tBodies[0].rows;
      for (var i = 0; i < rows.length; i++) {
        if (rows[i].getAttribute("data-id") === id) return;
      }
      document.getElementById("more").hidden = false;
    }).catch(function () {});
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function setText(id, text) {
    var e = document.getElementById(id);
    if (e) e.textContent = text;
  }
  function fmtTime(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    return d.toISOString().replace("T", " ");
  }
  // Go durations arrive as nanoseconds.
  function fmtDur(ns) {
    if (!ns || ns <= 0) return "0s";
    var ms = ns / 1e6;
    if (ms < 1000) return (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + "ms";
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + "s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m" + Math.round(s - 60 * m) + "s";
    return Math.floor(m / 60) + "h" + (m % 60) + "m";
  }
  function txLink(id) {
    var a = el("a", id);
    a.setAttribute("href", "/transactions/" + encodeURIComponent(id));
    return a;
  }

  // ---- overview -------------------------------------------------------
  var series = [];
  var SVG = "http://www.w3.org/2000/svg";

  function mergeBuckets(bs) {
    bs.forEach(function (b) {
      for (var i = series.length - 1; i >= 0 && i >= series.length - 10; i--) {
        if (series[i].t === b.t) { series[i] = b; return; }
      }
      if (series.length === 0 || b.t > series[series.length - 1].t) series.push(b);
    });
    while (series.length > 300) series.shift();
  }
  function aborted(b) {
    var n = 0;
    for (var c in (b.aborted || {})) n += b.aborted[c];
    return n;
  }
  function drawChart() {
    var svg = document.getElementById("chart");
    if (!svg) return;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var W = 900, H = 180, top = 10, n = 300;
    var max = 1;
    series.forEach(function (b) { max = Math.max(max, b.committed + aborted(b), b.begun); });
    var end = series.length ? series[series.length - 1].t : 0;
    var bw = W / n;
    function y(v) { return H - (H - top) * v / max; }
    // Grid lines at quarters.
    for (var q = 1; q <= 4; q++) {
      var gl = document.createElementNS(SVG, "line");
      gl.setAttribute("x1", 0); gl.setAttribute("x2", W);
      gl.setAttribute("y1", y(max * q / 4)); gl.setAttribute("y2", y(max * q / 4));
      gl.setAttribute("stroke", "#e3e6ec"); gl.setAttribute("stroke-width", "1");
      svg.appendChild(gl);
    }
    // A line each minute, as the axis below labels them.
    for (var m = 1; m <= 4; m++) {
      var vl = document.createElementNS(SVG, "line");
      vl.setAttribute("x1", W - m * 60 * bw); vl.setAttribute("x2", W - m * 60 * bw);
      vl.setAttribute("y1", top); vl.setAttribute("y2", H);
      vl.setAttribute("stroke", "#eef0f4"); vl.setAttribute("stroke-width", "1");
      svg.appendChild(vl);
    }
    var begun = [];
    series.forEach(function (b) {
      var x = W - (end - b.t + 1) * bw;
      var c = b.committed, a = aborted(b);
      if (c > 0) {
        var rc = document.createElementNS(SVG, "rect");
        rc.setAttribute("x", x); rc.setAttribute("width", Math.max(bw - 0.5, 0.5));
        rc.setAttribute("y", y(c)); rc.setAttribute("height", H - y(c));
        rc.setAttribute("fill", "#2e9e57");
        svg.appendChild(rc);
      }
      if (a > 0) {
        var ra = document.createElementNS(SVG, "rect");
        ra.setAttribute("x", x); ra.setAttribute("width", Math.max(bw - 0.5, 0.5));
        ra.setAttribute("y", y(c + a)); ra.setAttribute("height", y(c) - y(c + a));
        ra.setAttribute("fill", "#d6453b");
        svg.appendChild(ra);
      }
      begun.push((x + bw / 2).toFixed(1) + "," + y(b.begun).toFixed(1));
    });
    if (begun.length > 1) {
      var pl = document.createElementNS(SVG, "polyline");
      pl.setAttribute("points", begun.join(" "));
      pl.setAttribute("fill", "none"); pl.setAttribute("stroke", "#7f8aa3"); pl.setAttribute("stroke-width", "1.5");
      svg.appendChild(pl);
    }
    setText("chart-max", "(top of chart: " + max + "/s)");
  }
  function showStats(s) {
    var r = s.rates || {};
    setText("tps", (r.per_second || 0).toFixed(1));
    setText("committed", r.committed || 0);
    var parts = [];
    for (var c in (r.aborted || {})) parts.push(c + " " + r.aborted[c]);
    setText("aborted", parts.length ? parts.join(" ") : "0");
    setText("latency", fmtDur(r.p50) + " / " + fmtDur(r.p99));
    setText("undecided", String(s.undecided || 0) + (s.lower_bound ? "+" : ""));
    setText("oldest", s.oldest ? fmtDur(s.oldest_age) : "—");
    setText("unapplied", s.unapplied || 0);
    var u = document.getElementById("unapplied");
    if (u) u.className = "value" + (s.unapplied ? " bad" : "");
  }
  function fillRows(id, rows, cols, empty) {
    var tb = document.getElementById(id);
    if (!tb) return;
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    if (!rows || rows.length === 0) {
      var tr = el("tr", undefined, empty.cls);
      var td = el("td", empty.text);
      td.setAttribute("colspan", cols);
      tr.appendChild(td);
      tb.appendChild(tr);
      return;
    }
    rows.forEach(function (cells) {
      var tr = el("tr", undefined, cells.cls || "");
      cells.tds.forEach(function (c) {
        var td = el("td");
        if (c instanceof Node) td.appendChild(c); else td.textContent = String(c);
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
  }
  function showCluster(c) {
    fillRows("participants", (c.participants || []).map(function (p) {
      return { cls: p.missing ? "alert" : "", tds: [p.name, p.registered ? p.instance : "not registered",
        p.registered ? fmtDur(p.lease_left) : "—", p.inbox, p.undecided] };
    }), 5, { text: "none registered", cls: "empty" });
    fillRows("replicas", (c.replicas || []).map(function (r) {
      return { tds: [r.lease, r.leader ? "leader" : "standby", r.since] };
    }), 3, { text: "no replica is running: nothing aborts at deadlines or cleans up", cls: "alert" });
    fillRows("stuck", (c.stuck || []).map(function (s) {
      var ago = (Date.now() - new Date(s.decided).getTime()) * 1e6;
      return { cls: "alert", tds: [txLink(s.id), s.state + (s.cause ? " (" + s.cause + ")" : ""),
        fmtTime(s.decided) + " (" + fmtDur(ago) + " ago)", (s.waiting || []).join(", ")] };
    }), 4, { text: "none", cls: "empty" });
    setText("this-leads", c.leader ? "leads" : "does not lead");
  }
  if (page === "overview") {
    es.addEventListener("series", function (e) { series = []; mergeBuckets(JSON.parse(e.data) || []); drawChart(); });
    es.addEventListener("stats", function (e) { var s = JSON.parse(e.data); mergeBuckets(s.buckets || []); drawChart(); showStats(s); });
    es.addEventListener("cluster", function (e) { showCluster(JSON.parse(e.data)); });
  }

  // ---- list -----------------------------------------------------------
  var STATES = ["invalid", "preparing", "committing", "aborting", "committed", "aborted"];
  function stateName(s) { return typeof s === "number" ? STATES[s] : s; }
  function listUpdate(txs, more) {
    var table = document.getElementById("txs");
    if (!table) return;
    var tbody = table.tBodies[0];
    var live = table.getAttribute("data-live") === "1";
    var fState = table.getAttribute("data-state");
    var fPart = table.getAttribute("data-participant");
    var fPrefix = table.getAttribute("data-prefix");
    var fUntil = table.getAttribute("data-until");
    if (more && live) document.getElementById("more").hidden = false;
    txs.sort(function (a, b) { return a.created < b.created ? -1 : 1; });
    txs.forEach(function (t) {
      if (!t.state) return; // only a vote changed
      var state = stateName(t.state);
      var row = null;
      for (var i = 0; i < tbody.rows.length; i++) {
        if (tbody.rows[i].getAttribute("data-id") === t.id) { row = tbody.rows[i]; break; }
      }
      if (row) {
        var cell = row.cells[1];
        cell.textContent = state;
        cell.className = "state s-" + state;
        row.cells[4].textContent = (t.cause ? t.cause + ": " : "") + (t.reason || "");
        if (fState && fState !== state) row.className = "muted";
        return;
      }
      if (!live) return;
      if (fState && fState !== state) return;
      if (fPart && (t.participants || []).indexOf(fPart) < 0) return;
      if (fPrefix && t.id.indexOf(fPrefix) !== 0) return;
      if (fUntil && !(new Date(t.created) < new Date(fUntil))) return;
      var tr = el("tr", undefined, "fresh");
      tr.setAttribute("data-id", t.id);
      var td0 = el("td"); td0.appendChild(txLink(t.id)); tr.appendChild(td0);
      tr.appendChild(el("td", state, "state s-" + state));
      tr.appendChild(el("td", (t.participants || []).join(", ")));
      tr.appendChild(el("td", fmtTime(t.created)));
      tr.appendChild(el("td", (t.cause ? t.cause + ": " : "") + (t.reason || "")));
      tbody.insertBefore(tr, tbody.firstChild);
      while (tbody.rows.length > 50) tbody.deleteRow(tbody.rows.length - 1);
      var none = document.getElementById("none");
      if (none) none.hidden = true;
    });
  }

  // ---- one transaction --------------------------------------------------
  var reloading = false;
  function txUpdate(txs) {
    var code = document.getElementById("txid");
    if (!code || reloading) return;
    var id = code.getAttribute("data-txid");
    for (var i = 0; i < txs.length; i++) {
      if (txs[i].id === id) {
        reloading = true;
        setTimeout(function () { location.reload(); }, 200);
        return;
      }
    }
  }

  es.addEventListener("txs", function (e) {
    var d = JSON.parse(e.data);
    if (page === "list") listUpdate(d.txs || [], d.more);
    if (page === "transaction") txUpdate(d.txs || []);
  });
})();
