// The script of the HTML pages. It reads the JSON in #report-data and draws the page: for a
// report (HtmlReportScript.swift) the summary, an icicle graph of leaked bytes by stack, the
// groups and the timeline; for the `growth`, `diff` and `timeline` documents (their JSON of
// docs/report-json.md, told apart by `kind`) their totals, a sortable table of sites and the
// timeline. Opened with `#selftest`, the page clicks through itself and writes what it checked
// into #selftest (the tests read it with a headless browser).

enum HtmlPageScript {
    /// The whole script: one function scope, so that the parts share their helpers.
    static let js = "\"use strict\";\n(function () {\n" + common + report + documents + selfTest + start + "})();\n"

    static let common = #"""
    const started = performance.now();
    const D = JSON.parse(document.getElementById("report-data").textContent);
    const page = document.getElementById("page");
    page.textContent = "";

    // MARK: helpers
    function el(tag, attrs, ...children) {
      const node = document.createElement(tag);
      for (const [key, value] of Object.entries(attrs || {})) {
        if (value === undefined || value === null) continue;
        if (key.startsWith("data-") || key === "id" || key === "title" || key === "colspan") node.setAttribute(key, value);
        else node[key] = value;
      }
      for (const child of children) if (child !== null && child !== undefined) node.append(child);
      return node;
    }
    function svg(tag, attrs) {
      const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
      for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
      return node;
    }
    // The same units as the text report: 512 B, 1.50 KiB, 12.0 MiB.
    function bytes(n) {
      if (n < 0) return "-" + bytes(-n);
      if (n < 1024) return n + " B";
      const units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
      let value = n / 1024, unit = 0;
      while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
      return value.toFixed(value < 10 ? 2 : 1) + " " + units[unit];
    }
    function signed(n) { return (n > 0 ? "+" : "") + bytes(n); }
    function amount(a) { return bytes(a.bytes) + " in " + a.blocks + (a.blocks === 1 ? " block" : " blocks"); }
    function time(us) { return (us / 1e6).toFixed(3) + "s"; }
    function percent(part, whole) { return whole > 0 ? (100 * part / whole).toFixed(1) + "%" : "0%"; }
    function frameName(f) {
      if (!f) return "[no stack]";
      return f.function || ((f.module || "?").split("/").pop() + "+" + (f.moduleOffset || f.address));
    }
    function frameWhere(f) { return f && f.file ? f.file + (f.line ? ":" + f.line : "") : (f && f.module) || ""; }
    const shortWhere = f => frameWhere(f).split("/").pop();
    const pathLabels = { "heap": "heap (brk)", "mmap-threshold": "mmap threshold", "thread-arena": "thread arena",
      "unknown": "unknown path", "private-anonymous": "private anonymous mappings",
      "shared-anonymous": "shared anonymous mappings", "private-file": "private file mappings",
      "shared-file": "shared file mappings", "brk-growth": "brk growth" };
    function section(id, title) {
      const body = el("section", { id: id }, el("h2", {}, title));
      page.append(body);
      return body;
    }
    function facts(text, className) { page.append(el("p", { className: "facts" + (className ? " " + className : "") }, text)); }
    function card(label, value, attrs) {
      return el("div", Object.assign({ className: "card" }, attrs || {}),
        el("div", { className: "label" }, label), el("div", { className: "value" }, value));
    }
    function table(head, rows) {
      return el("table", {}, el("thead", {}, el("tr", {}, ...head.map(h => el("th", { className: h.num ? "num" : "" }, h.label)))),
        el("tbody", {}, ...rows.map(cells => el("tr", {}, ...cells.map((c, i) =>
          el("td", { className: head[i].num ? "num" : (head[i].mono ? "mono" : "") }, c))))));
    }

    // A table whose columns sort on a click (numbers biggest first, a second click reverses).
    // `columns`: {label, text(item), key(item), num, mono, title(item)}; `attrs(item)` gives each
    // row's attributes; `detail(item)`, when given, is a row below each that a click opens.
    function sortableTable(id, columns, items, attrs, detail) {
      const headRow = el("tr", {}, ...columns.map((c, i) => el("th", { className: "sortable" + (c.num ? " num" : ""), "data-column": i }, c.label)));
      const tbody = el("tbody");
      const rows = items.map(item => {
        const row = el("tr", attrs(item), ...columns.map(c => el("td", { className: c.num ? "num" : (c.mono ? "mono" : ""),
          title: c.title ? c.title(item) : undefined }, c.text(item))));
        const more = detail ? el("tr", { className: "detail", hidden: true }, el("td", { colspan: columns.length }, ...detail(item))) : null;
        if (more) row.addEventListener("click", () => { more.hidden = !more.hidden; });
        tbody.append(row);
        if (more) tbody.append(more);
        return { item, row, more };
      });
      let sortColumn = -1, descending = true;
      function sortBy(column) {
        descending = column === sortColumn ? !descending : !!columns[column].num;
        sortColumn = column;
        const key = columns[column].key;
        rows.sort((a, b) => { const x = key(a.item), y = key(b.item); return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1); });
        for (const r of rows) { tbody.append(r.row); if (r.more) tbody.append(r.more); }
        headRow.querySelectorAll("th").forEach((th, i) => {
          th.classList.toggle("sorted-desc", i === column && descending);
          th.classList.toggle("sorted-asc", i === column && !descending);
        });
      }
      headRow.addEventListener("click", e => { const th = e.target.closest("th"); if (th) sortBy(+th.dataset.column); });
      const element = el("div", { className: "scroll" }, el("table", { id: id }, el("thead", {}, headRow), tbody));
      return { element, rows, headRow, tbody, columns };
    }

    // MARK: the trace, the timeline, the warnings
    function traceFacts(t) {
      facts([t.pid !== undefined ? "pid " + t.pid : null, "trace " + t.path,
        t.arguments && t.arguments.length ? "command " + t.arguments.join(" ") : null].filter(Boolean).join(" \u00b7 "));
      facts(t.allocs + " allocations, " + t.frees + " frees, " + t.reallocs + " reallocs, " + t.mappingCalls +
        " mapping calls over " + time(t.lastEventUs));
      const o = t.outcome;
      if (o.replayedUntilUs !== undefined) facts("replayed up to " + time(o.replayedUntilUs), "warn");
      else if (o.isComplete) facts("trace complete");
      else if (o.endedByExec) facts("trace ends where the process called exec (" + o.endedByExec + ")");
      else facts("TRACE INCOMPLETE: reading stopped" + (o.stoppedAtOffset !== undefined ? " at byte " + o.stoppedAtOffset : "") +
        (o.stopReason ? " (" + o.stopReason + ")" : "") + "; only the events before that point count", "bad");
      if (t.parentTrace) facts("forked child of " + t.parentTrace + (t.parentReplayed ? " (replayed up to the fork)" : " (parent trace not replayed)"));
    }
    function title(text, t) {
      document.title = "leakreport: " + (t ? (t.program || t.path).split("/").pop() : text);
      page.append(el("h1", {}, text + (t ? ": " + (t.program || t.path) : "")));
    }
    function timelineSection(timeline, marks) {
      const points = timeline.points;
      const body = section("timeline", "Memory over time");
      if (points.length < 2) { body.append(el("p", { className: "facts" }, "The trace is too short for a timeline.")); return; }
      const series = [["rssBytes", "RSS", "var(--rss)"], ["liveHeapBytes", "live heap", "var(--heap)"], ["mappedBytes", "mapped by the program", "var(--mapped)"]];
      const W = 1000, H = 200, left = 70, bottom = 22, end = points[points.length - 1].endUs || 1;
      const top = Math.max(1, ...points.flatMap(p => series.map(([k]) => p[k] || 0)));
      const x = us => left + (W - left - 10) * us / end, y = v => (H - bottom) - (H - bottom - 10) * v / top;
      const chart = svg("svg", { id: "timeline-chart", viewBox: "0 0 " + W + " " + H, width: "100%", role: "img" });
      const text = (content, attrs) => { const label = svg("text", attrs); label.textContent = content; chart.append(label); };
      for (const v of [0, top / 2, top]) {
        chart.append(svg("line", { x1: left, x2: W - 10, y1: y(v), y2: y(v), stroke: "#d9dde5" }));
        text(bytes(Math.round(v)), { x: left - 6, y: y(v) + 4, "text-anchor": "end" });
      }
      text(time(0), { x: x(0), y: H - 6 });
      text(time(end), { x: x(end), y: H - 6, "text-anchor": "end" });
      marks.forEach((m, i) => {
        chart.append(svg("line", { x1: x(m.timeUs), x2: x(m.timeUs), y1: 8, y2: H - bottom, stroke: "#888", "stroke-dasharray": "4 3", class: "mark" }));
        // Marks close together get their names on different lines.
        const nearEnd = x(m.timeUs) > W - 120;
        text(m.name, { x: x(m.timeUs) + (nearEnd ? -3 : 3), y: 16 + 12 * (i % 3), "text-anchor": nearEnd ? "end" : "start" });
      });
      for (const [key, , colour] of series) {
        const drawn = points.filter(p => p[key] !== undefined);
        if (drawn.length) chart.append(svg("polyline", { fill: "none", stroke: colour, "stroke-width": 2, "data-series": key,
          points: drawn.map(p => x(p.endUs).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" ") }));
      }
      body.append(el("div", { className: "legend" }, ...series.map(([, label, colour]) =>
        el("span", {}, el("i", { style: "background:" + colour }), label))), chart);
    }
    function warningsSection(warnings) {
      if (warnings && warnings.length) section("warnings", "Warnings").append(el("ul", {}, ...warnings.map(w => el("li", { className: "warn" }, w))));
    }
    function ratesSection(rates) {
      if (rates && rates.length) section("growing", "Growing call sites").append(table(
        [{ label: "site" }, { label: "trend" }, { label: "rate", num: true }, { label: "now", num: true }],
        rates.map(s => [s.name, s.trend, bytes(Math.round(s.bytesPerSecond)) + "/s", bytes(s.endBytes)])));
    }
    """#

    static let documents = #"""
    // MARK: growth, diff and timeline documents
    // The sites of a growth or diff document: `before` and `after` name its two amounts.
    function sitesTable(sites, before, after, labels) {
      const columns = [
        { label: "site", text: s => s.callsite && s.callsite.function ? s.callsite.function : s.name, key: s => s.name, title: s => s.name },
        { label: "call site", text: s => shortWhere(s.callsite), key: s => frameWhere(s.callsite), mono: true, title: s => frameWhere(s.callsite) },
        { label: "path", text: s => pathLabels[s.key.path] || s.key.path, key: s => s.key.path },
        { label: "change", text: s => s.change, key: s => s.change },
        { label: labels[0], text: s => bytes(s[before].bytes), key: s => s[before].bytes, num: true },
        { label: labels[1], text: s => bytes(s[after].bytes), key: s => s[after].bytes, num: true },
        { label: "difference", text: s => signed(s.deltaBytes), key: s => s.deltaBytes, num: true }];
      if (sites.length && sites[0].newSinceFrom) columns.push({ label: "new since A", text: s => bytes(s.newSinceFrom.bytes), key: s => s.newSinceFrom.bytes, num: true });
      return sortableTable("sites-table", columns, sites, s => ({ className: "site", "data-delta": s.deltaBytes, "data-name": s.name }));
    }
    function drawGrowth() {
      title("Growth", D.trace);
      traceFacts(D.trace);
      facts("from " + D.from.label + " (" + time(D.from.timeUs) + ") to " + D.to.label + " (" + time(D.to.timeUs) + ")");
      const totals = section("summary", "Live bytes from A to B");
      totals.append(el("div", { className: "cards" }, card("live at A", amount(D.total.atFrom)), card("live at B", amount(D.total.atTo)),
        card("difference", signed(D.total.deltaBytes), { className: "card" + (D.total.deltaBytes > 0 ? " leaked" : ""), id: "difference", "data-bytes": D.total.deltaBytes }),
        card("allocated after A, live at B", amount(D.total.newSinceFrom))));
      const table = sitesTable(D.sites, "atFrom", "atTo", ["at A", "at B"]);
      section("sites", "Sites that changed").append(table.element);
      ratesSection(D.growing);
      timelineSection(D.timeline, D.marks);
      warningsSection(D.warnings);
      return { table };
    }
    function drawDiff() {
      title("Diff", null);
      for (const [label, t] of [["old", D.old], ["new", D.new]]) facts(label + ": " + (t.program || "?") + " \u00b7 " + t.path +
        (t.pid !== undefined ? " \u00b7 pid " + t.pid : ""));
      facts("measure: " + D.measure);
      const totals = section("summary", "Totals");
      totals.append(el("div", { className: "cards" }, card("old", amount(D.total.old)), card("new", amount(D.total.new)),
        card("difference", signed(D.total.deltaBytes), { className: "card" + (D.total.deltaBytes > 0 ? " leaked" : ""), id: "difference", "data-bytes": D.total.deltaBytes }),
        card("sites", D.sitesChanged + " changed, " + D.appeared + " appeared, " + D.vanished + " vanished")));
      const table = sitesTable(D.sites, "old", "new", ["old", "new"]);
      section("sites", "Sites that changed").append(table.element);
      warningsSection(D.warnings);
      return { table };
    }
    function drawTimelineDocument() {
      title("Timeline", D.trace);
      traceFacts(D.trace);
      timelineSection(D.timeline, D.marks);
      warningsSection(D.warnings);
      return null;
    }
    """#

    static let start = #"""
    // MARK: start
    const drawn = D.report ? drawReport()
      : D.kind === "growth" ? drawGrowth() : D.kind === "diff" ? drawDiff() : drawTimelineDocument();
    page.dataset.drawnMs = Math.round(performance.now() - started);
    if (location.hash.startsWith("#selftest")) selfTest(drawn);
    """#
}
