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
            help: ArgumentHelp("Exit with status 3 when unsuppressed leaked bytes exceed BYTES: definitely and indirectly lost when the trace knows reachability at exit, else everything not freed (bare flag: 0).",
                               valueName: "BYTES"))
    var failOnLeak: String?

    @Option(name: .customLong("fail-on-unfreed"),
            help: ArgumentHelp("Exit with status 3 when unsuppressed bytes not freed at the end (whatever their reachability) exceed BYTES (bare flag: 0).",
                               valueName: "BYTES"))
    var failOnUnfreed: String?

    @Flag(name: .customLong("show-reachable"),
          help: "List the groups whose blocks are all still reachable at exit (the text report otherwise sums them in one line).")
    var showReachable = false

    @Option(name: .long, help: "Report what was live at this time (2.5s, 1500ms, 300us) or at the first MARK (mark:NAME).")
    var at: String?

    @Option(name: .customLong("max-frames"), help: "Frames shown per stack in the text report.")
    var maxFrames: Int = 32

    @Flag(name: .long, help: "With several traces: also merge them by call site and add up their totals.")
    var merge = false

    @Flag(name: .long, help: "Report every trace of each TRACE's family: the traces its run wrote (forked children, programs exec'd or spawned).")
    var family = false

    mutating func validate() throws {
        guard !traces.isEmpty else { throw ValidationError("give at least one trace file") }
        guard let format = OutputFormat(rawValue: options.format) else {
            throw ValidationError("unknown format '\(options.format)' (text, json, mtrace, folded, html)")
        }
        if merge && (format == .mtrace || format == .folded || format == .html) {
            throw ValidationError("--merge takes --format text or json")
        }
        if (format == .mtrace || format == .html || (format == .json && !merge)) && (traces.count > 1 || family) {
            throw ValidationError("--format \(format.rawValue) takes one trace at a time"
                                  + (format == .json && family ? " (with --family, add --merge)" : ""))
        }
        guard GroupBy(rawValue: groupBy) != nil else {
            throw ValidationError("unknown grouping '\(groupBy)' (callsite, stack, function, file, module)")
        }
        guard maxFrames >= 0 else { throw ValidationError("--max-frames must be 0 or more") }
    }

    func run() throws {
        let settings = try ReportSettings(command: self)
        let reported = try tracesToReport()
        var counted = LeakedBytes()
        if merge {
            counted = try MergeRun(settings: settings, paths: reported.map(\.path)).run()
        } else {
            for (index, trace) in reported.enumerated() {
                counted.add(try ReportRun(settings: settings, path: trace.path, execChain: trace.execChain)
                    .run(isFirst: index == 0))
            }
        }
        if let limit = settings.failOnLeakAbove, counted.leaks > limit { throw ExitCode(LeakReportCLI.exitLeaksFound) }
        if let limit = settings.failOnUnfreedAbove, counted.unfreed > limit {
            throw ExitCode(LeakReportCLI.exitLeaksFound)
        }
    }
}

/// What the exit-status options count, added up over the traces reported.
struct LeakedBytes {
    /// `--fail-on-leak`: definitely and indirectly lost bytes of a trace whose reachability is
    /// known; every unsuppressed byte not freed of one whose reachability is unknown.
    var leaks: UInt64 = 0
    /// `--fail-on-unfreed`: every unsuppressed byte not freed (brk growth included).
    var unfreed: UInt64 = 0

    init() {}

    init(_ report: LeakReport) {
        unfreed = report.summary.leaked.bytes
        leaks = report.summary.reachability?.amounts.lost.bytes ?? unfreed
    }

    mutating func add(_ other: LeakedBytes) {
        leaks &+= other.leaks
        unfreed &+= other.unfreed
    }
}

extension ReportCommand {
    /// The traces named, or with --family every trace of their families; one trace alone that
    /// ended by exec becomes the program its process ran last (the exec chain is followed).
    func tracesToReport() throws -> [(path: String, execChain: [ExecStep])] {
        if family {
            var paths: [String] = []
            for trace in traces {
                let directory = try TraceDirectory(around: trace)
                for member in directory.family(of: directory.named) where !paths.contains(member.path) {
                    paths.append(member.path)
                }
            }
            return paths.map { ($0, []) }
        }
        guard traces.count == 1, !merge, !options.noFollowExec else { return traces.map { ($0, []) } }
        let directory = try TraceDirectory(around: traces[0], laterOnly: true)
        return [directory.lastImage(from: directory.named)]
    }
}

/// The report command's options, checked and converted.
struct ReportSettings {
    var common: CommonOptions
    var format: OutputFormat
    var analysis: AnalysisOptions
    var failOnLeakAbove: UInt64?
    var failOnUnfreedAbove: UInt64?
    var showReachable: Bool
    var limit: ReplayLimit?
    var color: Bool
    var maxFrames: Int

    init(command: ReportCommand) throws {
        common = command.options
        format = OutputFormat(rawValue: common.format) ?? .text
        analysis = try common.analysisOptions()
        analysis.groupBy = GroupBy(rawValue: command.groupBy) ?? .callsite
        analysis.minBytes = try command.minBytes.map(ValueParsing.bytes) ?? 0
        analysis.collectStacks = format == .folded || format == .html
        failOnLeakAbove = try command.failOnLeak.map(ValueParsing.bytes)
        failOnUnfreedAbove = try command.failOnUnfreed.map(ValueParsing.bytes)
        showReachable = command.showReachable
        limit = try command.at.map(ValueParsing.replayLimit)
        color = common.wantsColor
        maxFrames = command.maxFrames
    }

    var textOptions: TextReportOptions {
        var options = TextReportOptions()
        options.color = color
        options.maxStackFrames = maxFrames
        options.showReachable = showReachable
        return options
    }
}

/// Reporting one trace.
struct ReportRun {
    let settings: ReportSettings
    let path: String
    /// The programs the process ran before this trace's, when the report followed an exec chain.
    var execChain: [ExecStep] = []

    /// Writes the report and returns what the exit-status options count.
    func run(isFirst: Bool) throws -> LeakedBytes {
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

        // On a terminal, the report's first line comes before the replay (it needs only the
        // header), and the progress bar stays up until the report is ready.
        var title: String?
        if settings.format == .text && Terminal.isTerminal(1) {
            let header = trace.reader.header
            let line = TextReport(options: settings.textOptions).titleLine(path: path, program: header.program,
                                                                           pid: header.pid)
            output.write(isFirst ? line : "\n" + line)
            output.flush()
            title = line
        }
        let bar = trace.progressBar(enabled: settings.common.progress)
        defer { bar.finish() }
        let symbolizer: FrameSymbolizer = bar.enabled
            ? CountingSymbolizer(settings.common.makeSymbolizer(), bar: bar) : settings.common.makeSymbolizer()

        defer { symbolizer.finish() }
        // The growth tracker rides along the replay to find the call sites that keep growing.
        let tracker = trace.makeTracker(symbolizer: symbolizer, options: settings.analysis)
        try trace.replay(tracking: tracker, limit: settings.limit, bar: bar)
        trace.replayer.observer = nil
        export?.finish()
        bar.beginPhase("grouping and symbolizing")

        var report = LeakAnalyzer(options: settings.analysis)
            .analyze(replay: trace.replayer, stacks: trace.reader.stacks, modules: trace.reader.moduleMaps,
                     symbolizer: symbolizer, facts: trace.facts, warnings: trace.warnings(namingTrace: false),
                     sharing: tracker)
        report.growing = tracker.topGrowers(ReportRun.growingShown)
        report.execChain = execChain

        bar.finish()
        switch settings.format {
        case .text:
            let text = TextReport(options: settings.textOptions).render(report)
            if let title, text.utf8.starts(with: title.utf8) {
                output.write(String(text.utf8.dropFirst(title.utf8.count))!)
            } else {
                if !isFirst { output.write("\n") }
                output.write(text)
            }
        case .json:
            output.write(try JSONDocument.render(report))
        case .folded:
            output.write(FoldedReport.render(report))
        case .html:
            let data = HtmlReportData(report: report, timeline: tracker.timeline(of: trace.replayer), marks: tracker.marks)
            output.write(try HtmlReport.render(data))
        case .mtrace:
            // The export was written while replaying; say on stderr what the text would have.
            for warning in report.warnings { Terminal.writeError("leakreport: warning: \(warning)\n") }
        }
        output.flush()
        return LeakedBytes(report)
    }

    /// Call sites named in the report's "growing" section.
    static let growingShown = 10
}

/// Passes every question to another symbolizer and counts them on the progress bar (only
/// when the bar is drawn).
final class CountingSymbolizer: FrameSymbolizer {
    private let base: FrameSymbolizer
    private let bar: ProgressBar

    init(_ base: FrameSymbolizer, bar: ProgressBar) {
        self.base = base
        self.bar = bar
    }

    func resolve(address: UInt64, module: Module?) -> [SymbolizedFrame] {
        bar.frameLookedUp()
        return base.resolve(address: address, module: module)
    }

    var symbolizationWarnings: [String] { base.symbolizationWarnings }
    func finish() { base.finish() }
}
