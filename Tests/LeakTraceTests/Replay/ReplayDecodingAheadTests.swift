// The replay's fast path (no limit, no hook: the reader decodes ahead on a thread of its own,
// counts allocation calls there, and the live table is prefetched from the batch) against the
// replay that applies each record as it is decoded (a hook that does nothing): the same live
// blocks, counters, peaks, allocation calls and temporaries, examples and records seen, on a
// trace of two threads with every kind of realloc, duplicate and unknown releases, FOLD records
// and marks, in chunks of a few hundred records each.

import XCTest
import TraceFormat
@testable import LiveSet

final class ReplayDecodingAheadTests: XCTestCase {
    /// Thirty chunks of about 400 records, the even ones compressed.
    static func churnTrace(version: UInt16, seed: UInt64) -> [UInt8] {
        var random = SeededGenerator(seed: seed)
        var header = TraceBuilder.sampleHeader
        if version >= 2 {
            header.events = 1
            header.foldWindow = 64
        }
        var builder = TraceBuilder(header: header, version: version)
        var live: [UInt64] = []
        var stacks: UInt32 = 0
        var nextAddress: UInt64 = 0x5555_0000_0010
        var time: UInt64 = 1000
        func newAddress() -> UInt64 {
            // Mostly fresh addresses; now and then one just freed (allocators reuse them).
            nextAddress += 16 * UInt64.random(in: 1...40, using: &random)
            return nextAddress
        }
        for chunk in 0..<30 {
            var records: [TraceRecord] = [.thread(tid: 100), .time(microseconds: time)]
            if chunk == 0 { records.append(.modules(generation: 1, modules: [SampleRecords.programModule])) }
            for _ in 0..<4 {
                stacks += 1
                records.append(.stack(id: stacks, parent: stacks == 1 ? 0 : UInt32.random(in: 0..<stacks, using: &random),
                                      ip: 0x5555_5555_5000 + UInt64.random(in: 0..<0x2000, using: &random)))
            }
            for _ in 0..<380 {
                let stack = UInt32.random(in: 1...stacks, using: &random)
                switch UInt64.random(in: 0..<100, using: &random) {
                case 0..<40:
                    let address = newAddress()
                    live.append(address)
                    let large = UInt64.random(in: 0..<50, using: &random) == 0
                    records.append(.alloc(function: large ? .calloc : .malloc, path: large ? .mmapThreshold : .heap,
                                          address: address,
                                          size: large ? 200_000 : UInt64.random(in: 1...4000, using: &random),
                                          stack: stack))
                case 40..<75 where !live.isEmpty:
                    let index = Int.random(in: 0..<live.count, using: &random)
                    live.swapAt(index, live.count - 1)
                    records.append(.free(address: live.removeLast()))
                case 75..<80:
                    records.append(.free(address: 0x7777_0000_0000 + 16 * UInt64.random(in: 0..<50, using: &random)))
                case 80..<82 where !live.isEmpty:
                    // An allocation at an address still live (a free the trace lost).
                    records.append(.alloc(function: .malloc, path: .heap, address: live.randomElement(using: &random)!,
                                          size: 24, stack: stack))
                case 82..<95 where !live.isEmpty:
                    let index = Int.random(in: 0..<live.count, using: &random)
                    let old = live[index]
                    records.append(.reallocRelease(address: old))
                    switch UInt64.random(in: 0..<6, using: &random) {
                    case 0:
                        records.append(.realloc(status: .failed, path: .heap, isReallocarray: false, old: old, new: 0,
                                                size: 1 << 40, stack: stack))
                    case 1:
                        live.remove(at: index)
                        records.append(.realloc(status: .freed, path: .heap, isReallocarray: false, old: old, new: 0,
                                                size: 0, stack: stack))
                    default:
                        let new = Bool.random(using: &random) ? old : newAddress()
                        live[index] = new
                        records.append(.realloc(status: .movedOrResized, path: .heap, isReallocarray: Bool.random(using: &random),
                                                old: old, new: new, size: UInt64.random(in: 1...9000, using: &random),
                                                stack: stack))
                    }
                case 95..<97:
                    records.append(.thread(tid: Bool.random(using: &random) ? 100 : 101))
                default:
                    time += UInt64.random(in: 1...3000, using: &random)
                    records.append(.time(microseconds: time))
                }
            }
            if version >= 2 {
                records.append(.fold(FoldSummary(firstMicroseconds: time, lastMicroseconds: time + 5,
                                                 peakBytes: UInt64.random(in: 0...100_000, using: &random),
                                                 lowestHeapAddress: 0x5555_0000_0000,
                                                 entries: [FoldEntry(stack: 1, function: .malloc, path: .heap,
                                                                     blocks: 7, bytes: 700, temporary: 3)])))
            }
            records.append(.mark(name: "chunk \(chunk)", source: 0))
            if chunk == 29 {
                records.append(.end(TraceEnd(allocs: 0, frees: 0, reallocs: 0, mappings: 0, stacks: UInt64(stacks),
                                             chunks: 29, untraced: 0)))
            }
            _ = builder.appendChunk(records, codec: chunk % 2 == 0 ? .zstd : .raw)
        }
        return builder.bytes
    }

    /// What a replay left, in comparable form.
    struct Outcome: Equatable {
        var live: [LiveBlock]
        var totalBytes: UInt64
        var counters: ReplayCounters
        var peak: UInt64
        var peakTime: UInt64
        var peakBound: UInt64?
        var calls: [String]
        var lowestHeap: UInt64?
        var unknownReleases: [UnknownRelease]
        var duplicates: [LiveBlock]
        var snapshotTimes: [UInt64]
        var lastTime: UInt64
        var seen: [String]
        var endState: TraceEndState?
    }

    static func outcome(_ replayer: Replayer, seen: [String], endState: TraceEndState?) -> Outcome {
        var calls: [String] = []
        replayer.allocationCalls.forEach { stack, count in
            calls.append("\(stack): \(count.calls) calls \(count.bytes) bytes \(count.temporary) temporary")
        }
        return Outcome(live: replayer.live.allBlocks.sorted { $0.address < $1.address },
                       totalBytes: replayer.live.totalBytes, counters: replayer.counters,
                       peak: replayer.peakLiveBytes, peakTime: replayer.peakLiveTime,
                       peakBound: replayer.peakLiveBytesBound, calls: calls,
                       lowestHeap: replayer.lowestHeapAddress, unknownReleases: replayer.unknownReleaseExamples,
                       duplicates: replayer.duplicateAllocExamples, snapshotTimes: replayer.moduleSnapshotTimes,
                       lastTime: replayer.lastTime, seen: seen, endState: endState)
    }

    func replayBothWays(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> Outcome {
        let reader = try TraceReader(bytes: bytes, name: "churn.lt")
        var outcomes: [Outcome] = []
        for thread in [DecodingThread.always, .never] {
            var ahead = Replayer(header: reader.header)
            var seenAhead: [String] = []
            let aheadEnd = ahead.replay(reader, watcher: { record, context, _ in
                seenAhead.append("\(context.tid) \(context.time) \(record)")
            }, decodingThread: thread).endState
            outcomes.append(Self.outcome(ahead, seen: seenAhead, endState: aheadEnd))
        }
        var sequential = Replayer(header: reader.header)
        var seenSequential: [String] = []
        let sequentialEnd = sequential.replay(reader, hook: { record, context, _ in
            if case .stack = record { return }
            seenSequential.append("\(context.tid) \(context.time) \(record)")
        }).endState
        let expected = Self.outcome(sequential, seen: seenSequential, endState: sequentialEnd)
        XCTAssertEqual(outcomes[0], expected, "decoded on a thread of its own", file: file, line: line)
        XCTAssertEqual(outcomes[1], expected, "decoded in turn", file: file, line: line)
        return expected
    }

    func testTheFastPathReplaysAsTheRecordByRecordOne() throws {
        for version: UInt16 in [1, 2] {
            for seed: UInt64 in [1, 2, 3] {
                let outcome = try replayBothWays(Self.churnTrace(version: version, seed: seed))
                // The trace exercises what it is meant to.
                XCTAssertTrue(outcome.endState?.isComplete == true)
                XCTAssertGreaterThan(outcome.counters.allocs, 3000)
                XCTAssertGreaterThan(outcome.counters.unknownReleases, 100)
                XCTAssertGreaterThan(outcome.counters.duplicateAllocs, 20)
                XCTAssertGreaterThan(outcome.counters.failedReallocs, 50)
                XCTAssertGreaterThan(outcome.live.count, 150)
                XCTAssertTrue(outcome.calls.contains { !$0.hasSuffix(" 0 temporary") })
                XCTAssertEqual(outcome.counters.foldRecords, version == 2 ? 30 : 0)
                XCTAssertEqual(outcome.seen.filter { $0.contains("mark") }.count, 30)
            }
        }
    }

    func testACutTraceReplaysTheSameBothWays() throws {
        let bytes = Self.churnTrace(version: 2, seed: 9)
        for length in stride(from: bytes.count / 3, to: bytes.count, by: bytes.count / 7) {
            let outcome = try replayBothWays(Array(bytes.prefix(length)))
            XCTAssertFalse(outcome.endState?.isComplete ?? true)
        }
    }
}
