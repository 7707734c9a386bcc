import LeakAnalysis
import Symbolization
import TraceFormat

/// Options of the human report.
public struct TextReportOptions: Sendable {
    /// ANSI colour (only on a terminal).
    public var color = false
    /// Frames shown per stack; the rest are counted.
    public var maxStackFrames = 32
    /// Direct mappings listed.
    public var maxMappings = 10
    /// List the groups whose blocks are all still reachable at exit (otherwise summed in one line).
    public var showReachable = false
    public init() {}
}

/// The human report: a summary, then the top groups with their stacks, then direct mappings
/// and program-break growth.
public struct TextReport {
    public var options: TextReportOptions

    public init(options: TextReportOptions = TextReportOptions()) { self.options = options }

    public func render(_ report: LeakReport) -> String {
        var out = ""
        renderHeader(report, into: &out)
        renderSummary(report, into: &out)
        renderGroups(report, into: &out)
        renderGrowing(report, into: &out)
        renderAllocationSites(report, into: &out)
        renderMappings(report, into: &out)
        renderBreakGrowth(report, into: &out)
        renderWarnings(report, into: &out)
        return out
    }

    // MARK: Styling

    private func style(_ text: String, _ code: String) -> String {
        options.color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
    private func bold(_ text: String) -> String { style(text, "1") }
    private func red(_ text: String) -> String { style(text, "1;31") }
    private func yellow(_ text: String) -> String { style(text, "33") }
    private func dim(_ text: String) -> String { style(text, "2") }

    private func amount(_ amount: Amount) -> String {
        "\(formatBytes(amount.bytes)) in \(amount.blocks) \(amount.blocks == 1 ? "block" : "blocks")"
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    // MARK: Sections

    /// The report's first line, newline included: known from the trace's header alone, so a
    /// command can show it before the replay.
    public func titleLine(path: String, program: String?, pid: UInt64?) -> String {
        var line = "leakreport: \(path)"
        if let program { line += " — \(program)" }
        if let pid { line += " (pid \(pid))" }
        return bold(line) + "\n"
    }

    private func renderHeader(_ report: LeakReport, into out: inout String) {
        let trace = report.trace
        out += titleLine(path: trace.path, program: trace.program, pid: trace.pid)
        if !report.execChain.isEmpty {
            let steps = report.execChain.map { "\($0.program ?? "?") (\($0.trace))" }
            out += "  exec chain: " + (steps + ["this program"]).joined(separator: " -> ") + "\n"
        }
        out += "  \(trace.allocs) allocations, \(trace.frees) frees, \(trace.reallocs) reallocs, "
            + "\(trace.mappingCalls) mapping calls over \(formatTime(trace.lastEventUs))\n"
        if trace.events == "folded" {
            out += "  \(trace.foldedBlocks) short-lived blocks folded (counted, not written: LEAKTRACE_EVENTS=all writes them)\n"
        }
        if let parent = trace.parentTrace {
            out += trace.parentReplayed ? "  forked child: parent trace \(parent) replayed up to the fork\n"
                                        : yellow("  forked child: parent trace \(parent) not replayed") + "\n"
        }
        let outcome = trace.outcome
        if let until = outcome.replayedUntilUs {
            out += yellow("  replayed up to \(formatTime(until)) (--at): blocks live at that moment are reported") + "\n"
        } else if outcome.isComplete {
            out += "  trace complete\n"
            if let death = outcome.diedOf {
                out += red("  died of \(death.summary)") + "\n"
                for frame in death.stack.prefix(8) { out += dim("      \(frame.displayName)") + "\n" }
            }
        } else if let program = outcome.endedByExec {
            out += "  trace ends where the process called exec (\(program)); the new program writes its own trace\n"
        } else {
            let offset = outcome.stoppedAtOffset.map { " at byte \($0)" } ?? ""
            let reason = outcome.stopReason.map { " (\($0))" } ?? ""
            out += red("  TRACE INCOMPLETE: reading stopped\(offset)\(reason); this report covers the events before that point") + "\n"
        }
        if let untraced = trace.untraced, untraced > 0 {
            out += yellow("  \(untraced) allocator calls could not be traced (nested or from signal handlers)") + "\n"
        }
        out += "\n"
    }

    private func renderSummary(_ report: LeakReport, into out: inout String) {
        let summary = report.summary
        out += bold("Summary") + "\n"
        let leakedLine = summary.leaked.bytes == 0 ? "nothing" : amount(summary.leaked)
        out += "  " + pad("leaked", 22) + (summary.leaked.bytes > 0 ? red(leakedLine) : leakedLine) + "\n"
        for (path, value) in summary.byPath.nonEmpty {
            let text = path == .breakGrowth ? formatBytes(value.bytes) : amount(value)
            out += "    " + pad(path.label, 30) + text + "\n"
        }
        renderReachability(summary, into: &out)
        if summary.inherited.blocks > 0 {
            out += "  " + pad("inherited at fork", 22) + amount(summary.inherited) + "\n"
        }
        if !summary.suppressions.isEmpty || summary.suppressed.blocks > 0 {
            out += "  " + pad("suppressed", 22) + amount(summary.suppressed) + "\n"
            // A rule that matched nothing is worth a line only when the user wrote it.
            for use in summary.suppressions where use.matched.blocks > 0 || !use.origin.hasPrefix("built-in") {
                out += "    " + pad("leak:\(use.pattern)", 30) + amount(use.matched) + dim("  (\(use.origin))") + "\n"
            }
        }
        var peak = "\(formatBytes(summary.peakLiveBytes)) at \(formatTime(summary.peakLiveUs))"
        if let bound = summary.peakLiveBytesBound, bound > summary.peakLiveBytes {
            peak += " (at most \(formatBytes(bound)): folded blocks are counted, not placed in time)"
        }
        out += "  " + pad("peak live heap", 22) + peak + "\n"
        let calls = summary.allocations
        out += "  " + pad("allocation calls", 22) + "\(calls.calls) (\(formatBytes(calls.bytes))), "
            + "\(calls.temporary) temporary\n"
        renderHeapHole(summary.heapHole, into: &out)
        renderThreshold(summary.mmapThreshold, into: &out)
        if summary.unknownFrees > 0 {
            var line = "\(summary.unknownFrees) (of addresses never seen allocated: made before tracing began, or freed twice)"
            if let example = summary.unknownFreeExamples.first {
                line += "; e.g. \(hexAddress(example.address)) on thread \(example.tid) at \(formatTime(example.timeUs))"
            }
            out += "  " + pad("unknown frees", 22) + line + "\n"
        }
        if summary.duplicateAllocations > 0 {
            out += "  " + pad("duplicate allocations", 22)
                + yellow("\(summary.duplicateAllocations) allocations returned an address still live (old block replaced)") + "\n"
        }
        out += "\n"
    }

    /// The categories of the scan at exit, or why they are unknown; what the runtimes' cleanup
    /// freed.
    private func renderReachability(_ summary: LeakSummary, into out: inout String) {
        if let reachability = summary.reachability {
            let scan = reachability.scan
            // The scan takes micro- to milliseconds: seconds would round it to nothing.
            let took = scan.scanUs < 10_000 ? "\(scan.scanUs)us" : "\(scan.scanUs / 1000)ms"
            var facts = ["scan at exit took \(took)"]
            if scan.libcFreeres { facts.append("__libc_freeres called") }
            if scan.cxxFreeres { facts.append("__gnu_cxx::__freeres called") }
            if scan.otherThreadsRunning { facts.append("other threads were running (best effort)") }
            if scan.inFatalSignalHandler { facts.append("in a fatal signal's handler") }
            out += "  " + pad("reachability", 22) + facts.joined(separator: ", ") + "\n"
            let amounts = reachability.amounts
            for category in [Reachability.definitelyLost, .indirectlyLost, .possiblyLost, .stillReachable] {
                let value = amounts[category]
                let text = value.blocks == 0 ? "nothing" : amount(value)
                out += "    " + pad(category.name, 30)
                    + (category != .stillReachable && value.blocks > 0 ? red(text) : text) + "\n"
            }
            if amounts.unclassified.blocks > 0 {
                out += "    " + pad("unclassified", 30) + yellow(amount(amounts.unclassified))
                    + dim("  (allocated while the scan ran)") + "\n"
            }
        } else if let reason = summary.reachabilityUnknown {
            out += "  " + pad("reachability", 22) + yellow("unknown: \(reason)") + "\n"
        }
        if let released = summary.releasedByRuntimeCleanup {
            out += "  " + pad("freed by runtime cleanup at exit", 22) + amount(released)
                + dim("  (the C and C++ runtimes' own buffers: not leaks)") + "\n"
        }
    }

    private func renderHeapHole(_ hole: HeapHole, into out: inout String) {
        guard hole.liveHeap.blocks > 0, let start = hole.heapStart, let top = hole.top else {
            out += "  " + pad("heap hole", 22) + "none (no live heap blocks)\n"
            return
        }
        out += "  " + pad("heap hole", 22) + "\(formatBytes(hole.pinnedBytes)) free but pinned below the top "
            + "(heap \(hexAddress(start))-\(hexAddress(top)), \(amount(hole.liveHeap)) live)\n"
        for block in hole.nearTop {
            let site = block.callsite?.displayName ?? "<no stack>"
            out += "    " + dim("near top: \(hexAddress(block.address)) \(formatBytes(block.size))") + "  \(site)\n"
        }
    }

    private func renderThreshold(_ history: ThresholdHistory, into out: inout String) {
        var line = "\(formatBytes(history.initial)) at start"
        if history.final != history.initial { line += ", \(formatBytes(history.final)) at the end" }
        if !history.dynamic, let reason = history.fixedBecause { line += " (fixed by \(reason))" }
        out += "  " + pad("mmap threshold", 22) + line + "\n"
        for move in history.moves {
            let why: String
            if move.reason == "mallopt" {
                why = "mallopt(M_MMAP_THRESHOLD)"
            } else {
                why = "free of a \(move.freedBlockSize ?? 0)-byte mmapped block (chunk \(move.freedChunkSize ?? 0) bytes)"
            }
            out += "    \(formatTime(move.timeUs))  \(formatBytes(move.from)) -> \(formatBytes(move.to))  \(why)\n"
        }
        if history.movesNotKept > 0 { out += dim("    ... and \(history.movesNotKept) more moves") + "\n" }
        if history.largeBlocksFromHeap.blocks > 0 {
            out += "    " + yellow("\(amount(history.largeBlocksFromHeap)) of at least the initial threshold came from the heap (see the groups' notes)") + "\n"
        }
    }

    private func renderGroups(_ report: LeakReport, into out: inout String) {
        guard !report.groups.isEmpty else {
            if report.summary.groups == 0 { out += bold("No leaks.") + "\n\n" }
            return
        }
        guard let reachability = report.summary.reachability else {
            out += bold("Top \(report.groups.count) of \(report.summary.groups) groups by \(report.groupBy)") + "\n"
            renderGroupList(report.groups, into: &out)
            renderHiddenGroups(report, into: &out)
            return
        }
        // Groups come ordered by severity: lost first, then possibly lost, unclassified, and
        // groups with nothing but still reachable blocks.
        let sections: [(ReachabilitySeverity, String)] = [
            (.lost, "Definitely and indirectly lost"), (.possiblyLost, "Possibly lost"),
            (.unclassified, "Not classified by the scan"), (.stillReachable, "Still reachable"),
        ]
        var listed = false
        for (severity, title) in sections {
            let groups = report.groups.filter { ($0.reachability ?? ReachabilityAmounts()).severity == severity }
            guard !groups.isEmpty, severity != .stillReachable || options.showReachable else { continue }
            out += bold("\(title): \(groups.count) \(groups.count == 1 ? "group" : "groups") by \(report.groupBy)") + "\n"
            renderGroupList(groups, into: &out)
            out += "\n"
            listed = true
        }
        if !listed { out += bold("No leaks: nothing definitely, indirectly or possibly lost.") + "\n\n" }
        let reachable = reachability.amounts.stillReachable
        if reachable.blocks > 0 && !options.showReachable {
            out += "Still reachable at exit: \(amount(reachable))" + dim("  (--show-reachable lists their groups)") + "\n"
        }
        renderHiddenGroups(report, into: &out)
    }

    private func renderHiddenGroups(_ report: LeakReport, into out: inout String) {
        let hidden = report.summary.groups - report.groups.count
        if hidden > 0 { out += "\n" + dim("\(hidden) smaller groups not shown (--top, --min-bytes)") + "\n" }
        out += "\n"
    }

    private func renderGroupList(_ groups: [LeakGroup], into out: inout String) {
        for group in groups {
            out += "\n" + bold("#\(group.rank)  \(formatBytes(group.bytes)) in \(group.blocks) \(group.blocks == 1 ? "block" : "blocks")")
                + "  " + group.name + "\n"
            var facts = "sizes \(formatBytes(group.smallest))"
            if group.largest != group.smallest { facts += " .. \(formatBytes(group.largest))" }
            let paths = group.byPath.nonEmpty.map { "\($0.path.rawValue) \(formatBytes($0.amount.bytes))" }
            facts += "; " + paths.joined(separator: ", ")
            facts += "; allocated \(formatTime(group.firstAllocationUs))"
            if group.lastAllocationUs != group.firstAllocationUs { facts += " .. \(formatTime(group.lastAllocationUs))" }
            out += "    " + facts + "\n"
            if group.inherited.blocks > 0 {
                out += "    " + yellow("inherited from the parent at fork: \(amount(group.inherited))") + "\n"
            }
            if let reachability = group.reachability {
                let parts = [Reachability.definitelyLost, .indirectlyLost, .possiblyLost, .stillReachable, nil]
                    .compactMap { category -> String? in
                        let value = reachability[category]
                        return value.blocks == 0 ? nil : "\(category?.name ?? "unclassified") \(amount(value))"
                    }
                out += "    " + parts.joined(separator: ", ") + "\n"
            }
            if let note = group.thresholdNote { out += "    " + yellow("note: " + note) + "\n" }
            out += "    " + dim("stack of the biggest block (\(formatBytes(group.biggest.size)) at \(hexAddress(group.biggest.address))):") + "\n"
            renderStack(group.biggest.stack, into: &out)
        }
    }

    private func renderStack(_ stack: [SymbolizedFrame], into out: inout String) {
        if stack.isEmpty {
            out += "      <no stack recorded>\n"
            return
        }
        for (index, frame) in stack.prefix(options.maxStackFrames).enumerated() {
            let marker = frame.isInlined ? "[inlined] " : ""
            out += "      #\(index) \(marker)\(frame.displayName)\n"
        }
        if stack.count > options.maxStackFrames {
            out += dim("      ... \(stack.count - options.maxStackFrames) more frames") + "\n"
        }
    }

    /// The call sites that keep growing (their leak rates), when any do.
    private func renderGrowing(_ report: LeakReport, into out: inout String) {
        guard !report.growing.isEmpty else { return }
        let text = GrowthText(color: options.color)
        out += bold("Growing") + dim("  (least-squares slope of live bytes per call site over the run)") + "\n"
        for rate in report.growing { out += "  " + text.rateLine(rate) + "\n" }
        out += "\n"
    }

    /// The call sites that allocate most often, with their temporary allocations.
    private func renderAllocationSites(_ report: LeakReport, into out: inout String) {
        guard !report.allocationSites.isEmpty else { return }
        out += bold("Most allocation calls by \(report.groupBy)")
            + dim("  (temporary: freed by the same thread with no allocation or free in between)") + "\n"
        for site in report.allocationSites {
            let calls = "\(site.calls) \(site.calls == 1 ? "call" : "calls")"
            out += "  " + pad("#\(site.rank)", 4) + pad(calls, 16) + pad(formatBytes(site.bytes), 12)
                + pad("\(site.temporary) temporary", 18) + site.name + "\n"
        }
        out += "\n"
    }

    private func renderMappings(_ report: LeakReport, into out: inout String) {
        guard !report.mappings.isEmpty else { return }
        out += bold("Direct mappings still mapped") + "\n"
        for mapping in report.mappings.prefix(options.maxMappings) {
            var line = "  \(hexAddress(mapping.start))  \(pad(formatBytes(mapping.size), 10)) \(mapping.kind.rawValue)"
            if let file = mapping.file { line += " \(file)" }
            if mapping.inherited { line += " (inherited)" }
            if let reachability = mapping.reachability { line += " " + reachability }
            line += "  " + (mapping.callsite?.displayName ?? "<no stack>")
            out += line + "\n"
        }
        if report.mappings.count > options.maxMappings {
            out += dim("  ... \(report.mappings.count - options.maxMappings) more") + "\n"
        }
        out += "\n"
    }

    private func renderBreakGrowth(_ report: LeakReport, into out: inout String) {
        guard !report.breakGrowth.isEmpty else { return }
        out += bold("Program break moved by the program (brk/sbrk)") + "\n"
        for site in report.breakGrowth {
            out += "  \(pad(formatSignedBytes(site.netBytes), 12)) in \(site.calls) \(site.calls == 1 ? "call" : "calls")  "
                + (site.callsite?.displayName ?? "<no stack>") + "\n"
        }
        out += "\n"
    }

    private func renderWarnings(_ report: LeakReport, into out: inout String) {
        for warning in report.warnings { out += yellow("warning: \(warning)") + "\n" }
    }
}
