import ArgumentParser
import LeakAnalysis
import LiveSet
import Reports
import Symbolization
import TraceFormat

// `leakreport diff OLD NEW`, `leakreport growth TRACE --from A --to B`, `leakreport timeline TRACE`.

// MARK: - Shared options

/// Options every growth command takes: how sites are found and named, and the output.
struct SiteOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: text or json.")
    var format: String = "text"

    @Option(name: .long, help: "Number of sites to list.")
    var top: Int = 20

    @Option(name: .customLong("skip-frame"),
            help: "A glob naming one more allocation wrapper to look past when finding call sites (repeatable).")
    var skipFrames: [String] = []

    @Option(name: .long, help: "A LeakSanitizer-style suppressions file, `leak:PATTERN` per line (repeatable).")
    var suppressions: [String] = []

    @Flag(name: .long, help: "Do not apply the built-in suppressions (stdio buffers, thread-local storage, libstdc++'s exception pool, locale data).")
    var noDefaultSuppressions = false

    @Option(name: .long, help: "Colour: auto (on a terminal), always or never.")
    var color: String = "auto"

    @Option(name: .customLong("debug-dir"), help: "A directory of separate debug files (repeatable; default /usr/lib/debug).")
    var debugDirectories: [String] = []

    @Flag(name: .customLong("no-symbolize"), help: "Show frames as module+offset without reading debug info.")
    var noSymbolize = false

    @Flag(name: .customLong("no-progress"), help: "Never draw the progress bar.")
    var noProgress = false

    func validate() throws {
        guard format == "text" || format == "json" else {
            throw ValidationError("unknown format '\(format)' (text, json)")
        }
        guard ["auto", "always", "never"].contains(color) else {
            throw ValidationError("--color takes auto, always or never")
        }
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
        for pattern in skipFrames where pattern.isEmpty { throw ValidationError("--skip-frame needs a pattern") }
    }

    var isJSON: Bool { format == "json" }

    var wantsColor: Bool {
        switch color {
        case "always": return true
        case "never": return false
        default: return Terminal.wantsColor()
        }
    }

    func analysisOptions() throws -> AnalysisOptions {
        var options = AnalysisOptions()
        options.frameFilter = AllocatorFrameFilter(extraPatterns: skipFrames)
        var rules: [Suppression] = noDefaultSuppressions ? [] : Suppressions.builtIn
        for file in suppressions { rules += try Suppressions(contentsOfFile: file).rules }
        options.suppressions = Suppressions(rules: rules)
        options.top = top
        return options
    }

    func makeSymbolizer() -> FrameSymbolizer {
        guard !noSymbolize else { return OffsetOnlySymbolizer() }
        var options = SymbolizerOptions()
        if !debugDirectories.isEmpty { options.debugDirectories = debugDirectories }
        return DwarfFrameSymbolizer(options: options)
    }
}

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

    @Option(name: .customLong("fail-on-growth"),
            help: ArgumentHelp("Exit with status 4 when the total grew by more than BYTES (e.g. 0, 64K, 1MiB).",
                               valueName: "BYTES"))
    var failOnGrowth: String?

    @OptionGroup var sites: SiteOptions

    func run() throws {
        let limit = try failOnGrowth.map(ValueParsing.bytes)
        let options = try sites.analysisOptions()
        let document: DiffDocument
        if live {
            // Peaks need the per-site tracker, which symbolizes during the pass: one at a time.
            let old = try PeakRun(path: self.old, options: options, site: sites).run()
            let new = try PeakRun(path: self.new, options: options, site: sites).run()
            document = DiffDocument(old: old.facts, new: new.facts, measure: "peak-live",
                                    diff: TraceDiff(old: old.totals, new: new.totals), top: sites.top,
                                    failOnGrowth: limit, warnings: old.warnings + new.warnings)
        } else {
            let analyzer = LeakAnalyzer(options: options)
            let symbolizer = sites.makeSymbolizer()
            // The old trace, usually the shorter, is symbolized while the new one still replays.
            let loaded = try loadConcurrently([old, new]) { _, trace in
                (facts: trace.facts, warnings: trace.warnings(namingTrace: true),
                 totals: analyzer.siteTotals(replay: trace.replayer, stacks: trace.reader.stacks,
                                             modules: trace.reader.moduleMaps, symbolizer: symbolizer))
            }
            let (before, after) = (loaded[0], loaded[1])
            document = DiffDocument(old: before.facts, new: after.facts, measure: "leaked",
                                    diff: TraceDiff(old: before.totals, new: after.totals), top: sites.top,
                                    failOnGrowth: limit,
                                    warnings: before.warnings + after.warnings + symbolizer.symbolizationWarnings)
        }
        let output = BufferedOutput()
        output.write(sites.isJSON ? try JSONDocument.render(document) : GrowthText(color: sites.wantsColor).render(document))
        output.flush()
        if document.exceedsLimit { throw ExitCode(LeakReportCLI.exitGrowth) }
    }
}

/// Replays one trace with the growth tracker, for per-site peaks.
struct PeakRun {
    let path: String
    let options: AnalysisOptions
    let site: SiteOptions

    func run() throws -> (facts: TraceFacts, totals: SiteTotals, warnings: [String]) {
        var trace = try LoadedTrace(path: path)
        let symbolizer = site.makeSymbolizer()
        let tracker = trace.makeTracker(symbolizer: symbolizer, options: options)
        try trace.replay(tracking: tracker, progress: !site.noProgress)
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

    @Argument(help: "A trace file written by libleaktrace.so.")
    var trace: String

    @Option(name: .long, help: "Moment A: start (default), end, a time or a mark.")
    var from: String = "start"

    @Option(name: .long, help: "Moment B: end (default), start, a time or a mark.")
    var to: String = "end"

    @Option(name: .customLong("fail-on-growth"),
            help: ArgumentHelp("Exit with status 4 when live bytes grew from A to B by more than BYTES.",
                               valueName: "BYTES"))
    var failOnGrowth: String?

    @OptionGroup var sites: SiteOptions

    func run() throws {
        let window = (from: try parseMoment(from), to: try parseMoment(to))
        let limit = try failOnGrowth.map(ValueParsing.bytes)
        let pass = try GrowthPassRun(path: trace, sites: sites, window: window).run()
        guard let atFrom = pass.tracker.atFrom, let atTo = pass.tracker.atTo,
              let fromPoint = pass.tracker.from, let toPoint = pass.tracker.to else {
            throw UsageError("\(trace): the moments were not reached")
        }
        let document = GrowthDocument(trace: pass.facts, from: fromPoint, to: toPoint,
                                      diff: TraceDiff(old: atFrom, new: atTo),
                                      newSinceFrom: pass.tracker.newSinceFrom ?? SiteTotals(),
                                      rates: pass.tracker.rates(), timeline: pass.timeline,
                                      marks: pass.tracker.marks, top: sites.top, failOnGrowth: limit,
                                      warnings: pass.warnings)
        let output = BufferedOutput()
        output.write(sites.isJSON ? try JSONDocument.render(document) : GrowthText(color: sites.wantsColor).render(document))
        output.flush()
        if document.exceedsLimit { throw ExitCode(LeakReportCLI.exitGrowth) }
    }
}

/// One growth pass over a trace, with its facts.
struct GrowthPassRun {
    let path: String
    let sites: SiteOptions
    let window: (from: GrowthMoment, to: GrowthMoment)?

    func run() throws -> (tracker: GrowthTracker, facts: TraceFacts, timeline: Timeline, warnings: [String]) {
        var trace = try LoadedTrace(path: path)
        let symbolizer = sites.makeSymbolizer()
        let tracker = trace.makeTracker(symbolizer: symbolizer, options: try sites.analysisOptions())
        try trace.replay(tracking: tracker, window: window, progress: !sites.noProgress)
        return (tracker, trace.facts, tracker.timeline(of: trace.replayer),
                trace.warnings(namingTrace: true) + symbolizer.symbolizationWarnings)
    }
}

// MARK: - timeline

/// `leakreport timeline TRACE`: RSS, live heap and mapped bytes over time.
struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "RSS (from the memory samples), traced live heap and directly mapped bytes over time.")

    @Argument(help: "A trace file written by libleaktrace.so.")
    var trace: String

    @OptionGroup var sites: SiteOptions

    func run() throws {
        var options = sites
        // The timeline names no call sites: do not read debug info for nothing.
        options.noSymbolize = true
        let pass = try GrowthPassRun(path: trace, sites: options, window: nil).run()
        let document = TimelineDocument(trace: pass.facts, timeline: pass.timeline, marks: pass.tracker.marks,
                                        warnings: pass.warnings)
        let output = BufferedOutput()
        output.write(sites.isJSON ? try JSONDocument.render(document) : GrowthText(color: sites.wantsColor).render(document))
        output.flush()
    }
}
