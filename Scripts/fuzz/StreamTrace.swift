// Streams a trace the way an analyzer does (the visitor fast path, with a replay of the live
// set: address -> size and stack) and prints what it read and the process's peak resident
// memory. Scripts/hazards.sh runs it on traces of 5 and 50 million events: memory must follow
// the live blocks and the distinct stacks, not the number of events.
//   stream-trace TRACE

#if canImport(Glibc)
import Glibc
#endif

struct LiveSetReplay: TraceVisitor {
    var live: [UInt64: (size: UInt64, stack: UInt32)] = [:]
    var released: [UInt64: (size: UInt64, stack: UInt32)] = [:]
    var events = 0
    var records = 0

    mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64, stack: UInt32,
                             context: RecordContext) {
        events += 1
        live[address] = (size, stack)
    }

    mutating func visitFree(address: UInt64, context: RecordContext) {
        events += 1
        live[address] = nil
    }

    mutating func visitReallocRelease(address: UInt64, context: RecordContext) {
        records += 1
        released[address] = live.removeValue(forKey: address)
    }

    mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64, new: UInt64,
                               size: UInt64, stack: UInt32, context: RecordContext) {
        events += 1
        let previous = old == 0 ? nil : released.removeValue(forKey: old)
        if status == .failed, let previous { live[old] = previous } else if new != 0 { live[new] = (size, stack) }
    }

    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) { records += 1 }
}

@main
struct StreamTrace {
    static func main() {
        guard CommandLine.arguments.count == 2 else {
            print("usage: stream-trace TRACE")
            exit(2)
        }
        do {
            let reader = try TraceReader(path: CommandLine.arguments[1])
            var replay = LiveSetReplay()
            reader.visitRecords(&replay)
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let leaked = replay.live.values.reduce(UInt64(0)) { $0 + $1.size }
            let ending: String
            switch reader.endState {
            case .complete?: ending = "complete"
            case let .cut(offset, reason)?: ending = "cut at \(offset): \(reason)"
            case nil: ending = "unknown"
            }
            print("events=\(replay.events) other-records=\(replay.records) stacks=\(reader.stacks.count) "
                  + "live-blocks=\(replay.live.count) live-bytes=\(leaked) bytes=\(reader.fileSize) "
                  + "peak-rss-kib=\(usage.ru_maxrss) end=\(ending)")
        } catch {
            print("\(error)")
            exit(1)
        }
    }
}
