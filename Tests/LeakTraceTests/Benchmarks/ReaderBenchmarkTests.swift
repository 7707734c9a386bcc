// Throughput of the record loop on a trace of 20 million ALLOC/FREE records.
// Skipped unless LEAKTRACE_BENCH=1; meant for a release build:
//   LEAKTRACE_BENCH=1 swift test -c release --filter ReaderBenchmarkTests
// In a release build the visitor path must reach 40 million records a second.

import Foundation
import XCTest
import TraceFormat

final class ReaderBenchmarkTests: XCTestCase {
    /// What the synthetic trace holds, to check that every record was decoded.
    struct Expected {
        var allocs = 0
        var frees = 0
        var allocatedBytes: UInt64 = 0
        var addressChecksum: UInt64 = 0
    }

    /// Counts and checksums; the work a real consumer does per record is not measured here.
    struct CountingVisitor: TraceVisitor {
        var allocs = 0
        var frees = 0
        var others = 0
        var allocatedBytes: UInt64 = 0
        var addressChecksum: UInt64 = 0

        mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                                 stack: UInt32, context: RecordContext) {
            allocs &+= 1
            allocatedBytes &+= size
            addressChecksum &+= address
        }

        mutating func visitFree(address: UInt64, context: RecordContext) {
            frees &+= 1
            addressChecksum ^= address
        }

        mutating func visitRecord(_ record: TraceRecord, context: RecordContext) { others &+= 1 }
    }

    /// Throws XCTSkip unless LEAKTRACE_BENCH=1: the benchmarks on 20 million records measure
    /// speed, which the default suite never asserts.
    static func requireOptIn() throws {
        guard ProcessInfo.processInfo.environment["LEAKTRACE_BENCH"] == "1" else {
            throw XCTSkip("set LEAKTRACE_BENCH=1 (and build with -c release) to measure")
        }
    }

    /// The analyzer benchmarks' trace: 20 million records in zstd chunks, and what it holds.
    static func analyzerBenchmarkTrace() throws -> (records: Int, bytes: [UInt8], expected: Expected) {
        try requireOptIn()
        let records = 20_000_000
        let (bytes, expected) = syntheticTrace(records: records, codec: .zstd)
        return (records, bytes, expected)
    }

    /// 1,000 stacks, then `count` ALLOC and FREE records (a FREE releases the block allocated
    /// 1,024 ALLOCs before), 150,000 records per chunk, each chunk opening with THREAD and TIME.
    static func syntheticTrace(records count: Int, codec: TraceBuilder.Codec) -> ([UInt8], Expected) {
        var random = SeededGenerator(seed: 42)
        var builder = TraceBuilder()
        var expected = Expected()
        var stacks = ChunkRecords()
        for id in 1...1000 {
            stacks.append(.stack(id: UInt32(id), parent: UInt32(id / 2), ip: 0x5555_5555_0000 + UInt64(id) * 0x40))
        }
        builder.appendChunk(stacks, codec: codec)
        var live = [UInt64](repeating: 0, count: 1024)
        var liveCount = 0, next = 0
        var written = 0
        var chunkIndex = 0
        while written < count {
            var chunk = ChunkRecords()
            chunk.append(.thread(tid: 1000 + UInt64(chunkIndex % 8)))
            chunk.append(.time(microseconds: UInt64(chunkIndex) * 1000))
            let inChunk = min(150_000, count - written)
            for _ in 0..<inChunk {
                if liveCount == live.count || (liveCount > 0 && random.next() & 1 == 0) {
                    let slot = (next + live.count - liveCount) % live.count
                    let address = live[slot]
                    liveCount -= 1
                    chunk.append(.free(address: address))
                    expected.frees += 1
                    expected.addressChecksum ^= address
                } else {
                    let address = 0x5555_5600_0000 + (random.next() % (1 << 24)) * 16
                    let size = 16 + random.next() % 2000
                    live[next] = address
                    next = (next + 1) % live.count
                    liveCount += 1
                    chunk.append(.alloc(function: .malloc, path: .heap, address: address, size: size,
                                        stack: UInt32(1 + random.next() % 1000)))
                    expected.allocs += 1
                    expected.allocatedBytes &+= size
                    expected.addressChecksum &+= address
                }
            }
            builder.appendChunk(chunk, codec: codec)
            written += inChunk
            chunkIndex += 1
        }
        return (builder.bytes, expected)
    }

    func testReaderThroughputOnTwentyMillionRecords() throws {
        try Self.requireOptIn()
        let count = 20_000_000
        for codec in [TraceBuilder.Codec.raw, .zstd] {
            let (bytes, expected) = Self.syntheticTrace(records: count, codec: codec)
            let path = try temporaryFile(bytes)
            let residentBefore = Self.residentBytes()
            let reader = try TraceReader(path: path)
            print("bench: \(codec) trace of \(count) ALLOC/FREE records, \(bytes.count) bytes")

            var best = Double.infinity, bestCPU = Double.infinity
            for _ in 0..<3 {
                var visitor = CountingVisitor()
                let started = DispatchTime.now().uptimeNanoseconds
                let startedCPU = Self.threadCPUSeconds()
                reader.visitRecords(&visitor)
                bestCPU = min(bestCPU, Self.threadCPUSeconds() - startedCPU)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                best = min(best, seconds)
                XCTAssertEqual(visitor.allocs, expected.allocs)
                XCTAssertEqual(visitor.frees, expected.frees)
                XCTAssertEqual(visitor.allocatedBytes, expected.allocatedBytes)
                XCTAssertEqual(visitor.addressChecksum, expected.addressChecksum)
                XCTAssertEqual(reader.stacks.count, 1000)
                XCTAssertEqual(reader.endState, .cut(atOffset: UInt64(bytes.count), reason: "no END record"))
            }
            // The reader's memory follows its largest chunk and the stack trie, not the trace.
            let growth = Self.residentBytes() - residentBefore
            print("bench: resident memory grew by \(growth / 1024) KiB while reading \(bytes.count / 1024) KiB")
            XCTAssertLessThan(growth, 16 << 20)
            let visitorRate = Double(count) / best
            let visitorCPURate = Double(count) / bestCPU
            print("bench: visitRecords \(codec): \(String(format: "%.3f", best)) s, "
                  + "\(String(format: "%.1f", visitorRate / 1e6)) M records/s, "
                  + "\(String(format: "%.0f", Double(bytes.count) / best / 1e6)) MB/s of trace; "
                  + "on CPU time \(String(format: "%.3f", bestCPU)) s, "
                  + "\(String(format: "%.1f", Double(count) / bestCPU / 1e6)) M records/s")

            var closureBest = Double.infinity
            for _ in 0..<2 {
                var allocs = 0, frees = 0
                let started = DispatchTime.now().uptimeNanoseconds
                reader.forEachRecord { record, _ in
                    switch record {
                    case .alloc: allocs += 1
                    case .free: frees += 1
                    default: break
                    }
                }
                closureBest = min(closureBest, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
                XCTAssertEqual(allocs, expected.allocs)
                XCTAssertEqual(frees, expected.frees)
            }
            print("bench: forEachRecord \(codec): \(String(format: "%.3f", closureBest)) s, "
                  + "\(String(format: "%.1f", Double(count) / closureBest / 1e6)) M records/s")
            #if !DEBUG
            // CPU time, not wall time: the machine's two cores are shared with other jobs, and
            // waiting for a core is not the reader's cost.
            if codec == .raw {
                XCTAssertGreaterThanOrEqual(visitorCPURate, 40e6, "visitor path below 40 M records/s")
            }
            #endif
        }
    }

    /// Resident set size of this process, from /proc/self/statm.
    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// CPU time of the calling thread: unlike wall time, not inflated when other jobs share the cores.
    static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// The same synthetic trace, small, checked on every run so the benchmark's generator and
    /// visitor stay right.
    func testSyntheticTraceDecodesExactly() throws {
        for codec in [TraceBuilder.Codec.raw, .zstd] {
            let (bytes, expected) = Self.syntheticTrace(records: 400_000, codec: codec)
            let reader = try TraceReader(bytes: bytes, name: "synthetic.lt")
            var visitor = CountingVisitor()
            reader.visitRecords(&visitor)
            XCTAssertEqual(visitor.allocs + visitor.frees, 400_000)
            XCTAssertEqual(visitor.allocs, expected.allocs)
            XCTAssertEqual(visitor.frees, expected.frees)
            XCTAssertEqual(visitor.allocatedBytes, expected.allocatedBytes)
            XCTAssertEqual(visitor.addressChecksum, expected.addressChecksum)
            // 1,000 STACK records, then THREAD and TIME in each of the 3 record chunks.
            XCTAssertEqual(visitor.others, 1000 + 3 * 2)
            XCTAssertEqual(reader.chunksRead, 4)
        }
    }
}
