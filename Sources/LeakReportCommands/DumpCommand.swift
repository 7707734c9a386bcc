import ArgumentParser
import Reports
import TraceFormat

/// `leakreport dump TRACE`: the header, one line per record, and how reading ended.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a trace's header and every record, one per line.")

    @OptionGroup var input: TraceFileArgument

    func run() throws {
        let reader = try TraceReader(path: input.trace)
        let output = BufferedOutput()
        for line in reader.header.dumpLines { output.write(line + "\n") }
        reader.forEachRecord { record, _ in
            output.write(record.dumpLine + "\n")
        }
        switch reader.endState {
        case let .complete(end)?:
            output.write("# complete: \(end.allocs) allocs, \(end.frees) frees, \(end.reallocs) reallocs, "
                         + "\(end.mappings) mapping calls, \(end.stacks) stacks, \(end.chunks) chunks, "
                         + "\(end.untraced) untraced\n")
        case .cut? where reader.endedByExec != nil:
            output.write("# ended by exec of \(reader.endedByExec ?? ""): the new program writes its own trace\n")
        case let .cut(offset, reason)?:
            output.write("# incomplete: reading stopped at byte \(offset): \(reason)\n")
        case nil:
            output.write("# incomplete: reading did not finish\n")
        }
        output.flush()
    }

}
