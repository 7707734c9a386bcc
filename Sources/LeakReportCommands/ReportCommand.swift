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

    @OptionGroup var options: CommonOptions

    @Option(name: .customLong("min-bytes"), help: "Leave out groups smaller than this (e.g. 4096, 64K, 1MiB).")
    var minBytes: String?

    @Option(name: .customLong("group-by"), help: "Group by callsite, stack, function, file or module.")
    var groupBy: String = "callsite"

    @Option(name: .customLong("fail-on-leak"),
            help: ArgumentHelp("Exit with status 3 when unsuppressed leaked bytes exceed BYTES (bare flag: 0).",
                               valueName: "BYTES"))
    var failOnLeak: String?

    @Option(name: .long, help: "Report what was live at this time (2.5s, 1500ms, 300us) or at the first MARK (mark:NAME).")
    var at: String?

    @Option(name: .customLong("max-frames"), help: "Frames shown per stack in the text report.")
    var maxFrames: Int = 32

    @Flag(name: .long, help: "With several traces: also merge them by call site and add up their totals.")
    var merge = false

    mutating func validate() throws {
        guard !traces.isEmpty else { throw ValidationError("give at least one trace file") }
        guard let format = OutputFormat(rawValue: options.format) else {
            throw ValidationError("unknown format '\(options.format)' (text, json, mtrace, folded)")
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
        guard maxFrames >= 0 else { throw ValidationError("--max-frames must be 0 or more") }
    }

    func run() throws {
        let settings = try ReportSettings(command: self)
        if merge {
            let merged = try MergeRun(settings: settings, paths: traces).run()
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
    var common: CommonOptions
    var format: OutputFormat
    var analysis: AnalysisOptions
    var failOnLeakAbove: UInt64?
    var limit: ReplayLimit?
    var color: Bool
    var maxFrames: Int

    init(command: ReportCommand) throws {
        common = command.options
        format = OutputFormat(rawValue: common.format) ?? .text
        analysis = try common.analysisOptions()
        analysis.groupBy = GroupBy(rawValue: command.groupBy) ?? .callsite
        analysis.minBytes = try command.minBytes.map(ValueParsing.bytes) ?? 0
        analysis.collectStacks = format == .folded
        failOnLeakAbove = try command.failOnLeak.map(ValueParsing.bytes)
        limit = try command.at.map(ValueParsing.replayLimit)
        color = common.wantsColor
        maxFrames = command.maxFrames
    }

    var textOptions: TextReportOptions {
        var options = TextReportOptions()
        options.color = color
        options.maxStackFrames = maxFrames
        return options
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

        let symbolizer = settings.common.makeSymbolizer()

        defer { symbolizer.finish() }
        // The growth tracker rides along the replay to find the call sites that keep growing.
        let tracker = trace.makeTracker(symbolizer: symbolizer, options: settings.analysis)
        try trace.replay(tracking: tracker, limit: settings.limit, progress: settings.common.progress)
        trace.replayer.observer = nil
        export?.finish()

        var report = LeakAnalyzer(options: settings.analysis)
            .analyze(replay: trace.replayer, stacks: trace.reader.stacks, modules: trace.reader.moduleMaps,
                     symbolizer: symbolizer, facts: trace.facts, warnings: trace.warnings(namingTrace: false))
        report.growing = tracker.rates().topGrowers(ReportRun.growingShown)

        switch settings.format {
        case .text:
            if !isFirst { output.write("\n") }
            output.write(TextReport(options: settings.textOptions).render(report))
        case .json:
            output.write(try JSONDocument.render(report))
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
