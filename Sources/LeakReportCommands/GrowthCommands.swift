import ArgumentParser
import Dispatch
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
        var rules: [Suppression] = []
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

/// One trace replayed to its end, for `diff` and `--merge`.
struct ReplayedTrace {
    let reader: TraceReader
    var replayer: Replayer
    var facts: TraceFacts
    var warnings: [String]

    /// Opens and replays `path` (joined with its parent trace when it is a fork child).
    static func load(_ path: String, progress: Bool) throws -> ReplayedTrace {
        let reader = try TraceReader(path: path)
        var replayer = Replayer(header: reader.header)
        let join = replayer.joinParent(of: reader.header, childPath: path)
        let bar = ProgressBar(label: "reading \(path)", total: reader.fileSize, enabled: progress)
        let outcome = replayer.replay(reader, progress: bar.update)
        bar.finish()
        let reading = ReportRun.readingOutcome(outcome)
        var warnings = join.warnings
        if let warning = incompleteWarning(path: path, reading) { warnings.append(warning) }
        return ReplayedTrace(reader: reader, replayer: replayer,
                             facts: TraceFacts(path: path, header: reader.header, outcome: reading, replay: replayer,
                                               parentReplayed: join.joined),
                             warnings: warnings)
    }
}

/// The warning for a trace that was cut or damaged.
func incompleteWarning(path: String, _ reading: ReadingOutcome) -> String? {
    guard !reading.isComplete, reading.replayedUntilUs == nil, reading.endedByExec == nil else { return nil }
    return "\(path): trace incomplete: reading stopped at byte \(reading.stoppedAtOffset ?? 0) (\(reading.stopReason ?? "no END record")); only the events before that point count"
}

/// How reading ended, for the report's trace facts.
func readingOutcome(_ state: TraceEndState?, endedByExec: String?) -> ReadingOutcome {
    switch state {
    case .complete?: return ReadingOutcome(isComplete: true)
    case let .cut(offset, reason)?:
        return ReadingOutcome(isComplete: false, stoppedAtOffset: offset, stopReason: reason, endedByExec: endedByExec)
    case nil: return ReadingOutcome(isComplete: false, stopReason: "reading did not finish")
    }
}

/// One trace being loaded by `loadConcurrently`: written by its loading block, read by the
/// calling thread once `loaded` is signalled.
private final class LoadSlot: @unchecked Sendable {
    var result: Result<ReplayedTrace, Error>?
    let loaded = DispatchSemaphore(value: 0)
}

/// Loads several traces, two at a time on the machine's cores (each replay is independent),
/// and runs `finish` on each (its analysis and symbolization) as soon as that trace is replayed,
/// on the calling thread in the order of `paths`: the first trace's symbolization overlaps the
/// replay of the next instead of waiting for every replay. `finish` calls never overlap, so they
/// may share one symbolizer, and its warnings come out in the same order as on one thread. A
/// trace is let go once finished.
///
/// Only the calling thread ever waits (for the trace it finishes next); the loading blocks never
/// wait for anything, so no size of the thread pool can deadlock.
func loadConcurrently<Finished>(_ paths: [String],
                                finish: (Int, ReplayedTrace) throws -> Finished) throws -> [Finished] {
    let slots = paths.map { _ in LoadSlot() }
    for (path, slot) in zip(paths, slots) {
        DispatchQueue.global().async {
            slot.result = Result { try ReplayedTrace.load(path, progress: false) }
            slot.loaded.signal()
        }
    }
    var finished: [Finished] = []
    var failure: Error?
    for (index, slot) in slots.enumerated() {
        // Every load is waited for, even after a failure: none may outlive this call.
        slot.loaded.wait()
        let result = slot.result
        slot.result = nil
        guard failure == nil else { continue }
        do {
            guard let result else { throw UsageError("a trace was not read") }
            finished.append(try finish(index, try result.get()))
        } catch {
            failure = error
        }
    }
    if let failure { throw failure }
    return finished
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
                (facts: trace.facts, warnings: trace.warnings,
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
        let reader = try TraceReader(path: path)
        var replayer = Replayer(header: reader.header)
        let join = replayer.joinParent(of: reader.header, childPath: path)
        let symbolizer = site.makeSymbolizer()
        let tracker = GrowthTracker(reader: reader, replayer: replayer, symbolizer: symbolizer, options: options)
        let outcome = try tracker.replay(&replayer, reader: reader)
        let reading = readingOutcome(outcome.endState, endedByExec: reader.endedByExec)
        var warnings = join.warnings + symbolizer.symbolizationWarnings
        if let warning = incompleteWarning(path: path, reading) { warnings.append(warning) }
        let facts = TraceFacts(path: path, header: reader.header, outcome: reading, replay: replayer,
                               parentReplayed: join.joined)
        return (facts, tracker.peakTotals(), warnings)
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
        let reader = try TraceReader(path: path)
        var replayer = Replayer(header: reader.header)
        let join = replayer.joinParent(of: reader.header, childPath: path)
        let symbolizer = sites.makeSymbolizer()
        let tracker = GrowthTracker(reader: reader, replayer: replayer, symbolizer: symbolizer,
                                    options: try sites.analysisOptions())
        let bar = ProgressBar(label: "reading \(path)", total: reader.fileSize, enabled: !sites.noProgress)
        let outcome: GrowthPassOutcome
        do {
            outcome = try tracker.replay(&replayer, reader: reader, window: window, progress: bar.update)
        } catch let error as GrowthError {
            bar.finish()
            throw UsageError(error.description)
        }
        bar.finish()
        var warnings = join.warnings
        let reading: ReadingOutcome
        if let state = outcome.endState {
            reading = readingOutcome(state, endedByExec: reader.endedByExec)
            if let warning = incompleteWarning(path: path, reading) { warnings.append(warning) }
        } else {
            // Moment B ended the pass: the rest of the trace was not needed.
            reading = ReadingOutcome(isComplete: false, replayedUntilUs: tracker.now)
        }
        let facts = TraceFacts(path: path, header: reader.header, outcome: reading, replay: replayer,
                               parentReplayed: join.joined)
        warnings += symbolizer.symbolizationWarnings
        return (tracker, facts, tracker.timeline(of: replayer), warnings)
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

/// How a growth pass's reading ended, as the report states it.
func passReadingOutcome(_ pass: GrowthPassOutcome, lastTime: UInt64, endedByExec: String?) -> ReadingOutcome {
    pass.stoppedByLimit ? ReadingOutcome(isComplete: false, replayedUntilUs: lastTime)
                        : readingOutcome(pass.endState, endedByExec: endedByExec)
}
