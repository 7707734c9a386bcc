// The script of the HTML report. It reads the JSON in #report-data and draws the page: the
// summary, an icicle graph of leaked bytes by stack (click a frame to zoom into it, search to
// highlight frames), a sortable table of groups whose rows open to the stack, the memory
// timeline with its marks, and the other sections of the report. Opened with `#selftest`, it
// clicks through the page itself and writes what it checked into #selftest (the tests read it
// with a headless browser).

enum HtmlPageScript {
    static let js = #"""
    "use strict";
    (function () {
      const started = performance.now();
      const D = JSON.parse(document.getElementById("report-data").textContent);
      const R = D.report;
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
        if (n < 1024) return n + " B";
        const units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let value = n / 1024, unit = 0;
        while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
        return value.toFixed(value < 10 ? 2 : 1) + " " + units[unit];
      }
      function amount(a) { return bytes(a.bytes) + " in " + a.blocks + (a.blocks === 1 ? " block" : " blocks"); }
      function time(us) { return (us / 1e6).toFixed(3) + "s"; }
      function percent(part, whole) { return whole > 0 ? (100 * part / whole).toFixed(1) + "%" : "0%"; }
      function frameName(f) {
        if (!f) return "[no stack]";
        return f.function || ((f.module || "?").split("/").pop() + "+" + (f.moduleOffset || f.address));
      }
      function frameWhere(f) { return f && f.file ? f.file + (f.line ? ":" + f.line : "") : (f && f.module) || ""; }
      const pathLabels = { "heap": "heap (brk)", "mmap-threshold": "mmap threshold", "thread-arena": "thread arena",
        "unknown": "unknown path", "private-anonymous": "private anonymous mappings",
        "shared-anonymous": "shared anonymous mappings", "private-file": "private file mappings",
        "shared-file": "shared file mappings", "brk-growth": "brk growth" };
      function section(id, title) {
        const body = el("section", { id: id }, el("h2", {}, title));
        page.append(body);
        return body;
      }
      function table(head, rows, options) {
        const thead = el("tr", {}, ...head.map(h => el("th", { className: h.num ? "num" : "" }, h.label)));
        const body = el("tbody", {}, ...rows.map(cells => el("tr", {}, ...cells.map((c, i) =>
          el("td", { className: head[i].num ? "num" : (head[i].mono ? "mono" : "") }, c)))));
        return el("table", options || {}, el("thead", {}, thead), body);
      }

      // MARK: header
      const t = R.trace;
      document.title = "leakreport: " + (t.program || t.path).split("/").pop() + (t.pid !== undefined ? " (pid " + t.pid + ")" : "");
      page.append(el("h1", {}, "Leak report: " + (t.program || t.path)));
      page.append(el("p", { className: "facts" }, [t.pid !== undefined ? "pid " + t.pid : null, "trace " + t.path,
        t.arguments && t.arguments.length ? "command " + t.arguments.join(" ") : null].filter(Boolean).join(" \u00b7 ")));
      page.append(el("p", { className: "facts" }, t.allocs + " allocations, " + t.frees + " frees, " + t.reallocs +
        " reallocs, " + t.mappingCalls + " mapping calls over " + time(t.lastEventUs)));
      const o = t.outcome;
      if (o.replayedUntilUs !== undefined) page.append(el("p", { className: "facts warn" }, "replayed up to " + time(o.replayedUntilUs) + " (--at)"));
      else if (o.isComplete) page.append(el("p", { className: "facts" }, "trace complete"));
      else if (o.endedByExec) page.append(el("p", { className: "facts" }, "trace ends where the process called exec (" + o.endedByExec + ")"));
      else page.append(el("p", { className: "facts bad" }, "TRACE INCOMPLETE: reading stopped" +
        (o.stoppedAtOffset !== undefined ? " at byte " + o.stoppedAtOffset : "") + (o.stopReason ? " (" + o.stopReason + ")" : "") +
        "; this report covers the events before that point"));
      if (R.execChain && R.execChain.length) page.append(el("p", { className: "facts" }, "exec chain: " +
        R.execChain.map(s => (s.program || "?") + " (" + s.trace + ")").concat(["this program"]).join(" \u2192 ")));
      if (t.parentTrace) page.append(el("p", { className: "facts" }, "forked child of " + t.parentTrace +
        (t.parentReplayed ? " (replayed up to the fork)" : " (parent trace not replayed)")));

      // MARK: summary
      const S = R.summary;
      const summary = section("summary", "Summary");
      const card = (label, value, attrs) => el("div", Object.assign({ className: "card" }, attrs || {}),
        el("div", { className: "label" }, label), el("div", { className: "value" }, value));
      summary.append(el("div", { className: "cards" },
        card("leaked", amount(S.leaked), { className: "card leaked", id: "leaked", "data-bytes": S.leaked.bytes, "data-blocks": S.leaked.blocks }),
        card("peak live heap", bytes(S.peakLiveBytes) + " at " + time(S.peakLiveUs)),
        card("suppressed", amount(S.suppressed)),
        S.inherited.blocks ? card("inherited at fork", amount(S.inherited)) : null,
        card("groups", String(S.groups))));
      const paths = Object.entries(S.byPath);
      const widest = Math.max(1, ...paths.map(([, a]) => a.bytes));
      summary.append(el("table", { className: "pathbars", id: "by-path" }, el("tbody", {}, ...paths.map(([path, a]) =>
        el("tr", { "data-path": path }, el("td", {}, pathLabels[path] || path),
          el("td", { className: "num" }, path === "brk-growth" ? bytes(a.bytes) : amount(a)),
          el("td", { style: "width:50%" }, el("div", { className: "bar", style: "width:" + (100 * a.bytes / widest) + "%" })))))));

      // MARK: icicle graph
      const F = D.flame;
      const nodes = F.nodes.map(([frame, size, blocks, parent]) => ({ frame, size, blocks, parent, children: [], depth: 0 }));
      nodes.forEach((n, i) => { if (n.parent >= 0) { nodes[n.parent].children.push(i); n.depth = nodes[n.parent].depth + 1; } });
      const nodeName = i => nodes[i].frame < 0 ? "all leaked stacks" : F.frames[nodes[i].frame][0];
      const nodeWhere = i => nodes[i].frame < 0 ? "" : F.frames[nodes[i].frame][1];
      const flame = section("flame", "Leaked bytes by stack");
      const search = el("input", { type: "search", id: "flame-search", placeholder: "search frames (function or file)" });
      const reset = el("button", { id: "flame-reset", type: "button" }, "show all");
      const matched = el("span", { id: "flame-match", className: "facts" });
      flame.append(el("div", { className: "controls" }, search, reset, matched));
      const graph = el("div", { id: "flame-graph" });
      const detail = el("div", { id: "flame-detail" }, "Click a frame to zoom into it; the root shows everything.");
      flame.append(graph, detail);
      const rowHeight = 20;
      let zoomed = 0, query = "";
      function colour(name) {
        let h = 0;
        for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
        return "hsl(" + (h % 50) + "," + (55 + h % 30) + "%," + (62 + (h >> 8) % 16) + "%)";
      }
      function isMatch(i) {
        if (!query || nodes[i].frame < 0) return false;
        const q = query.toLowerCase();
        return nodeName(i).toLowerCase().includes(q) || nodeWhere(i).toLowerCase().includes(q);
      }
      function drawFrame(i, left, width, extra) {
        const div = el("div", { className: "frame" + extra + (isMatch(i) ? " match" : ""), "data-node": i,
          title: nodeName(i) + (nodeWhere(i) ? "\n" + nodeWhere(i) : "") + "\n" + bytes(nodes[i].size) + " (" +
            percent(nodes[i].size, nodes[0].size) + "), " + nodes[i].blocks + " blocks" },
          nodeName(i));
        div.style.left = left + "%";
        div.style.width = width + "%";
        div.style.top = nodes[i].depth * rowHeight + "px";
        div.style.background = nodes[i].frame < 0 ? "#c9ccd4" : colour(nodeName(i));
        graph.append(div);
      }
      function drawFlame() {
        graph.textContent = "";
        let deepest = 0;
        for (let up = nodes[zoomed].parent; up >= 0; up = nodes[up].parent) drawFrame(up, 0, 100, " ancestor");
        const total = nodes[zoomed].size || 1;
        const pending = [[zoomed, 0]];
        while (pending.length) {
          const [i, left] = pending.pop();
          const width = 100 * nodes[i].size / total;
          if (width < 0.05) continue;
          drawFrame(i, left, width, "");
          deepest = Math.max(deepest, nodes[i].depth);
          let x = left;
          for (const c of nodes[i].children) { pending.push([c, x]); x += 100 * nodes[c].size / total; }
        }
        graph.style.height = (deepest + 1) * rowHeight + "px";
        graph.dataset.zoomed = nodeName(zoomed);
        // What the search matched: each matching frame counted once, not again under a match.
        let sum = 0;
        if (query) {
          const stack = [0];
          while (stack.length) {
            const i = stack.pop();
            if (isMatch(i)) sum += nodes[i].size; else stack.push(...nodes[i].children);
          }
          matched.textContent = "matched " + bytes(sum) + " (" + percent(sum, nodes[0].size) + " of leaked bytes)";
        } else matched.textContent = "";
        matched.dataset.bytes = sum;
      }
      function zoomTo(i) {
        zoomed = i;
        drawFlame();
        detail.textContent = nodeName(i) + (nodeWhere(i) ? " \u2014 " + nodeWhere(i) : "") + ": " + bytes(nodes[i].size) +
          " in " + nodes[i].blocks + " blocks, " + percent(nodes[i].size, nodes[0].size) + " of leaked bytes";
      }
      graph.addEventListener("click", e => { const f = e.target.closest(".frame"); if (f) zoomTo(+f.dataset.node); });
      search.addEventListener("input", () => { query = search.value.trim(); drawFlame(); });
      reset.addEventListener("click", () => { search.value = ""; query = ""; zoomTo(0); });
      if (nodes[0].size > 0) drawFlame(); else graph.replaceWith(el("p", { className: "facts" }, "Nothing leaked."));

      // MARK: groups
      const groups = section("groups", "Groups by " + R.groupBy + " (top " + R.groups.length + " of " + S.groups + ")");
      const columns = [
        { label: "#", key: g => g.rank, num: true }, { label: "group", key: g => g.name },
        { label: "call site", key: g => frameWhere(g.callsite) }, { label: "blocks", key: g => g.blocks, num: true },
        { label: "bytes", key: g => g.bytes, num: true }, { label: "largest", key: g => g.largest, num: true },
        { label: "paths", key: g => Object.keys(g.byPath).join(" ") },
        { label: "first", key: g => g.firstAllocationUs, num: true }, { label: "last", key: g => g.lastAllocationUs, num: true }];
      // Grouped by call site, a group's name repeats its file:line: the function is enough.
      const groupName = g => R.groupBy === "callsite" && g.callsite && g.callsite.function ? g.callsite.function : g.name;
      const shortWhere = f => frameWhere(f).split("/").pop();
      const cells = g => [String(g.rank), groupName(g), shortWhere(g.callsite), String(g.blocks), bytes(g.bytes), bytes(g.largest),
        Object.keys(g.byPath).map(p => pathLabels[p] || p).join(", "), time(g.firstAllocationUs), time(g.lastAllocationUs)];
      const headRow = el("tr", {}, ...columns.map((c, i) => el("th", { className: "sortable" + (c.num ? " num" : ""), "data-column": i }, c.label)));
      const tbody = el("tbody");
      const rows = R.groups.map(g => {
        const row = el("tr", { className: "group", "data-bytes": g.bytes, "data-name": g.name },
          ...cells(g).map((text, i) => el("td", { className: columns[i].num ? "num" : (i === 2 ? "mono" : ""),
            title: i === 1 ? g.name : (i === 2 ? frameWhere(g.callsite) : undefined) }, text)));
        const stack = el("ol", { className: "stack" }, ...g.biggest.stack.map(f =>
          el("li", {}, frameName(f), " ", el("span", { className: "where" }, frameWhere(f)))));
        const notes = [g.inherited.blocks ? "inherited at fork: " + amount(g.inherited) : null, g.thresholdNote].filter(Boolean);
        const more = el("tr", { className: "detail", hidden: true }, el("td", { colspan: columns.length },
          "biggest block: " + bytes(g.biggest.size) + " at " + g.biggest.address + " (" + (pathLabels[g.biggest.path] || g.biggest.path) + ")",
          ...notes.map(n => el("div", { className: "warn" }, n)), stack));
        row.addEventListener("click", () => { more.hidden = !more.hidden; });
        tbody.append(row, more);
        return { g, row, more };
      });
      let sortColumn = 4, descending = true;
      function sortRows(column) {
        descending = column === sortColumn ? !descending : columns[column].num;
        sortColumn = column;
        const key = columns[column].key;
        rows.sort((a, b) => { const x = key(a.g), y = key(b.g); return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1); });
        for (const r of rows) tbody.append(r.row, r.more);
        headRow.querySelectorAll("th").forEach((th, i) => {
          th.classList.toggle("sorted-desc", i === column && descending);
          th.classList.toggle("sorted-asc", i === column && !descending);
        });
      }
      headRow.addEventListener("click", e => { const th = e.target.closest("th"); if (th) sortRows(+th.dataset.column); });
      groups.append(R.groups.length ? el("div", { className: "scroll" }, el("table", { id: "groups-table" }, el("thead", {}, headRow), tbody))
                                    : el("p", { className: "facts" }, "No groups."));

      // MARK: timeline
      const points = D.timeline.points;
      const timeline = section("timeline", "Memory over time");
      if (points.length > 1) {
        const series = [["rssBytes", "RSS", "var(--rss)"], ["liveHeapBytes", "live heap", "var(--heap)"], ["mappedBytes", "mapped by the program", "var(--mapped)"]];
        const W = 1000, H = 200, left = 70, bottom = 22, end = points[points.length - 1].endUs || 1;
        const top = Math.max(1, ...points.flatMap(p => series.map(([k]) => p[k] || 0)));
        const x = us => left + (W - left - 10) * us / end, y = v => (H - bottom) - (H - bottom - 10) * v / top;
        const chart = svg("svg", { id: "timeline-chart", viewBox: "0 0 " + W + " " + H, width: "100%", role: "img" });
        for (const v of [0, top / 2, top]) {
          chart.append(svg("line", { x1: left, x2: W - 10, y1: y(v), y2: y(v), stroke: "#d9dde5" }));
          const label = svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }); label.textContent = bytes(Math.round(v)); chart.append(label);
        }
        for (const [us, anchor] of [[0, "start"], [end, "end"]]) {
          const label = svg("text", { x: x(us), y: H - 6, "text-anchor": anchor }); label.textContent = time(us); chart.append(label);
        }
        D.marks.forEach((m, i) => {
          chart.append(svg("line", { x1: x(m.timeUs), x2: x(m.timeUs), y1: 8, y2: H - bottom, stroke: "#888", "stroke-dasharray": "4 3", class: "mark" }));
          // Marks close together get their names on different lines.
          const nearEnd = x(m.timeUs) > W - 120;
          const label = svg("text", { x: x(m.timeUs) + (nearEnd ? -3 : 3), y: 16 + 12 * (i % 3), "text-anchor": nearEnd ? "end" : "start" });
          label.textContent = m.name;
          chart.append(label);
        });
        for (const [key, , colourName] of series) {
          const drawn = points.filter(p => p[key] !== undefined);
          if (drawn.length) chart.append(svg("polyline", { fill: "none", stroke: colourName, "stroke-width": 2, "data-series": key,
            points: drawn.map(p => x(p.endUs).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" ") }));
        }
        timeline.append(el("div", { className: "legend" }, ...series.map(([, label, colourName]) =>
          el("span", {}, el("i", { style: "background:" + colourName }), label))), chart);
      } else timeline.append(el("p", { className: "facts" }, "The trace is too short for a timeline."));

      // MARK: the other sections, shown when the report has them
      if (R.reachability) {
        // Reachability categories (definitely lost, still reachable, ...): an object of
        // category -> amount, or a list of {category, blocks, bytes}.
        const entries = Array.isArray(R.reachability) ? R.reachability.map(r => [r.category || r.name, r])
                                                       : Object.entries(R.reachability);
        section("reachability", "Reachability").append(table([{ label: "category" }, { label: "blocks", num: true }, { label: "bytes", num: true }],
          entries.map(([name, a]) => [name, String(a.blocks), bytes(a.bytes)])));
      }
      if (R.growing && R.growing.length) section("growing", "Growing call sites").append(table(
        [{ label: "site" }, { label: "trend" }, { label: "rate", num: true }, { label: "now", num: true }],
        R.growing.map(s => [s.name, s.trend, bytes(Math.round(s.bytesPerSecond)) + "/s", bytes(s.endBytes)])));
      if (R.mappings.length) section("mappings", "Direct mappings still mapped").append(table(
        [{ label: "start", mono: true }, { label: "size", num: true }, { label: "kind" }, { label: "file" }, { label: "call site" }],
        R.mappings.map(m => [m.start, bytes(m.size), pathLabels[m.kind] || m.kind, m.file || "", frameName(m.callsite)])));
      if (R.breakGrowth.length) section("brk", "Program-break growth").append(table(
        [{ label: "net bytes", num: true }, { label: "calls", num: true }, { label: "call site" }],
        R.breakGrowth.map(b => [String(b.netBytes), String(b.calls), frameName(b.callsite)])));
      if (R.warnings.length) section("warnings", "Warnings").append(el("ul", {}, ...R.warnings.map(w => el("li", { className: "warn" }, w))));

      page.dataset.drawnMs = Math.round(performance.now() - started);
      if (location.hash.startsWith("#selftest")) selftest();

      // MARK: self-test (#selftest)
      function selftest() {
        const lines = [];
        const check = (ok, what) => lines.push((ok ? "ok   " : "FAIL ") + what);
        const leaked = document.getElementById("leaked");
        check(+leaked.dataset.bytes === S.leaked.bytes && leaked.textContent.includes(bytes(S.leaked.bytes)), "leaked total " + bytes(S.leaked.bytes));
        check(document.querySelectorAll("#groups-table tr.group").length === R.groups.length, "one row per group: " + R.groups.length);
        // The frame of the biggest group's call site; when it is too narrow to be drawn (a
        // leak spread over thousands of stacks), the widest frame below the root.
        const frames = [...graph.querySelectorAll(".frame")].filter(f => +f.dataset.node !== 0);
        const widest = list => list.sort((a, b) => nodes[+b.dataset.node].size - nodes[+a.dataset.node].size)[0];
        const callsite = R.groups.length ? frameName(R.groups[0].callsite) : null;
        const target = widest(frames.filter(f => nodeName(+f.dataset.node) === callsite)) || widest(frames);
        const name = target ? nodeName(+target.dataset.node) : null;
        check(!!target, "a frame to zoom into: " + name);
        if (target) {
          const node = +target.dataset.node;
          target.click();
          const shown = [...graph.querySelectorAll(".frame")];
          const self = shown.find(f => +f.dataset.node === node && !f.classList.contains("ancestor"));
          check(graph.dataset.zoomed === name && self && self.style.width === "100%" && self.style.left === "0%", "click zooms into " + name);
          const inside = i => { for (let up = i; up >= 0; up = nodes[up].parent) if (up === node) return true; return false; };
          check(shown.every(f => f.classList.contains("ancestor") || inside(+f.dataset.node)), "after the zoom only its subtree is drawn");
          reset.click();
          check(graph.dataset.zoomed === "all leaked stacks", "show all zooms out");
          search.value = name;
          search.dispatchEvent(new Event("input"));
          // The frames named so, each counted once: not again below another of them.
          const underNamed = i => { for (let up = nodes[i].parent; up >= 0; up = nodes[up].parent) if (nodeName(up) === name) return true; return false; };
          const expected = nodes.reduce((sum, n, i) => sum + (nodeName(i) === name && !underNamed(i) ? n.size : 0), 0);
          check(graph.querySelectorAll(".frame.match").length > 0 && +matched.dataset.bytes === expected, "search " + name + " matches " + bytes(expected));
          graph.querySelector(".frame[data-node='" + node + "']").click();
        }
        const bytesHeader = headRow.children[4];
        bytesHeader.click();
        const ascending = [...tbody.querySelectorAll("tr.group")].map(r => +r.dataset.bytes);
        check(ascending.every((v, i) => i === 0 || ascending[i - 1] <= v), "sorting by bytes, ascending");
        bytesHeader.click();
        const descendingOrder = [...tbody.querySelectorAll("tr.group")].map(r => +r.dataset.bytes);
        check(descendingOrder.every((v, i) => i === 0 || descendingOrder[i - 1] >= v), "sorting by bytes, descending");
        const first = tbody.querySelector("tr.group");
        if (first) {
          first.click();
          check(!first.nextSibling.hidden && first.nextSibling.querySelectorAll("li").length === rows.find(r => r.row === first).g.biggest.stack.length, "a row opens to its stack");
        }
        const passed = lines.every(l => l.startsWith("ok"));
        page.append(el("pre", { id: "selftest", "data-result": passed ? "pass" : "fail" }, "selftest: " + (passed ? "pass" : "fail") + " (page drawn in " + page.dataset.drawnMs + " ms)\n" + lines.join("\n")));
        console.log("selftest: " + (passed ? "pass" : "fail"));
      }
    })();
    """#
}
