import LeakAnalysis

// `leakreport family TRACE`: the traces one run wrote (forked children, programs exec'd or
// spawned), each with how it ended and what it leaked, biggest leaker first. JSON:
// docs/report-json.md, kind "family".

/// One trace of a family. Its stored properties are its JSON.
public struct FamilyMemberEntry: Encodable, Equatable {
    public var trace: String
    public var program: String?
    public var pid: UInt64?
    public var ppid: UInt64?
    /// `start` (the run's first process), `fork`, `exec` or `spawn`.
    public var origin: String
    /// For a fork child or a spawned program, its parent's trace; for an exec'd program, the
    /// trace of the image that exec'd it.
    public var from: String?
    public var outcome: ReadingOutcome
    /// How the trace ended, in words: `exit`, `exec PATH`, `cut at byte N (reason)`.
    public var ended: String
    /// Leaked and not suppressed, as the trace's own report counts it.
    public var leaked: Amount

    public init(trace: String, program: String?, pid: UInt64?, ppid: UInt64?, origin: String, from: String?,
                outcome: ReadingOutcome, leaked: Amount) {
        self.trace = trace; self.program = program; self.pid = pid; self.ppid = ppid
        self.origin = origin; self.from = from; self.outcome = outcome
        ended = outcome.endedInWords
        self.leaked = leaked
    }
}

/// `leakreport family TRACE`: one run's traces, biggest leaker first.
public struct FamilyDocument: Encodable {
    public let schemaVersion = LeakReport.schemaVersion
    public let kind = "family"
    /// The trace the family was asked for.
    public var named: String
    /// The last program of the named trace's exec chain: what `leakreport TRACE` reports.
    public var reported: String
    /// Biggest leaked bytes first; ties in the order the processes started.
    public var traces: [FamilyMemberEntry]
    public var leaked: Amount
    public var warnings: [String]

    public init(named: String, reported: String, traces: [FamilyMemberEntry], warnings: [String]) {
        self.named = named
        self.reported = reported
        self.traces = traces.enumerated().sorted {
            ($0.element.leaked.bytes, $1.offset) > ($1.element.leaked.bytes, $0.offset)
        }.map(\.element)
        leaked = traces.reduce(Amount()) { $0 + $1.leaked }
        self.warnings = warnings
    }
}

extension ReadingOutcome {
    /// How the trace ended, in a few words.
    public var endedInWords: String {
        if isComplete { return diedOf.map { "died of \($0.name)" } ?? "exit" }
        if let program = endedByExec { return "exec \(program)" }
        if let until = replayedUntilUs { return "replayed to \(formatTime(until))" }
        let offset = stoppedAtOffset.map { " at byte \($0)" } ?? ""
        return "cut\(offset)" + (stopReason.map { " (\($0))" } ?? "")
    }
}

extension GrowthText {
    /// The family as a table: leaked, pid, where it came from, how it ended, program, trace.
    public func render(_ document: FamilyDocument) -> String {
        let processes = Set(document.traces.compactMap(\.pid)).count
        let traces = document.traces.count
        var out = bold("family of \(document.named): \(traces) \(traces == 1 ? "trace" : "traces"), \(processes) "
                       + "\(processes == 1 ? "process" : "processes"), leaked \(formatBytes(document.leaked.bytes)) in "
                       + "\(document.leaked.blocks) blocks") + "\n"
        let rows = document.traces.map { entry -> [String] in
            let came: String
            switch entry.origin {
            case "fork": came = "fork of \(entry.ppid.map(String.init) ?? "?")"
            case "spawn": came = "spawned by \(entry.ppid.map(String.init) ?? "?")"
            case "exec": came = "exec'd"
            default: came = "start"
            }
            return [formatBytes(entry.leaked.bytes), "\(entry.leaked.blocks)", entry.pid.map(String.init) ?? "?",
                    came, entry.ended, entry.program ?? "?", entry.trace]
        }
        let header = ["leaked", "blocks", "pid", "from", "ended", "program", "trace"]
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            "  " + cells.enumerated().map { column, cell in
                column == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }.joined() + "\n"
        }
        out += dim(line(header))
        for row in rows { out += line(row) }
        if document.reported != document.named {
            out += "\n  leakreport \(document.named) reports \(document.reported), the program its exec chain ended in\n"
        }
        renderWarnings(document.warnings, into: &out)
        return out
    }
}
