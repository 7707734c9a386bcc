import LeakAnalysis
import Reports
import TraceFormat

// The report command's `--merge` (`leakreport T1 T2 ... --merge`): several traces (a fork
// server's children, the stages of a pipeline) reported as one, by call site.

/// Reports several traces merged by site key; returns what --fail-on-leak and --fail-on-unfreed
/// count, over all the traces.
struct MergeRun {
    let settings: ReportSettings
    let paths: [String]

    func run() throws -> LeakedBytes {
        let symbolizer = settings.common.makeSymbolizer()
        defer { symbolizer.finish() }
        let analyzer = LeakAnalyzer(options: settings.analysis)
        // Each trace is analyzed as soon as it is replayed, in order, while later ones still
        // replay; nothing is written until every trace has been read.
        let analyzed = try loadConcurrently(paths) { _, trace in
            let warnings = trace.warnings(namingTrace: true)
            let (report, sites) = analyzer.analyzeWithSites(
                replay: trace.replayer, stacks: trace.reader.stacks, modules: trace.reader.moduleMaps,
                symbolizer: symbolizer, facts: trace.facts, warnings: warnings)
            return (report: report, sites: sites, facts: trace.facts, warnings: warnings)
        }
        var merged = SiteTotals()
        var entries: [(facts: TraceFacts, leaked: Amount)] = []
        var warnings: [String] = []
        var counted = LeakedBytes()
        let output = BufferedOutput()
        for (index, trace) in analyzed.enumerated() {
            merged.merge(trace.sites)
            entries.append((trace.facts, trace.report.summary.leaked))
            counted.add(LeakedBytes(trace.report))
            warnings += trace.warnings
            // Text: each trace's own report first, then the merge. JSON: one document.
            if settings.format == .text {
                if index > 0 { output.write("\n") }
                output.write(TextReport(options: settings.textOptions).render(trace.report))
            }
        }
        warnings += symbolizer.symbolizationWarnings
        let document = MergeDocument(traces: entries, merged: merged, top: settings.analysis.top, warnings: warnings)
        if settings.format == .json {
            output.write(try JSONDocument.render(document))
        } else {
            output.write("\n" + GrowthText(color: settings.color).render(document))
        }
        output.flush()
        counted.unfreed = merged.total.bytes
        return counted
    }
}
