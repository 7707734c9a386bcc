import ArgumentParser
import Reports
import TraceFormat

/// `leakreport dump TRACE`: the header, one line per record, and how reading ended.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a trace's header and every record, one per line.")

    @Argument(help: "A trace file.")
    var trace: String

    func run() throws {
        let reader = try TraceReader(path: trace)
        let output = BufferedOutput()
        for line in Self.headerLines(reader.header) { output.write(line + "\n") }
        reader.forEachRecord { record, _ in
            output.write(Self.line(for: record) + "\n")
        }
        switch reader.endState {
        case let .complete(end)?:
            output.write("# complete: \(end.allocs) allocs, \(end.frees) frees, \(end.reallocs) reallocs, "
                         + "\(end.mappings) mapping calls, \(end.stacks) stacks, \(end.chunks) chunks, "
                         + "\(end.untraced) untraced\n")
        case let .cut(offset, reason)?:
            output.write("# incomplete: reading stopped at byte \(offset): \(reason)\n")
        case nil:
            output.write("# incomplete: reading did not finish\n")
        }
        output.flush()
    }

    /// The dump line of a record. Until the reader's `dumpLine` is merged, Swift's own
    /// description of the record value stands in (MERGE: replace with `record.dumpLine`).
    static func line(for record: TraceRecord) -> String { String(describing: record) }

    static func headerLines(_ header: TraceHeader) -> [String] {
        var lines = ["# leaktrace version \(header.version)"]
        func add(_ name: String, _ value: CustomStringConvertible?) {
            if let value { lines.append("# \(name): \(value)") }
        }
        add("program", header.program)
        if !header.arguments.isEmpty { add("argv", header.arguments.joined(separator: " ")) }
        add("pid", header.pid)
        add("ppid", header.ppid)
        add("pointer-size", header.pointerSize)
        add("page-size", header.pageSize)
        add("start-realtime-us", header.startRealtimeMicroseconds)
        add("clock", header.clock)
        add("libc-version", header.libcVersion)
        add("mmap-threshold", header.mmapThreshold)
        add("allocator", header.allocatorKind)
        add("allocator-name", header.allocatorName)
        if !header.mallocEnvironment.isEmpty { add("malloc-env", header.mallocEnvironment.joined(separator: " ")) }
        add("parent-trace", header.parentTrace)
        add("parent-fork-offset", header.parentForkOffset)
        add("stack-depth", header.stackDepth)
        add("sample-interval-ms", header.sampleIntervalMilliseconds)
        add("tracer-version", header.tracerVersion)
        return lines
    }
}
