import LeakAnalysis
import Symbolization

// The documents of `diff`, `growth`, `timeline` and `report --merge`: their JSON (schemaVersion 1,
// docs/report-json.md, each with a `kind`) and their text.

// MARK: - Documents

/// `leakreport diff OLD NEW`.
public struct DiffDocument: Encodable {
    public var old: TraceFacts
    public var new: TraceFacts
    /// `leaked` (never freed by the end) or `peak-live` (`--live`: the most each site held at once).
    public var measure: String
    public var diff: TraceDiff
    /// Sites listed (`--top`).
    public var top: Int
    public var failOnGrowth: UInt64?
    public var warnings: [String]

    public init(old: TraceFacts, new: TraceFacts, measure: String, diff: TraceDiff, top: Int,
                failOnGrowth: UInt64?, warnings: [String]) {
        self.old = old; self.new = new; self.measure = measure; self.diff = diff; self.top = top
        self.failOnGrowth = failOnGrowth; self.warnings = warnings
    }

    /// True when the growth exceeds `--fail-on-growth`.
    public var exceedsLimit: Bool {
        guard let failOnGrowth else { return false }
        return diff.total.deltaBytes > Int64(clamping: failOnGrowth)
    }

    enum CodingKeys: String, CodingKey {
        case schemaVersion, kind, old, new, measure, total, byPath, sites, sitesChanged, appeared, vanished,
             failOnGrowth, exceedsLimit, warnings
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(LeakReport.schemaVersion, forKey: .schemaVersion)
        try container.encode("diff", forKey: .kind)
        try container.encode(old, forKey: .old)
        try container.encode(new, forKey: .new)
        try container.encode(measure, forKey: .measure)
        try container.encode(diff.total, forKey: .total)
        try container.encode(diff.paths, forKey: .byPath)
        try container.encode(Array(diff.changed.prefix(top)), forKey: .sites)
        try container.encode(diff.changed.count, forKey: .sitesChanged)
        try container.encode(diff.sites.filter { $0.change == .appeared }.count, forKey: .appeared)
        try container.encode(diff.sites.filter { $0.change == .vanished }.count, forKey: .vanished)
        try container.encodeIfPresent(failOnGrowth, forKey: .failOnGrowth)
        try container.encode(exceedsLimit, forKey: .exceedsLimit)
        try container.encode(warnings, forKey: .warnings)
    }
}

/// `leakreport growth TRACE --from A --to B`.
public struct GrowthDocument: Encodable {
    public var trace: TraceFacts
    public var from: MomentPoint
    public var to: MomentPoint
    /// Live at A (`old`) against live at B (`new`).
    public var diff: TraceDiff
    /// Allocated after A and still live at B, per site.
    public var newSinceFrom: SiteTotals
    /// Leak rates of every site over A..B, steepest first.
    public var rates: [SiteRate]
    public var timeline: Timeline
    public var marks: [MarkSeen]
    public var top: Int
    public var failOnGrowth: UInt64?
    public var warnings: [String]

    public init(trace: TraceFacts, from: MomentPoint, to: MomentPoint, diff: TraceDiff, newSinceFrom: SiteTotals,
                rates: [SiteRate], timeline: Timeline, marks: [MarkSeen], top: Int, failOnGrowth: UInt64?,
                warnings: [String]) {
        self.trace = trace; self.from = from; self.to = to; self.diff = diff; self.newSinceFrom = newSinceFrom
        self.rates = rates; self.timeline = timeline; self.marks = marks; self.top = top
        self.failOnGrowth = failOnGrowth; self.warnings = warnings
    }

    public var exceedsLimit: Bool {
        guard let failOnGrowth else { return false }
        return diff.total.deltaBytes > Int64(clamping: failOnGrowth)
    }

    /// Per-site rows: live at A and B, the difference, and what is new since A.
    var rows: [GrowthRow] {
        diff.sites.filter { $0.change != .same || (newSinceFrom.entries[$0.key]?.amount.blocks ?? 0) > 0 }
            .prefix(top)
            .map { GrowthRow(delta: $0, newSinceFrom: newSinceFrom.entries[$0.key]?.amount ?? Amount()) }
    }

    enum CodingKeys: String, CodingKey {
        case schemaVersion, kind, trace, from, to, total, byPath, sites, growing, rates, timeline, marks,
             failOnGrowth, exceedsLimit, warnings
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(LeakReport.schemaVersion, forKey: .schemaVersion)
        try container.encode("growth", forKey: .kind)
        try container.encode(trace, forKey: .trace)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(GrowthTotal(live: diff.total, newSinceFrom: newSinceFrom.total), forKey: .total)
        try container.encode(diff.paths, forKey: .byPath)
        try container.encode(rows, forKey: .sites)
        try container.encode(rates.topGrowers(top), forKey: .growing)
        try container.encode(Array(rates.prefix(top)), forKey: .rates)
        try container.encode(timeline, forKey: .timeline)
        try container.encode(marks, forKey: .marks)
        try container.encodeIfPresent(failOnGrowth, forKey: .failOnGrowth)
        try container.encode(exceedsLimit, forKey: .exceedsLimit)
        try container.encode(warnings, forKey: .warnings)
    }
}

/// Live at A and at B (the diff's total under growth's key names), and what is new since A.
struct GrowthTotal: Encodable {
    var live: TotalChange
    var newSinceFrom: Amount
    enum CodingKeys: String, CodingKey { case atFrom, atTo, deltaBytes, deltaBlocks, newSinceFrom }
    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try live.encodeChange(into: &container, old: .atFrom, new: .atTo, deltaBytes: .deltaBytes,
                              deltaBlocks: .deltaBlocks)
        try container.encode(newSinceFrom, forKey: .newSinceFrom)
    }
}

/// One site of the growth report.
struct GrowthRow: Encodable {
    var delta: SiteDelta
    var newSinceFrom: Amount
    enum CodingKeys: String, CodingKey {
        case key, name, callsite, atFrom, atTo, deltaBytes, deltaBlocks, change, newSinceFrom
    }
    func encode(to encoder: Encoder) throws {
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

/// `leakreport --merge T1 T2 ...`: several traces merged by site.
public struct MergeDocument: Encodable {
    /// Each trace with what it leaked (the report's summary total).
    public var traces: [(facts: TraceFacts, leaked: Amount)]
    public var merged: SiteTotals
    public var top: Int
    public var warnings: [String]

    public init(traces: [(facts: TraceFacts, leaked: Amount)], merged: SiteTotals, top: Int, warnings: [String]) {
        self.traces = traces; self.merged = merged; self.top = top; self.warnings = warnings
    }

    struct TraceEntry: Encodable {
        var trace: TraceFacts
        var leaked: Amount
    }
    struct SiteEntry: Encodable {
        var key: SiteKey
        var name: String
        var callsite: SymbolizedFrame?
        var blocks: Int
        var bytes: UInt64
        var traces: Int
    }

    enum CodingKeys: String, CodingKey { case schemaVersion, kind, traces, leaked, byPath, sites, siteCount, warnings }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(LeakReport.schemaVersion, forKey: .schemaVersion)
        try container.encode("merge", forKey: .kind)
        try container.encode(traces.map { TraceEntry(trace: $0.facts, leaked: $0.leaked) }, forKey: .traces)
        try container.encode(merged.total, forKey: .leaked)
        try container.encode(merged.byPath, forKey: .byPath)
        try container.encode(merged.sorted.prefix(top).map {
            SiteEntry(key: $0.label.key, name: $0.label.name, callsite: $0.label.callsite,
                      blocks: $0.amount.blocks, bytes: $0.amount.bytes, traces: $0.traces)
        }, forKey: .sites)
        try container.encode(merged.entries.count, forKey: .siteCount)
        try container.encode(warnings, forKey: .warnings)
    }
}

// MARK: - Text

/// The text forms of the growth documents.
public struct GrowthText {
    public var color: Bool
    public init(color: Bool = false) { self.color = color }

    private func style(_ text: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    private func bold(_ text: String) -> String { style(text, "1") }
    private func red(_ text: String) -> String { style(text, "1;31") }
    private func green(_ text: String) -> String { style(text, "32") }
    private func dim(_ text: String) -> String { style(text, "2") }

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
        out += "  old: \(Self.describe(document.old))\n  new: \(Self.describe(document.new))\n\n"
        let diff = document.diff
        out += totalLine("Total", diff.total)
        renderPaths(diff.paths, into: &out)
        let changed = diff.changed
        let appeared = changed.filter { $0.change == .appeared }.count
        let vanished = changed.filter { $0.change == .vanished }.count
        out += "\n" + bold("Sites by growth") + dim("  (\(changed.count) changed: \(appeared) appeared, \(vanished) vanished)") + "\n"
        if changed.isEmpty { out += "  no site changed\n" }
        for delta in changed.prefix(document.top) {
            out += siteLead(delta)
                + Self.pad("\(Self.signedCount(delta.deltaBlocks)) blocks", 14)
                + Self.pad(delta.change.rawValue, 9)
                + "\(formatBytes(delta.old.bytes)) -> \(formatBytes(delta.new.bytes))  "
                + "\(delta.name) [\(delta.key.path.rawValue)]\n"
        }
        if changed.count > document.top { out += dim("  ... \(changed.count - document.top) more (--top)") + "\n" }
        out += limitLine(document.failOnGrowth, growth: diff.total.deltaBytes, exceeded: document.exceedsLimit)
        renderWarnings(document.warnings, into: &out)
        return out
    }

    /// `Total  3 KiB in 10 blocks -> 5 KiB in 31 blocks  +2 KiB (+21 blocks)`.
    private func totalLine(_ label: String, _ total: TotalChange) -> String {
        bold(label) + "  \(Self.amount(total.old)) -> \(Self.amount(total.new))  "
            + colouredDelta(total.deltaBytes) + " (\(Self.signedCount(total.deltaBlocks)) blocks)\n"
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

    public func render(_ document: GrowthDocument) -> String {
        var out = bold("leakreport growth: \(Self.describe(document.trace))") + "\n"
        out += "  from \(document.from.label) (\(formatTime(document.from.timeUs))) to \(document.to.label) (\(formatTime(document.to.timeUs)))\n\n"
        let diff = document.diff
        out += totalLine("Live", diff.total)
        out += "  allocated after \(document.from.label) and still live at \(document.to.label): \(Self.amount(document.newSinceFrom.total))\n"
        renderPaths(diff.paths, into: &out)
        let rows = document.rows
        out += "\n" + bold("Sites") + dim("  (live at A -> live at B, and allocated in between still live)") + "\n"
        if rows.isEmpty { out += "  no site changed\n" }
        for row in rows {
            out += siteLead(row.delta)
                + Self.pad("\(formatBytes(row.delta.old.bytes)) -> \(formatBytes(row.delta.new.bytes))", 24)
                + Self.pad("new \(formatBytes(row.newSinceFrom.bytes))/\(row.newSinceFrom.blocks)", 18)
                + "\(row.delta.name) [\(row.delta.key.path.rawValue)]\n"
        }
        out += "\n"
        out += renderGrowing(document.rates, top: document.top)
        out += "\n" + renderTimeline(document.timeline, marks: document.marks)
        out += limitLine(document.failOnGrowth, growth: diff.total.deltaBytes, exceeded: document.exceedsLimit)
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

    func rateLine(_ rate: SiteRate) -> String {
        let slope = Self.signed(wholeNumberForText(rate.bytesPerSecond)) + "/s"
        let fit = rate.rSquared.map { "R² " + String(format: "%.2f", $0) } ?? "R² -"
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
            out += "  " + Self.pad(Self.amount(entry.leaked), 26) + Self.describe(entry.facts) + "\n"
        }
        out += "\n" + bold("Merged") + "  leaked \(Self.amount(document.merged.total))\n"
        for (path, amount) in document.merged.byPath.nonEmpty {
            out += "    " + Self.pad(path.label, 30) + (path == .breakGrowth ? formatBytes(amount.bytes) : Self.amount(amount)) + "\n"
        }
        let sites = document.merged.sorted
        out += "\n" + bold("Top \(min(document.top, sites.count)) of \(sites.count) sites") + "\n"
        for entry in sites.prefix(document.top) {
            out += "  " + Self.pad(Self.amount(entry.amount), 26)
                + Self.pad("\(entry.traces) of \(document.traces.count) traces", 16)
                + "\(entry.label.name) [\(entry.label.key.path.rawValue)]\n"
        }
        renderWarnings(document.warnings, into: &out)
        return out
    }

    private func renderWarnings(_ warnings: [String], into out: inout String) {
        if warnings.isEmpty { return }
        out += "\n"
        for warning in warnings { out += style("warning: \(warning)", "33") + "\n" }
    }
}
