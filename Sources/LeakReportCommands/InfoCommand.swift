import ArgumentParser
import LeakAnalysis
import Reports
import TraceFormat

/// `leakreport info TRACE`: what a trace holds, one `name value` line each, without replaying
/// it (scripts read the `calls` line: allocator calls in the trace, folded blocks included as an
/// allocation and a free each).
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print a trace's program, completeness and record counts, one 'name value' per line.")

    @OptionGroup var input: TraceFileArgument

    func run() throws {
        let reader = try TraceReader(path: input.trace)
        var counter = RecordCounter()
        reader.visitRecords(&counter)
        let header = reader.header
        let output = BufferedOutput()
        func line(_ name: String, _ value: CustomStringConvertible) { output.write("\(name) \(value)\n") }
        line("trace", input.trace)
        if let program = header.program { line("program", program) }
        if let pid = header.pid { line("pid", pid) }
        if let parent = header.parentTrace { line("parent-trace", parent) }
        let reading = ReadingOutcome(reader: reader)
        if reading.isComplete {
            line("complete", "yes")
            if let death = reading.diedOf { line("died-of", "\(death.name) (\(death.origin), thread \(death.thread))") }
        } else if let program = reading.endedByExec {
            line("complete", "ended by exec of \(program)")
        } else if let offset = reading.stoppedAtOffset {
            line("complete", "no (reading stopped at byte \(offset): \(reading.stopReason ?? ""))")
        } else {
            line("complete", "no")
        }
        line("bytes", reader.fileSize)
        line("duration-us", counter.lastTime)
        line("events", header.eventsMode)
        line("calls", counter.allocs + counter.frees + counter.reallocs + 2 * counter.folded - counter.foldedByRealloc)
        line("allocs", counter.allocs + counter.folded - counter.foldedReallocs)
        line("frees", counter.frees + counter.folded - counter.foldedByRealloc)
        line("folded-blocks", counter.folded)
        line("reallocs", counter.reallocs + counter.foldedReallocs)
        line("mapping-calls", counter.mappingCalls)
        line("reachability", counter.reachabilityStatus(complete: reading.isComplete))
        line("stacks", reader.stacks.count)
        line("module-snapshots", reader.moduleMaps.count)
        line("threads", counter.threads.count)
        line("records", counter.records)
        line("chunks", reader.chunksRead)
        output.flush()
    }
}

/// Counts records by kind on the reader's fast path.
struct RecordCounter: TraceVisitor {
    var allocs = 0
    var frees = 0
    var reallocs = 0
    var mappingCalls = 0
    var records = 0
    /// Blocks counted in FOLD records (an allocation and a free each, not written).
    var folded = 0
    var foldedReallocs = 0
    var foldedByRealloc = 0
    var lastTime: UInt64 = 0
    var threads: Set<UInt64> = []
    /// The first REACH record's header, and the entries of all of them.
    var reach: ReachRecord?
    var reachEntries = 0

    mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                             stack: UInt32, context: RecordContext) {
        allocs += 1
        records += 1
    }

    mutating func visitFree(address: UInt64, context: RecordContext) {
        frees += 1
        records += 1
    }

    mutating func visitReallocRelease(address: UInt64, context: RecordContext) {
        records += 1
    }

    mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                               new: UInt64, size: UInt64, stack: UInt32, context: RecordContext) {
        reallocs += 1
        records += 1
    }

    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) {
        records += 1
        switch record {
        case let .time(microseconds): lastTime = max(lastTime, microseconds)
        case let .thread(tid): threads.insert(tid)
        case .mmap, .munmap, .mremap, .brk, .sbrk: mappingCalls += 1
        case let .reach(record):
            if reach == nil { reach = record }
            reachEntries += record.entries.count
        case let .fold(summary):
            for entry in summary.entries {
                folded += Int(truncatingIfNeeded: entry.blocks)
                foldedByRealloc += Int(truncatingIfNeeded: entry.releasedByRealloc)
                if entry.function == .realloc || entry.function == .reallocarray {
                    foldedReallocs += Int(truncatingIfNeeded: entry.blocks)
                }
            }
        default: break
        }
    }
}

extension RecordCounter {
    /// `scanned at exit in 420us: 8 blocks classified, __libc_freeres called`, or why not.
    func reachabilityStatus(complete: Bool) -> String {
        guard let reach else {
            return complete ? "unknown (no REACH record: scan off with LEAKTRACE_REACHABILITY=0, or a tracer before it)"
                            : "unknown (no REACH record: the trace ends before the scan at exit)"
        }
        let flags = reach.flags
        guard flags.contains(.scanned), !flags.contains(.refused) else {
            return flags.contains(.refused) ? "not scanned (the tracer refused: out of memory or unreadable memory)"
                                            : "not scanned"
        }
        var facts = ["\(reachEntries) blocks classified"]
        facts.append(flags.contains(.libcFreeresCalled) ? "__libc_freeres called" : "__libc_freeres not called")
        if flags.contains(.gnuCxxFreeresCalled) { facts.append("__gnu_cxx::__freeres called") }
        if flags.contains(.otherThreadsRunning) { facts.append("other threads running (best effort)") }
        if flags.contains(.inFatalSignalHandler) { facts.append("in a fatal signal's handler") }
        return "scanned at exit in \(reach.scanMicroseconds)us: " + facts.joined(separator: ", ")
    }
}
