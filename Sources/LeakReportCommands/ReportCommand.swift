import ArgumentParser
import LeakAnalysis
import LiveSet
import Reports
import Symbolization
import TraceFormat

/// `leakreport report TRACE...`: replay, analyze and print the leak report.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report leaked blocks, mappings and brk growth, grouped by call site (the default command).")

    @Argument(help: "Trace files written by libleaktrace.so.")
    var traces: [String] = []

    @Option(name: .long, help: "Output format: text, json, mtrace or folded.")
    var format: String = "text"

    @Option(name: .long, help: "Number of groups to show.")
    var top: Int = 20

    @Option(name: .customLong("min-bytes"), help: "Leave out groups smaller than this (e.g. 4096, 64K, 1MiB).")
    var minBytes: String?

    @Option(name: .customLong("group-by"), help: "Group by callsite, stack, function, file or module.")
    var groupBy: String = "callsite"

    @Option(name: .customLong("skip-frame"),
            help: "A glob naming one more allocation wrapper to look past when finding call sites (repeatable).")
    var skipFrames: [String] = []

    @Option(name: .long, help: "A LeakSanitizer-style suppressions file, `leak:PATTERN` per line (repeatable).")
    var suppressions: [String] = []

    @Flag(name: .long, help: "Do not apply the built-in suppressions (stdio buffers, thread-local storage, libstdc++'s exception pool, locale data).")
    var noDefaultSuppressions = false

    @Option(name: .customLong("fail-on-leak"),
            help: ArgumentHelp("Exit with status 3 when unsuppressed leaked bytes exceed BYTES (bare flag: 0).",
                               valueName: "BYTES"))
    var failOnLeak: String?

    @Option(name: .long, help: "Report what was live at this time (2.5s, 1500ms, 300us) or at the first MARK (mark:NAME).")
    var at: String?

    @Option(name: .long, help: "Colour: auto (on a terminal), always or never.")
    var color: String = "auto"

    @Option(name: .customLong("debug-dir"), help: "A directory of separate debug files (repeatable; default /usr/lib/debug).")
    var debugDirectories: [String] = []

    @Flag(name: .customLong("no-symbolize"), help: "Show frames as module+offset without reading debug info.")
    var noSymbolize = false

    @Flag(name: .customLong("no-progress"), help: "Never draw the progress bar.")
    var noProgress = false

    @Option(name: .customLong("max-frames"), help: "Frames shown per stack in the text report.")
    var maxFrames: Int = 32

    @Flag(name: .long, help: "With several traces: also merge them by call site and add up their totals.")
    var merge = false

    mutating func validate() throws {
        guard !traces.isEmpty else { throw ValidationError("give at least one trace file") }
        guard let format = OutputFormat(rawValue: format) else {
            throw ValidationError("unknown format '\(format)' (text, json, mtrace, folded)")
        }
        if merge && (format == .mtrace || format == .folded) {
            throw ValidationError("--merge takes --format text or json")
        }
        if (format == .mtrace || (format == .json && !merge)) && traces.count > 1 {
            throw ValidationError("--format \(format.rawValue) takes one trace at a time")
        }
        guard GroupBy(rawValue: groupBy) != nil else {
            throw ValidationError("unknown grouping '\(groupBy)' (callsite, stack, function, file, module)")
        }
        guard ["auto", "always", "never"].contains(color) else {
            throw ValidationError("--color takes auto, always or never")
        }
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
        guard maxFrames >= 0 else { throw ValidationError("--max-frames must be 0 or more") }
        for pattern in skipFrames where pattern.isEmpty { throw ValidationError("--skip-frame needs a pattern") }
    }

    func run() throws {
        let settings = try ReportSettings(command: self)
        if merge {
            let merged = try MergeRun(settings: settings, paths: traces, progress: settings.progress).run()
            if let limit = settings.failOnLeakAbove, merged > limit { throw ExitCode(LeakReportCLI.exitLeaksFound) }
            return
        }
        var leakedBytes: UInt64 = 0
        for (index, path) in traces.enumerated() {
            let bytes = try ReportRun(settings: settings, path: path).run(isFirst: index == 0)
            leakedBytes &+= bytes
        }
        if let limit = settings.failOnLeakAbove, leakedBytes > limit {
            throw ExitCode(LeakReportCLI.exitLeaksFound)
        }
    }
}

/// The report command's options, checked and converted.
struct ReportSettings {
    var format: OutputFormat
    var analysis: AnalysisOptions
    var failOnLeakAbove: UInt64?
    var limit: ReplayLimit?
    var color: Bool
    var progress: Bool
    var symbolize: Bool
    var symbolizerOptions: SymbolizerOptions
    var maxFrames: Int

    init(command: ReportCommand) throws {
        format = OutputFormat(rawValue: command.format) ?? .text
        analysis = AnalysisOptions()
        analysis.groupBy = GroupBy(rawValue: command.groupBy) ?? .callsite
        analysis.frameFilter = AllocatorFrameFilter(extraPatterns: command.skipFrames)
        analysis.top = command.top
        analysis.minBytes = try command.minBytes.map(ValueParsing.bytes) ?? 0
        analysis.collectStacks = format == .folded
        var rules: [Suppression] = command.noDefaultSuppressions ? [] : Suppressions.builtIn
        for file in command.suppressions { rules += try Suppressions(contentsOfFile: file).rules }
        analysis.suppressions = Suppressions(rules: rules)
        failOnLeakAbove = try command.failOnLeak.map(ValueParsing.bytes)
        limit = try command.at.map(ValueParsing.replayLimit)
        switch command.color {
        case "always": color = true
        case "never": color = false
        default: color = Terminal.wantsColor()
        }
        progress = !command.noProgress
        symbolize = !command.noSymbolize
        symbolizerOptions = SymbolizerOptions()
        if !command.debugDirectories.isEmpty { symbolizerOptions.debugDirectories = command.debugDirectories }
        maxFrames = command.maxFrames
    }

    func makeSymbolizer() -> FrameSymbolizer {
        symbolize ? DwarfFrameSymbolizer(options: symbolizerOptions) : OffsetOnlySymbolizer()
    }
}

/// Reporting one trace.
struct ReportRun {
    let settings: ReportSettings
    let path: String

    /// Writes the report and returns the unsuppressed leaked bytes.
    func run(isFirst: Bool) throws -> UInt64 {
        var trace = try LoadedTrace(path: path)
        let output = BufferedOutput()
        var export: MtraceExport?
        if settings.format == .mtrace {
            let reader = trace.reader
            let mtrace = MtraceExport(output: output, stacks: reader.stacks,
                                      inheritedStacks: trace.replayer.inheritedStacks) { address in
                let maps = reader.moduleMaps
                return maps.module(containing: address, snapshot: maps.count - 1)
            }
            mtrace.begin(with: trace.replayer)
            trace.replayer.observer = { mtrace.handle($0) }
            export = mtrace
        }

        let symbolizer = settings.makeSymbolizer()
        // The growth tracker rides along the replay to find the call sites that keep growing.
        let tracker = trace.makeTracker(symbolizer: symbolizer, options: settings.analysis)
        try trace.replay(tracking: tracker, limit: settings.limit, progress: settings.progress)
        trace.replayer.observer = nil
        export?.finish()

        var report = LeakAnalyzer(options: settings.analysis)
            .analyze(replay: trace.replayer, stacks: trace.reader.stacks, modules: trace.reader.moduleMaps,
                     symbolizer: symbolizer, facts: trace.facts, warnings: trace.warnings(namingTrace: false))
        report.growing = tracker.rates().topGrowers(ReportRun.growingShown)

        switch settings.format {
        case .text:
            var options = TextReportOptions()
            options.color = settings.color
            options.maxStackFrames = settings.maxFrames
            if !isFirst { output.write("\n") }
            output.write(TextReport(options: options).render(report))
        case .json:
            output.write(try JSONReport.render(report))
        case .folded:
            output.write(FoldedReport.render(report))
        case .mtrace:
            // The export was written while replaying; say on stderr what the text would have.
            for warning in report.warnings { Terminal.writeError("leakreport: warning: \(warning)\n") }
        }
        output.flush()
        return report.summary.leaked.bytes
    }

    /// Call sites named in the report's "growing" section.
    static let growingShown = 10
}
