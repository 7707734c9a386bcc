// The style sheet of the HTML report: readable on a laptop screen, and in print (controls
// hidden, every stack shown, colours kept).

enum HtmlPageStyle {
    static let css = #"""
    :root { --ink: #1d2330; --muted: #5d6678; --line: #d9dde5; --paper: #fff; --panel: #f5f6f9;
            --accent: #b3261e; --heap: #d9534f; --mapped: #3b7dd8; --rss: #6b7d1a; --match: #f2c500; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
           color: var(--ink); background: var(--paper); }
    main { max-width: 1240px; margin: 0 auto; padding: 16px 20px 40px; }
    h1 { font-size: 22px; margin: 0 0 4px; word-break: break-all; }
    h2 { font-size: 17px; margin: 22px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
    .facts { color: var(--muted); margin: 2px 0; }
    .warn { color: #8a5a00; }
    .bad { color: var(--accent); font-weight: 600; }
    code, .mono, .stack { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
    .cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
    .card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 170px; }
    .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
    .card .value { font-size: 20px; font-weight: 600; }
    .card.leaked .value { color: var(--accent); }
    table { border-collapse: collapse; width: 100%; }
    .scroll { overflow-x: auto; }
    th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
    th { background: var(--panel); font-weight: 600; white-space: nowrap; }
    td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
    th.sortable { cursor: pointer; user-select: none; }
    th.sortable::after { content: " \2195"; color: var(--muted); }
    th.sorted-desc::after { content: " \2193"; color: var(--ink); }
    th.sorted-asc::after { content: " \2191"; color: var(--ink); }
    tr.group { cursor: pointer; }
    tr.group:hover { background: #fbf3f2; }
    tr.detail td { background: var(--panel); }
    tr.detail[hidden] { display: none; }
    .bar { height: 10px; background: var(--heap); border-radius: 2px; min-width: 1px; }
    .pathbars td { border: 0; padding: 2px 8px; }
    ol.stack { margin: 4px 0; padding-left: 26px; }
    ol.stack li { margin: 1px 0; }
    ol.stack .where { color: var(--muted); }
    .controls { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 8px; }
    .controls input { font: inherit; padding: 3px 8px; border: 1px solid var(--line); border-radius: 4px; min-width: 260px; }
    .controls button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 4px; background: var(--panel); cursor: pointer; }
    #flame-graph { position: relative; width: 100%; overflow: hidden; border: 1px solid var(--line); border-radius: 4px; }
    .frame { position: absolute; height: 19px; padding: 0 4px; overflow: hidden; white-space: nowrap;
             text-overflow: ellipsis; font: 12px/19px ui-monospace, "DejaVu Sans Mono", monospace; color: #1d1d1d;
             border-right: 1px solid var(--paper); border-bottom: 1px solid var(--paper); cursor: pointer; }
    .frame.ancestor { opacity: .55; }
    .frame.match { background: var(--match) !important; outline: 1px solid #8a7000; }
    .frame:hover { filter: brightness(.92); }
    #flame-detail { min-height: 1.5em; color: var(--muted); margin-top: 4px; }
    svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
    .legend span { display: inline-block; margin-right: 14px; }
    .legend i { display: inline-block; width: 12px; height: 3px; vertical-align: middle; margin-right: 4px; }
    #selftest { white-space: pre-wrap; background: #eef6ee; padding: 8px; }
    @media print {
      main { max-width: none; padding: 0; }
      .controls, #selftest { display: none; }
      tr.detail[hidden] { display: table-row; }
      h2 { break-after: avoid; }
      tr, .frame { break-inside: avoid; }
      * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
    }
    """#
}
