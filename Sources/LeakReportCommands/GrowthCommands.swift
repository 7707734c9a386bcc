import ArgumentParser
import LeakAnalysis
import LiveSet
import Reports
import Symbolization
import TraceFormat

// `leakreport diff OLD NEW`, `leakreport growth TRACE --from A --to B`, `leakreport timeline TRACE`.

/// Parses `start`, `end`, a time (`1.5s`, `250ms`, `300us`, a bare number of seconds) or a mark
/// (`mark:NAME`, or any other word).
func parseMoment(_ text: String) throws -> GrowthMoment {
    let trimmed = text.trimmingWhitespace()
    switch trimmed {
    case "": throw UsageError("an empty moment (use start, end, a time such as 1.5s, or a mark name)")
    case "start": return .start
    case "end": return .end
    default: break
    }
    if let limit = try? ValueParsing.replayLimit(trimmed) {
        switch limit {
        case let .time(microseconds): return .time(microseconds)
        case let .mark(name): return .mark(name)
        }
    }
    if trimmed.hasPrefix("mark:") { throw UsageError("'\(text)' needs a mark name after 'mark:'") }
    return .mark(trimmed)
}

/// `--fail-on-growth BYTES` of `diff` and `growth`.
struct GrowthLimit: ParsableArguments {
    @Option(name: .customLong("fail-on-growth"),
            help: ArgumentHelp("Exit with status 4 when the bytes grew by more than BYTES (e.g. 0, 64K, 1MiB): diff's leaked total, growth's live bytes from A to B.",
                               valueName: "BYTES"))
    var failOnGrowth: String?

    func bytes() throws -> UInt64? { try failOnGrowth.map(ValueParsing.bytes) }
}

/// A reachability category as `--category` names it.
enum CategoryName: String, ExpressibleByArgument, CaseIterable {
    case definite, indirect, possible, reachable

    var category: Reachability {
        switch self {
        case .definite: return .definitelyLost
        case .indirect: return .indirectlyLost
        case .possible: return .possiblyLost
        case .reachable: return .stillReachable
        }
    }

    /// `definite,indirect`: one or more names separated by commas.
    static func list(_ text: String) throws -> [CategoryName] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            let name = String(part).trimmingWhitespace()
            guard let category = CategoryName(rawValue: name) else {
                throw ValidationError("unknown category '\(name)' (definite, indirect, possible, reachable)")
            }
            return category
        }
    }
}

/// `--category` of `diff` and `growth`.
struct CategoryFilterOption: ParsableArguments {
    @Option(name: .customLong("category"), parsing: .singleValue,
            help: ArgumentHelp("Count only blocks and mappings of these reachability categories at exit: definite, indirect, possible, reachable (repeatable, or a comma list). Categories are known only at exit: growth counts, at A and at B, the blocks that are still live at exit with that category. brk growth has no category and is left out.",
                               valueName: "CATEGORIES"),
            transform: CategoryName.list)
    var categoryLists: [[CategoryName]] = []

    /// The categories asked for; nil without the option.
    var categories: Set<Reachability>? {
        categoryLists.isEmpty ? nil : Set(categoryLists.joined().map(\.category))
    }

    /// Their names, in a fixed order, for the documents; nil without the option.
    var names: [String]? {
        guard let categories else { return nil }
        return CategoryName.allCases.filter { categories.contains($0.category) }.map(\.rawValue)
    }

    /// The filter for a trace replayed to its end, and a warning when the trace cannot say.
    func filter(for trace: LoadedTrace) -> (filter: ReachabilityFilter?, warnings: [String]) {
        guard let categories else { return (nil, []) }
        let filter = ReachabilityFilter(categories: categories, replay: trace.replayer)
        return (filter, filter.unknownWarning(trace: trace.path).map { [$0] } ?? [])
    }
}

// MARK: - diff

/// `leakreport diff OLD NEW`: per call site, what changed between two runs.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two traces call site by call site (matched by function and file:line, not by address).",
        discussion: "Exit status 4 when --fail-on-growth is given and the leaked bytes grew by more than it.")

    @Argument(help: "The old trace (the baseline).")
    var old: String

    @Argument(help: "The new trace.")
    var new: String

    @Flag(name: .long, help: "Compare the most each site held live at once instead of what was never freed.")
    var live = false

    @OptionGroup var growthLimit: GrowthLimit
    @OptionGroup var categoryFilter: CategoryFilterOption
    @OptionGroup var options: CommonOptions

    func validate() throws {
        try options.requireTextJSONOrHTML()
        if live && categoryFilter.categories != nil {
            throw ValidationError("--category does not go with --live (peaks are counted per site, not per block)")
        }
    }

    func run() throws {
        let limit = try growthLimit.bytes()
        let analysis = try options.analysisOptions()
        let categoryFilter = self.categoryFilter
        let (old, new) = (try options.followingExec(self.old), try options.followingExec(self.new))
        let followWarnings = old.warnings + new.warnings
        var document: DiffDocument
        if live {
            // Peaks need the per-site tracker, which symbolizes during the pass: one at a time.
            let old = try peaks(of: old.path, analysis: analysis)
            let new = try peaks(of: new.path, analysis: analysis)
            document = DiffDocument(old: old.facts, new: new.facts, measure: "peak-live",
                                    diff: TraceDiff(old: old.totals, new: new.totals), top: options.top,
                                    failOnGrowth: limit, warnings: followWarnings + old.warnings + new.warnings)
        } else {
            let analyzer = LeakAnalyzer(options: analysis)
            let symbolizer = options.makeSymbolizer()
            defer { symbolizer.finish() }
            // The old trace, usually the shorter, is symbolized while the new one still replays.
            let loaded = try loadConcurrently([old.path, new.path]) { _, trace in
                let filtered = categoryFilter.filter(for: trace)
                return (facts: trace.facts, warnings: trace.warnings(namingTrace: true) + filtered.warnings,
                        totals: analyzer.siteTotals(replay: trace.replayer, stacks: trace.reader.stacks,
                                                    modules: trace.reader.moduleMaps, symbolizer: symbolizer,
                                                    filter: filtered.filter))
            }
            let (before, after) = (loaded[0], loaded[1])
            document = DiffDocument(old: before.facts, new: after.facts, measure: "leaked",
                                    diff: TraceDiff(old: before.totals, new: after.totals), top: options.top,
                                    failOnGrowth: limit,
                                    warnings: followWarnings + before.warnings + after.warnings
                                        + symbolizer.symbolizationWarnings)
        }
        document.categories = categoryFilter.names
        try options.write(document) { $0.render(document) }
        if document.exceedsLimit { throw ExitCode(LeakReportCLI.exitGrowth) }
    }

    /// One trace replayed with the growth tracker, for the most each site held live at once.
    private func peaks(of path: String, analysis: AnalysisOptions) throws
        -> (facts: TraceFacts, totals: SiteTotals, warnings: [String]) {
        var trace = try LoadedTrace(path: path)
        let symbolizer = options.makeSymbolizer()
        defer { symbolizer.finish() }
        let tracker = trace.makeTracker(symbolizer: symbolizer, options: analysis)
        try trace.replay(tracking: tracker, progress: options.progress)
        return (trace.facts, tracker.peakTotals(), trace.warnings(namingTrace: true) + symbolizer.symbolizationWarnings)
    }
}

// MARK: - growth

/// `leakreport growth TRACE --from A --to B`: what grew between two moments of one run.
struct GrowthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "growth",
        abstract: "What grew between two moments of one trace (marks or times), leak rates per call site, and the memory timeline.",
        discussion: """
            A and B are `start`, `end`, a time since tracing began (1.5s, 250ms, 300us, or a bare \
            number of seconds), or a mark: `mark:NAME` or just NAME (from leaktrace_mark() or the \
            LEAKTRACE_MARK_SIGNAL signal, whose marks are named signal-1, signal-2, ...). Exit \
            status 4 when --fail-on-growth is given and live bytes grew by more than it.
            """)

    @OptionGroup var input: TraceFileArgument

    @Option(name: .long, help: "Moment A: start (default), end, a time or a mark.")
    var from: String = "start"

    @Option(name: .long, help: "Moment B: end (default), start, a time or a mark.")
    var to: String = "end"

    @OptionGroup var growthLimit: GrowthLimit
    @OptionGroup var categoryFilter: CategoryFilterOption
    @OptionGroup var options: CommonOptions

    func validate() throws { try options.requireTextJSONOrHTML() }

    func run() throws {
        let window = (from: try parseMoment(from), to: try parseMoment(to))
        let limit = try growthLimit.bytes()
        let pass = try GrowthPassRun.run(input.trace, options: options, window: window, categoryFilter: categoryFilter)
        guard let atFrom = pass.tracker.atFrom, let atTo = pass.tracker.atTo,
              let fromPoint = pass.tracker.from, let toPoint = pass.tracker.to else {
            throw UsageError("\(input.trace): the moments were not reached")
        }
        var document = GrowthDocument(trace: pass.facts, from: fromPoint, to: toPoint,
                                      diff: TraceDiff(old: atFrom, new: atTo),
                                      newSinceFrom: pass.tracker.newSinceFrom ?? SiteTotals(),
                                      rates: pass.tracker.rates(), timeline: pass.timeline,
                                      marks: pass.tracker.marks, top: options.top, failOnGrowth: limit,
                                      warnings: pass.warnings)
        document.categories = categoryFilter.names
        try options.write(document) { $0.render(document) }
        if document.exceedsLimit { throw ExitCode(LeakReportCLI.exitGrowth) }
    }
}

/// One growth pass over a trace, for `growth` and `timeline`.
enum GrowthPassRun {
    /// With `categoryFilter` set, the trace is first replayed to its end for the categories at
    /// exit (a second pass).
    static func run(_ path: String, options: CommonOptions, window: (from: GrowthMoment, to: GrowthMoment)?,
                    categoryFilter: CategoryFilterOption? = nil) throws
        -> (tracker: GrowthTracker, facts: TraceFacts, timeline: Timeline, warnings: [String]) {
        let followed = try options.followingExec(path)
        var filtered: (filter: ReachabilityFilter?, warnings: [String]) = (nil, [])
        if let categoryFilter, categoryFilter.categories != nil {
            filtered = categoryFilter.filter(for: try LoadedTrace.replayedToEnd(followed.path, progress: options.progress))
        }
        var trace = try LoadedTrace(path: followed.path)
        let symbolizer = options.makeSymbolizer()
        defer { symbolizer.finish() }
        let tracker = trace.makeTracker(symbolizer: symbolizer, options: try options.analysisOptions())
        tracker.reachabilityFilter = filtered.filter
        try trace.replay(tracking: tracker, window: window, progress: options.progress)
        return (tracker, trace.facts, tracker.timeline(of: trace.replayer),
                followed.warnings + trace.warnings(namingTrace: true) + filtered.warnings
                    + symbolizer.symbolizationWarnings)
    }
}

// MARK: - timeline

/// `leakreport timeline TRACE`: RSS, live heap and mapped bytes over time.
struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "RSS (from the memory samples), traced live heap and directly mapped bytes over time.")

    @OptionGroup var input: TraceFileArgument

    @OptionGroup var options: CommonOptions

    func validate() throws { try options.requireTextJSONOrHTML() }

    func run() throws {
        var passOptions = options
        // The timeline names no call sites: do not read debug info for nothing.
        passOptions.noSymbolize = true
        let pass = try GrowthPassRun.run(input.trace, options: passOptions, window: nil)
        let document = TimelineDocument(trace: pass.facts, timeline: pass.timeline, marks: pass.tracker.marks,
                                        warnings: pass.warnings)
        try options.write(document) { $0.render(document) }
    }
}
