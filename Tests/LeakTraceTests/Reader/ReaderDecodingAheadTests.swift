// Reading with the decoding done ahead on a thread of its own (`visitRecordsDecodingAhead`, the
// replay's fast path) against reading as the records are decoded (`forEachRecord`, whose output
// the other reader tests check against the format's spec): the same records with the same
// contexts, the same end, and the same reader state after the pass, for whole, cut and damaged
// traces, in batches of every size down to one record, on the decoder thread and without it.

import XCTest
import TraceFormat

final class ReaderDecodingAheadTests: XCTestCase {
    /// What a pass delivered, with the reader's state after it.
    struct Pass: Equatable {
        var records: [TraceRecord] = []
        var contexts: [RecordContext] = []
        var endState: TraceEndState?
        var stackCount = 0
        var moduleSnapshots = 0
        var chunksRead = 0
        var endedByExec: String?
    }

    /// Delivered events and prefetch hints, in the order the visitor saw them.
    final class Log {
        enum Entry: Equatable { case hint(UInt64), event(UInt64) }
        var entries: [Entry] = []
    }

    struct RecordingVisitor: TraceVisitor {
        var pass = Pass()
        let log: Log

        func willVisit(address: UInt64) { log.entries.append(.hint(address)) }

        mutating func visitRecord(_ record: TraceRecord, context: RecordContext) {
            switch record {
            case let .alloc(_, _, address, _, _), let .free(address), let .reallocRelease(address):
                log.entries.append(.event(address))
            case let .realloc(_, _, _, _, new, _, _):
                log.entries.append(.event(new))
            default:
                break
            }
            pass.records.append(record)
            pass.contexts.append(context)
        }
    }

    static func finish(_ pass: inout Pass, _ reader: TraceReader) {
        pass.endState = reader.endState
        pass.stackCount = reader.stacks.count
        pass.moduleSnapshots = reader.moduleMaps.count
        pass.chunksRead = reader.chunksRead
        pass.endedByExec = reader.endedByExec
    }

    static func sequential(_ reader: TraceReader, stopAtOffset: UInt64? = nil) -> Pass {
        var pass = Pass()
        reader.forEachRecord(stopAtOffset: stopAtOffset) { record, context in
            pass.records.append(record)
            pass.contexts.append(context)
        }
        finish(&pass, reader)
        return pass
    }

    static func ahead(_ reader: TraceReader, stopAtOffset: UInt64? = nil, thread: DecodingThread, batchCapacity: Int,
                      log: Log = Log()) -> Pass {
        var visitor = RecordingVisitor(log: log)
        var progress: [UInt64] = []
        reader.visitRecordsDecodingAhead(&visitor, stopAtOffset: stopAtOffset, progress: { progress.append($0) },
                                         thread: thread, batchCapacity: batchCapacity, lookahead: 2)
        finish(&visitor.pass, reader)
        return visitor.pass
    }

    /// Both ways of reading `bytes` agree, in every batch size; returns the sequential pass.
    @discardableResult
    func assertBothWaysAgree(_ bytes: [UInt8], stopAtOffset: UInt64? = nil, capacities: [Int] = [1, 2, 7, 4096],
                             _ message: @autoclosure () -> String = "",
                             file: StaticString = #filePath, line: UInt = #line) -> Pass? {
        guard let reader = try? TraceReader(bytes: bytes, name: "ahead.lt") else { return nil }
        let expected = Self.sequential(reader, stopAtOffset: stopAtOffset)
        for (index, capacity) in capacities.enumerated() {
            let thread: DecodingThread = [.always, .never, .whenWorthIt][index % 3]
            let got = Self.ahead(reader, stopAtOffset: stopAtOffset, thread: thread, batchCapacity: capacity)
            XCTAssertEqual(got, expected, "\(message()) batches of \(capacity), thread \(thread)",
                           file: file, line: line)
        }
        return expected
    }

    func testWholeMultiChunkTracesReadTheSameInEveryBatchSize() {
        for version: UInt16 in [1, 2] {
            let sample = ReaderDamageTests.multiChunkSample(version: version)
            let pass = assertBothWaysAgree(sample.bytes, capacities: [1, 2, 3, 5, 8, 13, 64, 4096])
            XCTAssertEqual(pass?.records, sample.allRecords)
            XCTAssertEqual(pass?.chunksRead, 5)
            XCTAssertTrue(pass?.endState?.isComplete == true)
        }
    }

    func testCutAtEveryByteOffsetReadsTheSame() {
        for version: UInt16 in [1, 2] {
            let sample = ReaderDamageTests.multiChunkSample(version: version)
            for length in sample.firstChunkOffset...sample.bytes.count {
                assertBothWaysAgree(Array(sample.bytes.prefix(length)), capacities: [1, 5 + length % 7], "cut at \(length)")
            }
        }
    }

    func testRandomBitFlipsReadTheSame() {
        withWatchdog(seconds: 300, "2,000 bit-flipped reads both ways") {
            var random = SeededGenerator(seed: 20_261_207)
            for iteration in 0..<2_000 {
                var bytes = ReaderDamageTests.multiChunkSample(version: iteration % 2 == 0 ? 1 : 2).bytes
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let bit = Int.random(in: 0..<(bytes.count * 8), using: &random)
                    bytes[bit / 8] ^= 1 << UInt8(bit % 8)
                }
                self.assertBothWaysAgree(bytes, capacities: [1, 3, 4096], "iteration \(iteration)")
            }
        }
    }

    func testStoppingAtAChunkOffsetReadsTheSame() {
        let sample = ReaderDamageTests.multiChunkSample(version: 2)
        for stop in sample.offsets {
            let pass = assertBothWaysAgree(sample.bytes, stopAtOffset: UInt64(stop), "stop at \(stop)")
            let before = sample.offsets.filter { $0 < stop }.count
            XCTAssertEqual(pass?.records, Array(sample.records.prefix(before).joined()))
        }
    }

    /// A process that replaced its image: the last record of the last chunk is EXEC and there is
    /// no END. Both ways say the trace ended by exec, also when the EXEC is the only record of
    /// its batch.
    func testTraceEndingWithExecEndsByExecBothWays() {
        var builder = TraceBuilder()
        _ = builder.appendChunk([.thread(tid: 7), .time(microseconds: 5), .stack(id: 1, parent: 0, ip: 0x4000),
                                 .alloc(function: .malloc, path: .heap, address: 0x1000, size: 8, stack: 1)])
        _ = builder.appendChunk([.thread(tid: 7), .free(address: 0x1000), .exec(path: "/bin/true")], codec: .zstd)
        let pass = assertBothWaysAgree(builder.bytes, capacities: [1, 2, 3, 4096])
        XCTAssertEqual(pass?.endedByExec, "/bin/true")
        XCTAssertEqual(pass?.records.count, 7)
    }

    /// The visitor hears of each allocation event's address before it gets the event (the
    /// replay prefetches its live-table slot then).
    func testEveryHintNamesAnEventStillToCome() throws {
        let sample = ReaderDamageTests.multiChunkSample(version: 2)
        let reader = try TraceReader(bytes: sample.bytes, name: "hints.lt")
        let log = Log()
        _ = Self.ahead(reader, thread: .always, batchCapacity: 4096, log: log)
        var hints = 0
        for (position, entry) in log.entries.enumerated() {
            guard case .hint(let address) = entry else { continue }
            hints += 1
            XCTAssertTrue(log.entries[(position + 1)...].contains(.event(address)), "hint at \(position)")
        }
        let events = log.entries.filter { if case .event = $0 { return true }; return false }.count
        // Every chunk (one batch) starts with THREAD and TIME, so every event is at least two
        // records into its batch and is hinted.
        XCTAssertGreaterThan(events, 200)
        XCTAssertEqual(hints, events)
    }
}
