import ArgumentParser
import LeakAnalysis
import Reports

/// `leakreport family TRACE...`: the traces one run wrote, biggest leaker first.
struct FamilyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "family",
        abstract: "List the traces of the run that wrote TRACE (forked children, programs exec'd or spawned): pid, origin, how each ended, what each leaked.",
        discussion: """
            The family is found among the traces in TRACE's directory: a forked child's trace names \
            its parent's, the program a process exec'd has the process's pid and starts the \
            next trace of that pid, and a program started by posix_spawn or vfork has its \
            parent's pid as ppid. Several traces of one family are listed once.
            """)

    @Argument(help: "Any trace of the run (several: each family once).")
    var traces: [String] = []

    @OptionGroup var options: CommonOptions

    func validate() throws {
        guard !traces.isEmpty else { throw ValidationError("give at least one trace file") }
        try options.requireTextOrJSON()
    }

    func run() throws {
        var listed: Set<String> = []
        var documents: [FamilyDocument] = []
        for trace in traces {
            let directory = try TraceDirectory(around: trace)
            let members = directory.family(of: directory.named)
            guard let first = members.first, listed.insert(first.path).inserted else { continue }
            documents.append(try document(named: trace, members: members,
                                          reported: directory.lastImage(from: directory.named).path))
        }
        let output = BufferedOutput()
        for (index, document) in documents.enumerated() {
            if options.isJSON {
                output.write(try JSONDocument.render(document))
            } else {
                if index > 0 { output.write("\n") }
                output.write(GrowthText(color: options.wantsColor).render(document))
            }
        }
        output.flush()
    }

    /// Replays every member and counts what it leaked, as its own report would.
    private func document(named: String, members: [FamilyTrace], reported: String) throws -> FamilyDocument {
        let analyzer = LeakAnalyzer(options: try options.analysisOptions())
        let symbolizer = options.makeSymbolizer()
        defer { symbolizer.finish() }
        var warnings: [String] = []
        let entries = try loadConcurrently(members.map(\.path)) { index, trace -> FamilyMemberEntry in
            let member = members[index]
            warnings += trace.warnings(namingTrace: true)
            let report = analyzer.analyze(replay: trace.replayer, stacks: trace.reader.stacks,
                                          modules: trace.reader.moduleMaps, symbolizer: symbolizer,
                                          facts: trace.facts, warnings: [])
            let (origin, from): (String, Int?)
            switch member.origin {
            case .start: (origin, from) = ("start", nil)
            case let .fork(parent): (origin, from) = ("fork", parent)
            case let .exec(previous): (origin, from) = ("exec", previous)
            case let .spawn(parent): (origin, from) = ("spawn", parent)
            }
            return FamilyMemberEntry(trace: member.path, program: member.header.program, pid: member.header.pid,
                                     ppid: member.header.ppid, origin: origin, from: from.map { members[$0].path },
                                     outcome: trace.reading, leaked: report.summary.leaked)
        }
        return FamilyDocument(named: named, reported: reported, traces: entries,
                              warnings: warnings + symbolizer.symbolizationWarnings)
    }
}
