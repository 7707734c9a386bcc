// The report's part of the page script (HtmlPageScript.swift has the helpers it uses): the
// summary, the icicle graph of leaked bytes by stack (click a frame to zoom into it, search to
// highlight frames), the groups, the timeline and the other sections; then the self-test.

extension HtmlPageScript {
    static let report = #"""
    // MARK: the report
    function drawReport() {
      const R = D.report, S = R.summary, t = R.trace;
      title("Leak report", t);
      traceFacts(t);
      if (R.execChain && R.execChain.length) facts("exec chain: " +
        R.execChain.map(s => (s.program || "?") + " (" + s.trace + ")").concat(["this program"]).join(" \u2192 "));

      const summary = section("summary", "Summary");
      summary.append(el("div", { className: "cards" },
        card("leaked", amount(S.leaked), { className: "card leaked", id: "leaked", "data-bytes": S.leaked.bytes, "data-blocks": S.leaked.blocks }),
        card("peak live heap", bytes(S.peakLiveBytes) + " at " + time(S.peakLiveUs)),
        card("suppressed", amount(S.suppressed)),
        S.inherited.blocks ? card("inherited at fork", amount(S.inherited)) : null,
        S.releasedByRuntimeCleanup ? card("freed by runtime cleanup at exit", amount(S.releasedByRuntimeCleanup)) : null,
        card("groups", String(S.groups))));
      reachabilitySummary(summary, S);
      const paths = Object.entries(S.byPath);
      const widest = Math.max(1, ...paths.map(([, a]) => a.bytes));
      summary.append(el("table", { className: "pathbars", id: "by-path" }, el("tbody", {}, ...paths.map(([path, a]) =>
        el("tr", { "data-path": path }, el("td", {}, pathLabels[path] || path),
          el("td", { className: "num" }, path === "brk-growth" ? bytes(a.bytes) : amount(a)),
          el("td", { style: "width:50%" }, el("div", { className: "bar", style: "width:" + (100 * a.bytes / widest) + "%" })))))));

      const flame = icicle(section("flame", "Leaked bytes by stack"));

      const groups = section("groups", "Groups by " + R.groupBy + " (top " + R.groups.length + " of " + S.groups + ")" +
        (S.reachability ? ", lost first" : ""));
      // Grouped by call site, a group's name repeats its file:line: the function is enough.
      const groupName = g => R.groupBy === "callsite" && g.callsite && g.callsite.function ? g.callsite.function : g.name;
      const columns = [
        { label: "#", text: g => String(g.rank), key: g => g.rank, num: true },
        { label: "group", text: groupName, key: g => g.name, title: g => g.name },
        { label: "call site", text: g => shortWhere(g.callsite), key: g => frameWhere(g.callsite), mono: true, title: g => frameWhere(g.callsite) },
        { label: "blocks", text: g => String(g.blocks), key: g => g.blocks, num: true },
        { label: "bytes", text: g => bytes(g.bytes), key: g => g.bytes, num: true },
        { label: "largest", text: g => bytes(g.largest), key: g => g.largest, num: true },
        { label: "paths", text: g => Object.keys(g.byPath).map(p => pathLabels[p] || p).join(", "), key: g => Object.keys(g.byPath).join(" ") },
        { label: "first", text: g => time(g.firstAllocationUs), key: g => g.firstAllocationUs, num: true },
        { label: "last", text: g => time(g.lastAllocationUs), key: g => g.lastAllocationUs, num: true }];
      if (S.reachability) columns.splice(5, 0, { label: "reachability", text: g => categoryLabels[severity(g.reachability)],
        key: g => severity(g.reachability), title: g => categoryList(g.reachability) });
      const groupTable = sortableTable("groups-table", columns, R.groups,
        g => ({ className: "group", "data-bytes": g.bytes, "data-name": g.name }),
        g => ["biggest block: " + bytes(g.biggest.size) + " at " + g.biggest.address + " (" + (pathLabels[g.biggest.path] || g.biggest.path) + ")",
          g.reachability ? el("div", { className: "reach" }, categoryList(g.reachability)) : null,
          ...[g.inherited.blocks ? "inherited at fork: " + amount(g.inherited) : null, g.thresholdNote].filter(Boolean).map(n => el("div", { className: "warn" }, n)),
          el("ol", { className: "stack" }, ...g.biggest.stack.map(f => el("li", {}, frameName(f), " ", el("span", { className: "where" }, frameWhere(f)))))]);
      groups.append(R.groups.length ? groupTable.element : el("p", { className: "facts" }, "No groups."));

      timelineSection(D.timeline, D.marks);
      ratesSection(R.growing);
      if (R.mappings.length) section("mappings", "Direct mappings still mapped").append(table(
        [{ label: "start", mono: true }, { label: "size", num: true }, { label: "kind" }, { label: "file" }, { label: "call site" }],
        R.mappings.map(m => [m.start, bytes(m.size), pathLabels[m.kind] || m.kind, m.file || "", frameName(m.callsite)])));
      if (R.breakGrowth.length) section("brk", "Program-break growth").append(table(
        [{ label: "net bytes", num: true }, { label: "calls", num: true }, { label: "call site" }],
        R.breakGrowth.map(b => [String(b.netBytes), String(b.calls), frameName(b.callsite)])));
      warningsSection(R.warnings);
      return Object.assign({ table: groupTable, callsite: R.groups.length ? frameName(R.groups[0].callsite) : null }, flame);
    }

    // MARK: reachability at exit
    // summary.reachability and each group's reachability hold an Amount per category
    // (docs/report-json.md); absent when the trace cannot say, and summary.reachabilityUnknown
    // says why.
    const categories = ["definitelyLost", "indirectlyLost", "possiblyLost", "stillReachable", "unclassified"];
    const categoryLabels = ["lost", "possibly lost", "unclassified", "still reachable"];
    const categoryNames = { definitelyLost: "definitely lost", indirectlyLost: "indirectly lost", possiblyLost: "possibly lost",
      stillReachable: "still reachable", unclassified: "unclassified" };
    // Where a group is listed: 0 lost, 1 possibly lost, 2 unclassified, 3 only still reachable.
    function severity(r) {
      if (!r) return 3;
      if (r.definitelyLost.blocks + r.indirectlyLost.blocks > 0) return 0;
      if (r.possiblyLost.blocks > 0) return 1;
      return r.unclassified && r.unclassified.blocks > 0 ? 2 : 3;
    }
    function categoryList(r) {
      return r ? categories.filter(c => r[c] && r[c].blocks).map(c => categoryNames[c] + " " + amount(r[c])).join(", ") : "";
    }
    function reachabilitySummary(summary, S) {
      const R = S.reachability;
      if (!R) {
        if (S.reachabilityUnknown) summary.append(el("p", { className: "facts warn", id: "reachability-unknown" }, "reachability unknown: " + S.reachabilityUnknown));
        return;
      }
      const scan = R.scan, notes = ["scan at exit took " + (scan.scanUs < 10000 ? scan.scanUs + "us" : Math.floor(scan.scanUs / 1000) + "ms")];
      if (scan.libcFreeres) notes.push("__libc_freeres called");
      if (scan.cxxFreeres) notes.push("__gnu_cxx::__freeres called");
      if (scan.otherThreadsRunning) notes.push("other threads were running (best effort)");
      if (scan.inFatalSignalHandler) notes.push("in a fatal signal's handler");
      summary.append(el("table", { className: "pathbars", id: "reachability" }, el("tbody", {},
        ...categories.filter(c => R[c]).map(c => el("tr", { "data-category": c, "data-bytes": R[c].bytes, "data-blocks": R[c].blocks },
          el("td", {}, categoryNames[c]), el("td", { className: "num" }, amount(R[c])))))));
      summary.append(el("p", { className: "facts" }, notes.join(", ")));
    }

    // MARK: icicle graph
    // The tree of D.flame, outermost frame at the top; a node's width is its share of the
    // zoomed node's bytes.
    function icicle(body) {
      const F = D.flame;
      const nodes = F.nodes.map(([frame, size, blocks, parent]) => ({ frame, size, blocks, parent, children: [], depth: 0 }));
      // Each node comes after its parent.
      nodes.forEach((n, i) => { if (n.parent >= 0) { nodes[n.parent].children.push(i); n.depth = nodes[n.parent].depth + 1; } });
      const nodeName = i => nodes[i].frame < 0 ? "all leaked stacks" : F.frames[nodes[i].frame][0];
      const nodeWhere = i => nodes[i].frame < 0 ? "" : F.frames[nodes[i].frame][1];
      const search = el("input", { type: "search", id: "flame-search", placeholder: "search frames (function or file)" });
      const reset = el("button", { id: "flame-reset", type: "button" }, "show all");
      const matched = el("span", { id: "flame-match", className: "facts" });
      body.append(el("div", { className: "controls" }, search, reset, matched));
      const graph = el("div", { id: "flame-graph" });
      const detail = el("div", { id: "flame-detail" }, "Click a frame to zoom into it; the root shows everything.");
      body.append(graph, detail);
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
            percent(nodes[i].size, nodes[0].size) + "), " + nodes[i].blocks + " blocks" }, nodeName(i));
        div.style.left = left + "%";
        div.style.width = width + "%";
        div.style.top = nodes[i].depth * rowHeight + "px";
        div.style.background = nodes[i].frame < 0 ? "#c9ccd4" : colour(nodeName(i));
        graph.append(div);
      }
      function draw() {
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
        draw();
        detail.textContent = nodeName(i) + (nodeWhere(i) ? " \u2014 " + nodeWhere(i) : "") + ": " + bytes(nodes[i].size) +
          " in " + nodes[i].blocks + " blocks, " + percent(nodes[i].size, nodes[0].size) + " of leaked bytes";
      }
      graph.addEventListener("click", e => { const f = e.target.closest(".frame"); if (f) zoomTo(+f.dataset.node); });
      search.addEventListener("input", () => { query = search.value.trim(); draw(); });
      reset.addEventListener("click", () => { search.value = ""; query = ""; zoomTo(0); });
      if (nodes[0].size > 0) draw(); else graph.replaceWith(el("p", { className: "facts" }, "Nothing leaked."));
      return { graph, search, reset, matched, nodes, nodeName };
    }
    """#

    static let selfTest = #"""
    // MARK: self-test (#selftest)
    function selfTest(drawn) {
      const lines = [];
      const check = (ok, what) => lines.push((ok ? "ok   " : "FAIL ") + what);
      if (drawn && drawn.graph) checkReport(drawn, check);
      if (drawn && drawn.graph) checkReachability(drawn, check);
      if (drawn && drawn.table) checkTable(drawn.table, check);
      if (D.timeline) check(!!document.getElementById("timeline"), "the timeline section is there");
      const passed = lines.every(l => l.startsWith("ok"));
      page.append(el("pre", { id: "selftest", "data-result": passed ? "pass" : "fail" },
        "selftest: " + (passed ? "pass" : "fail") + " (page drawn in " + page.dataset.drawnMs + " ms)\n" + lines.join("\n")));
      console.log("selftest: " + (passed ? "pass" : "fail"));
    }
    function checkReport(drawn, check) {
      const S = D.report.summary, { graph, search, reset, matched, nodes, nodeName } = drawn;
      const leaked = document.getElementById("leaked");
      check(+leaked.dataset.bytes === S.leaked.bytes && leaked.textContent.includes(bytes(S.leaked.bytes)), "leaked total " + bytes(S.leaked.bytes));
      // The frame of the biggest group's call site; when it is too narrow to be drawn (a leak
      // spread over thousands of stacks), the widest frame below the root.
      const frames = [...graph.querySelectorAll(".frame")].filter(f => +f.dataset.node !== 0);
      const widest = list => list.sort((a, b) => nodes[+b.dataset.node].size - nodes[+a.dataset.node].size)[0];
      const target = widest(frames.filter(f => nodeName(+f.dataset.node) === drawn.callsite)) || widest(frames);
      check(!!target, "a frame to zoom into: " + (target ? nodeName(+target.dataset.node) : "none"));
      if (!target) return;
      const node = +target.dataset.node, name = nodeName(node);
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
    // The categories as the report counts them, and groups listed lost first (before any sorting).
    function checkReachability(drawn, check) {
      const S = D.report.summary, R = S.reachability;
      if (!R) {
        check(!S.reachabilityUnknown || !!document.getElementById("reachability-unknown"), "reachability unknown is said");
        return;
      }
      const rows = [...document.querySelectorAll("#reachability tr")];
      check(categories.every(c => !R[c] || rows.some(r => r.dataset.category === c && +r.dataset.bytes === R[c].bytes && +r.dataset.blocks === R[c].blocks)),
        "reachability totals " + categories.filter(c => R[c]).map(c => c + " " + R[c].bytes).join(", "));
      const order = [...drawn.table.tbody.querySelectorAll("tr:not(.detail)")]
        .map(row => severity(drawn.table.rows.find(r => r.row === row).item.reachability));
      check(order.every((v, i) => i === 0 || order[i - 1] <= v), "groups listed lost first: " + order.join(" "));
    }
    // Sorting by bytes (or by the difference) both ways, and a row opening to its stack.
    function checkTable(table, check) {
      check(table.rows.length === table.tbody.querySelectorAll("tr:not(.detail)").length, "one row per item: " + table.rows.length);
      const column = table.columns.findIndex(c => c.label === "bytes" || c.label === "difference");
      if (column < 0 || !table.rows.length) return;
      const header = table.headRow.children[column];
      for (const [label, ordered] of [["descending", (a, b) => a >= b], ["ascending", (a, b) => a <= b]]) {
        header.click();
        const values = [...table.tbody.querySelectorAll("tr:not(.detail)")]
          .map(row => table.columns[column].key(table.rows.find(r => r.row === row).item));
        check(values.every((v, i) => i === 0 || ordered(values[i - 1], v)), "sorting by " + table.columns[column].label + ", " + label);
      }
      const first = table.rows.find(r => r.row === table.tbody.querySelector("tr"));
      if (first && first.more) {
        first.row.click();
        check(!first.more.hidden && first.more.querySelectorAll("li").length === first.item.biggest.stack.length, "a row opens to its stack");
      }
    }
    """#
}
