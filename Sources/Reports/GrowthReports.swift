import LeakAnalysis
import Symbolization
#if canImport(Glibc)
import Glibc
#endif

// The documents of `diff`, `growth`, `timeline` and `report --merge`: their JSON (schemaVersion 1,
// docs/report-json.md, each with a `kind`) and their text.

// MARK: - Documents

/// `leakreport diff OLD NEW`. Its stored properties are its JSON.
public struct DiffDocument: Encodable {
    public let schemaVersion = LeakReport.schemaVersion
    public let kind = "diff"
    public var old: TraceFacts
    public var new: TraceFacts
    /// `leaked` (never freed by the end) or `peak-live` (`--live`: the most each site held at once).
    public var measure: String
    /// `--category`: the reachability categories counted (`definite`, `indirect`, `possible`,
    /// `reachable`); nil without the option.
    public var categories: [String]?
    public var total: TotalChange
    public var byPath: [PathDelta]
    /// The changed sites, biggest growth first, up to `--top`.
    public var sites: [SiteDelta]
    public var sitesChanged: Int
    public var appeared: Int
    public var vanished: Int
    public var failOnGrowth: UInt64?
    /// True when the growth exceeds `--fail-on-growth`.
    public var exceedsLimit: Bool
    public var warnings: [String]

    public init(old: TraceFacts, new: TraceFacts, measure: String, diff: TraceDiff, top: Int,
                failOnGrowth: UInt64?, warnings: [String]) {
        self.old = old; self.new = new; self.measure = measure
        total = diff.total; byPath = diff.paths
        let changed = diff.changed
        sites = Array(changed.prefix(top))
        sitesChanged = changed.count
        appeared = diff.sites.filter { $0.change == .appeared }.count
        vanished = diff.sites.filter { $0.change == .vanished }.count
        self.failOnGrowth = failOnGrowth
        exceedsLimit = diff.total.exceeds(failOnGrowth)
        self.warnings = warnings
    }
}

/// `leakreport growth TRACE --from A --to B`.
public struct GrowthDocument: Encodable {
    public let schemaVersion = LeakReport.schemaVersion
    public let kind = "growth"
    public var trace: TraceFacts
    public var from: MomentPoint
    public var to: MomentPoint
    /// Live at A against live at B, and what is new since A.
    public var total: GrowthTotal
    public var byPath: [PathDelta]
    /// Per-site rows that changed or gained blocks since A, up to `--top`.
    public var sites: [GrowthRow]
    /// The steepest growers (`--top`).
    public var growing: [SiteRate]
    /// Leak rates over A..B, steepest first, up to `--top`.
    public var rates: [SiteRate]
    /// The leak rates of every site (the text counts the trends of those not listed).
    public var allRates: [SiteRate]
    public var timeline: Timeline
    public var marks: [MarkSeen]
    /// `--category`, as in a diff.
    public var categories: [String]?
    public var top: Int
    public var failOnGrowth: UInt64?
    public var exceedsLimit: Bool
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case schemaVersion, kind, trace, from, to, total, byPath, sites, growing, rates, timeline, marks,
             categories, failOnGrowth, exceedsLimit, warnings
    }

    /// `diff` is live at A (`old`) against live at B (`new`); `newSinceFrom` what was allocated
    /// after A and is still live at B, per site.
    public init(trace: TraceFacts, from: MomentPoint, to: MomentPoint, diff: TraceDiff, newSinceFrom: SiteTotals,
                rates: [SiteRate], timeline: Timeline, marks: [MarkSeen], top: Int, failOnGrowth: UInt64?,
                warnings: [String]) {
        self.trace = trace; self.from = from; self.to = to
        total = GrowthTotal(live: diff.total, newSinceFrom: newSinceFrom.total)
        byPath = diff.paths
        sites = diff.sites.filter { $0.change != .same || (newSinceFrom.entries[$0.key]?.amount.blocks ?? 0) > 0 }
            .prefix(top)
            .map { GrowthRow(delta: $0, newSinceFrom: newSinceFrom.entries[$0.key]?.amount ?? Amount()) }
        growing = rates.topGrowers(top)
        self.rates = Array(rates.prefix(top))
        allRates = rates
        self.timeline = timeline; self.marks = marks; self.top = top
        self.failOnGrowth = failOnGrowth
        exceedsLimit = diff.total.exceeds(failOnGrowth)
        self.warnings = warnings
    }
}

/// Live at A and at B (the diff's total under growth's key names), and what is new since A.
public struct GrowthTotal: Encodable {
    var live: TotalChange
    var newSinceFrom: Amount
    enum CodingKeys: String, CodingKey { case atFrom, atTo, deltaBytes, deltaBlocks, newSinceFrom }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try live.encodeChange(into: &container, old: .atFrom, new: .atTo, deltaBytes: .deltaBytes,
                              deltaBlocks: .deltaBlocks)
        try container.encode(newSinceFrom, forKey: .newSinceFrom)
    }
}

/// One site of the growth report.
public struct GrowthRow: Encodable {
    var delta: SiteDelta
    var newSinceFrom: Amount
    enum CodingKeys: String, CodingKey {
        case key, name, callsite, atFrom, atTo, deltaBytes, deltaBlocks, change, newSinceFrom
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(delta.key, forKey: .key)
        try container.encode(delta.name, forKey: .name)
        try container.encodeIfPresent(delta.callsite, forKey: .callsite)
        try delta.encodeChange(into: &container, old: .atFrom, new: .atTo, deltaBytes: .deltaBytes,
                               deltaBlocks: .deltaBlocks)
        try container.encode(delta.change, forKey: .change)
        try container.encode(newSinceFrom, forKey: .newSinceFrom)
    }
}

/// `leakreport timeline TRACE`.
public struct TimelineDocument: Encodable {
    public let schemaVersion = LeakReport.schemaVersion
    public let kind = "timeline"
    public var trace: TraceFacts
    public var timeline: Timeline
    public var marks: [MarkSeen]
    public var warnings: [String]
    public init(trace: TraceFacts, timeline: Timeline, marks: [MarkSeen], warnings: [String]) {
        self.trace = trace; self.timeline = timeline; self.marks = marks; self.warnings = warnings
    }
}

/// `leakreport --merge T1 T2 ...`: several traces merged by site. Its stored properties are its JSON.
public struct MergeDocument: Encodable {
    public struct TraceEntry: Encodable {
        public var trace: TraceFacts
        /// What the trace leaked (its report's summary total).
        public var leaked: Amount
    }
    public struct SiteEntry: Encodable {
        public var key: SiteKey
        public var name: String
        public var callsite: SymbolizedFrame?
        public var blocks: Int
        public var bytes: UInt64
        /// In how many of the traces the site leaked.
        public var traces: Int
    }

    public let schemaVersion = LeakReport.schemaVersion
    public let kind = "merge"
    public var traces: [TraceEntry]
    public var leaked: Amount
    public var byPath: PathAmounts
    /// The sites that leaked most, up to `--top`.
    public var sites: [SiteEntry]
    public var siteCount: Int
    public var warnings: [String]

    public init(traces: [(facts: TraceFacts, leaked: Amount)], merged: SiteTotals, top: Int, warnings: [String]) {
        self.traces = traces.map { TraceEntry(trace: $0.facts, leaked: $0.leaked) }
        leaked = merged.total
        byPath = merged.byPath
        sites = merged.sorted.prefix(top).map {
            SiteEntry(key: $0.label.key, name: $0.label.name, callsite: $0.label.callsite,
                      blocks: $0.amount.blocks, bytes: $0.amount.bytes, traces: $0.traces)
        }
        siteCount = merged.entries.count
        self.warnings = warnings
    }
}

// MARK: - Text

/// The text forms of the growth documents.
public struct GrowthText {
    public var color: Bool
    public init(color: Bool = false) { self.color = color }

    private func style(_ text: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    func bold(_ text: String) -> String { style(text, "1") }
    private func red(_ text: String) -> String { style(text, "1;31") }
    private func green(_ text: String) -> String { style(text, "32") }
    func dim(_ text: String) -> String { style(text, "2") }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
    static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    static func amount(_ amount: Amount) -> String {
        "\(formatBytes(amount.bytes)) in \(amount.blocks) \(amount.blocks == 1 ? "block" : "blocks")"
    }

    /// `+1.5 KiB`, `-200 B`, `0 B`.
    static func signed(_ bytes: Int64) -> String { bytes > 0 ? "+" + formatSignedBytes(bytes) : formatSignedBytes(bytes) }
    static func signedCount(_ count: Int) -> String { count > 0 ? "+\(count)" : "\(count)" }
    /// `+1 block`, `-3 blocks`, `0 blocks`.
    static func signedBlocks(_ count: Int) -> String { "\(signedCount(count)) \(abs(count) == 1 ? "block" : "blocks")" }

    private func colouredDelta(_ bytes: Int64) -> String {
        bytes > 0 ? red(Self.signed(bytes)) : bytes < 0 ? green(Self.signed(bytes)) : Self.signed(bytes)
    }

    /// A trace's one-line description.
    static func describe(_ facts: TraceFacts) -> String {
        var line = facts.path
        if let program = facts.program { line += " — \(program)" }
        if let pid = facts.pid { line += " (pid \(pid))" }
        if facts.outcome.isCut { line += " [incomplete]" }
        return line
    }

    public func render(_ document: DiffDocument) -> String {
        var out = bold("leakreport diff (\(document.measure == "leaked" ? "leaked at the end" : "peak live per site"))") + "\n"
        out += categoriesLine(document.categories)
        out += "  old: \(Self.describe(document.old))\n  new: \(Self.describe(document.new))\n\n"
        out += totalLine("Total", document.total)
        renderPaths(document.byPath, into: &out)
        out += "\n" + bold("Sites by growth")
            + dim("  (\(document.sitesChanged) changed: \(document.appeared) appeared, \(document.vanished) vanished)") + "\n"
        if document.sites.isEmpty { out += "  no site changed\n" }
        for delta in document.sites {
            out += siteLead(delta)
                + Self.pad(Self.signedBlocks(delta.deltaBlocks), 14)
                + Self.pad(delta.change.rawValue, 9)
                + "\(formatBytes(delta.old.bytes)) -> \(formatBytes(delta.new.bytes))  "
                + "\(delta.name) [\(delta.key.path.rawValue)]\n"
        }
        if document.sitesChanged > document.sites.count {
            out += dim("  ... \(document.sitesChanged - document.sites.count) more (--top)") + "\n"
        }
        out += limitLine(document.failOnGrowth, growth: document.total.deltaBytes, exceeded: document.exceedsLimit)
        renderWarnings(document.warnings, into: &out)
        return out
    }

    /// `Total  3 KiB in 10 blocks -> 5 KiB in 31 blocks  +2 KiB (+21 blocks)`.
    private func totalLine(_ label: String, _ total: TotalChange) -> String {
        bold(label) + "  \(Self.amount(total.old)) -> \(Self.amount(total.new))  "
            + colouredDelta(total.deltaBytes) + " (\(Self.signedBlocks(total.deltaBlocks)))\n"
    }

    /// The start of a site's row: its change in bytes, right-aligned (wider with colour codes).
    private func siteLead(_ delta: SiteDelta) -> String {
        "  " + Self.padLeft(colouredDelta(delta.deltaBytes), color ? 24 : 12) + "  "
    }

    /// Whether the growth stayed within `--fail-on-growth` (nothing when it was not given).
    private func limitLine(_ limit: UInt64?, growth: Int64, exceeded: Bool) -> String {
        guard let limit else { return "" }
        let line = "growth \(Self.signed(growth)) \(exceeded ? "exceeds" : "within") --fail-on-growth \(formatBytes(limit))"
        return "\n" + (exceeded ? red(line) : line) + "\n"
    }

    private func renderPaths(_ paths: [PathDelta], into out: inout String) {
        for path in paths {
            out += "    " + Self.pad(path.path.label, 28) + Self.pad(formatBytes(path.old.bytes), 11) + "-> "
                + Self.pad(formatBytes(path.new.bytes), 11) + colouredDelta(path.deltaBytes) + "\n"
        }
    }

    /// With `--category`: which blocks the numbers count.
    private func categoriesLine(_ categories: [String]?) -> String {
        guard let categories else { return "" }
        return "  counting only blocks live at exit that are: " + categories.joined(separator: ", ") + "\n"
    }

    public func render(_ document: GrowthDocument) -> String {
        var out = bold("leakreport growth: \(Self.describe(document.trace))") + "\n"
        out += "  from \(document.from.label) (\(formatTime(document.from.timeUs))) to \(document.to.label) (\(formatTime(document.to.timeUs)))\n"
        out += categoriesLine(document.categories) + "\n"
        out += totalLine("Live", document.total.live)
        out += "  allocated after \(document.from.label) and still live at \(document.to.label): \(Self.amount(document.total.newSinceFrom))\n"
        renderPaths(document.byPath, into: &out)
        let rows = document.sites
        out += "\n" + bold("Sites") + dim("  (live at A -> live at B, and allocated in between still live)") + "\n"
        if rows.isEmpty { out += "  no site changed\n" }
        for row in rows {
            out += siteLead(row.delta)
                + Self.pad("\(formatBytes(row.delta.old.bytes)) -> \(formatBytes(row.delta.new.bytes))", 24)
                + Self.pad("new \(formatBytes(row.newSinceFrom.bytes))/\(row.newSinceFrom.blocks)", 18)
                + "\(row.delta.name) [\(row.delta.key.path.rawValue)]\n"
        }
        out += "\n"
        out += renderGrowing(document.allRates, top: document.top)
        out += "\n" + renderTimeline(document.timeline, marks: document.marks)
        out += limitLine(document.failOnGrowth, growth: document.total.live.deltaBytes, exceeded: document.exceedsLimit)
        renderWarnings(document.warnings, into: &out)
        return out
    }

    /// The "Growing" section: top growers, then the other trends met.
    public func renderGrowing(_ rates: [SiteRate], top: Int) -> String {
        var out = bold("Growing") + dim("  (least-squares slope of live bytes per site; R² = fit of the line)") + "\n"
        let growers = rates.topGrowers(top)
        if growers.isEmpty { out += "  nothing keeps growing\n" }
        for rate in growers { out += "  " + rateLine(rate) + "\n" }
        let others = rates.filter { !$0.trend.isGrowing }
        if !others.isEmpty {
            var counts: [SiteTrend: Int] = [:]
            for rate in others { counts[rate.trend, default: 0] += 1 }
            let summary = SiteTrend.allCases.compactMap { trend in counts[trend].map { "\($0) \(trend.rawValue)" } }
            out += dim("  also: " + summary.joined(separator: ", ")) + "\n"
            for rate in others.filter({ $0.trend == .plateau || $0.trend == .freedBurst }).prefix(max(0, min(top, 5))) {
                out += dim("  " + rateLine(rate)) + "\n"
            }
        }
        return out
    }

    /// `value` as printf's %.2f writes it.
    static func twoDecimals(_ value: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 400)
        _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.2f", $0) }
        return String(cString: buffer)
    }

    func rateLine(_ rate: SiteRate) -> String {
        let slope = Self.signed(wholeNumberForText(rate.bytesPerSecond)) + "/s"
        let fit = rate.rSquared.map { "R² " + Self.twoDecimals($0) } ?? "R² -"
        return Self.padLeft(slope, 14) + "  " + Self.pad(fit, 8) + Self.pad(rate.trend.rawValue, 12)
            + Self.pad("\(formatSignedBytes(rate.startBytes)) -> \(formatSignedBytes(rate.endBytes))", 24)
            + "\(rate.name) [\(rate.key.path.rawValue)]"
    }

    private func wholeNumberForText(_ value: Double) -> Int64 {
        guard value.isFinite else { return 0 }
        return value >= 9.2e18 ? .max : value <= -9.2e18 ? .min : Int64(value.rounded())
    }

    public func render(_ document: TimelineDocument) -> String {
        var out = bold("leakreport timeline: \(Self.describe(document.trace))") + "\n\n"
        out += renderTimeline(document.timeline, marks: document.marks)
        renderWarnings(document.warnings, into: &out)
        return out
    }

    /// A compact chart: one sparkline row per series, with its lowest and highest values.
    public func renderTimeline(_ timeline: Timeline, marks: [MarkSeen]) -> String {
        let points = timeline.points
        let end = points.last?.endUs ?? 0
        var out = bold("Timeline") + dim("  (0.000s .. \(formatTime(end)), \(points.count) buckets of \(formatTime(timeline.bucketUs)))") + "\n"
        guard !points.isEmpty else { return out + "  no events\n" }
        let rss = points.map { $0.rssBytes }
        out += sparkRow("rss", rss)
        out += sparkRow("live heap", points.map { Optional($0.liveHeapBytes) })
        out += sparkRow("peak in bucket", points.map { Optional($0.peakLiveHeapBytes) })
        out += sparkRow("mapped", points.map { Optional($0.mappedBytes) })
        if !marks.isEmpty {
            var line = [Character](repeating: " ", count: points.count)
            for mark in marks {
                let index = points.firstIndex { $0.endUs >= mark.timeUs } ?? points.count - 1
                line[index] = "^"
            }
            out += "  " + Self.pad("marks", 16) + String(line) + "  "
                + marks.prefix(8).map { "\($0.name)@\(formatTime($0.timeUs))" }.joined(separator: " ") + "\n"
        }
        return out
    }

    static let levels: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// One series as block characters between its min and max (blank where unknown).
    func sparkRow(_ label: String, _ values: [UInt64?]) -> String {
        let known = values.compactMap { $0 }
        guard let low = known.min(), let high = known.max() else {
            return "  " + Self.pad(label, 16) + dim("no samples") + "\n"
        }
        let span = Double(high - low)
        let chart = values.map { value -> Character in
            guard let value else { return " " }
            guard span > 0 else { return Self.levels[0] }
            let level = Int((Double(value - low) / span * Double(Self.levels.count - 1)).rounded())
            return Self.levels[min(max(level, 0), Self.levels.count - 1)]
        }
        return "  " + Self.pad(label, 16) + String(chart) + "  " + dim("min \(formatBytes(low))  max \(formatBytes(high))") + "\n"
    }

    public func render(_ document: MergeDocument) -> String {
        var out = bold("leakreport: \(document.traces.count) traces merged by call site") + "\n"
        for entry in document.traces {
            out += "  " + Self.pad(Self.amount(entry.leaked), 26) + Self.describe(entry.trace) + "\n"
        }
        out += "\n" + bold("Merged") + "  leaked \(Self.amount(document.leaked))\n"
        for (path, amount) in document.byPath.nonEmpty {
            out += "    " + Self.pad(path.label, 30) + (path == .breakGrowth ? formatBytes(amount.bytes) : Self.amount(amount)) + "\n"
        }
        out += "\n" + bold("Top \(document.sites.count) of \(document.siteCount) sites") + "\n"
        for entry in document.sites {
            out += "  " + Self.pad(Self.amount(Amount(blocks: entry.blocks, bytes: entry.bytes)), 26)
                + Self.pad("\(entry.traces) of \(document.traces.count) traces", 16)
                + "\(entry.name) [\(entry.key.path.rawValue)]\n"
        }
        renderWarnings(document.warnings, into: &out)
        return out
    }

    func renderWarnings(_ warnings: [String], into out: inout String) {
        if warnings.isEmpty { return }
        out += "\n"
        for warning in warnings { out += style("warning: \(warning)", "33") + "\n" }
    }
}
