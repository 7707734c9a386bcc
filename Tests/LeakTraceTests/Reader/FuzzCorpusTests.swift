// The fuzz corpus (Tests/LeakTraceTests/Fixtures/corpus, made by Scripts/fuzz/make-corpus.sh)
// replayed as a regular test: every trace reads, and what it says agrees with the tracer's own
// END tally; a trace without END is explained (an exec, or a kill).

import Foundation
import XCTest
import TraceFormat

final class FuzzCorpusTests: XCTestCase {
    func testEveryCorpusTraceReadsAndAgreesWithItsEndRecord() throws {
        let corpus = try FuzzKit.corpus()
        XCTAssertGreaterThanOrEqual(corpus.count, 10)
        for (name, bytes) in corpus {
            let outcome = FuzzKit.execute(bytes, keepRecords: true)
            XCTAssertEqual(outcome.violations, [], name)
            XCTAssertNil(outcome.refusal, name)
            var counts: [String: UInt64] = [:]
            for record in outcome.records { counts[record.kindName, default: 0] += 1 }
            let chunks = Set(outcome.contexts.map(\.chunkOffset)).count
            switch outcome.endState {
            case let .complete(end)?:
                XCTAssertEqual(end.allocs, counts["ALLOC"] ?? 0, name)
                XCTAssertEqual(end.frees, counts["FREE"] ?? 0, name)
                XCTAssertEqual(end.reallocs, counts["REALLOC"] ?? 0, name)
                let mappings = ["MMAP", "MUNMAP", "MREMAP", "BRK", "SBRK"].reduce(0) { $0 + (counts[$1] ?? 0) }
                XCTAssertEqual(end.mappings, mappings, name)
                XCTAssertEqual(end.stacks, counts["STACK"] ?? 0, name)
                XCTAssertEqual(end.chunks, UInt64(chunks - 1), "\(name): chunks before the one holding END")
                XCTAssertEqual(outcome.records.last?.kindName, "END", name)
            case let .cut(offset, reason)?:
                // A trace without END ends at a chunk boundary, after an exec or at a kill.
                XCTAssertEqual(offset, UInt64(bytes.count), name)
                XCTAssertEqual(reason, "no END record", name)
                let last = outcome.records.last(where: { !["TIME", "THREAD", "SAMPLE"].contains($0.kindName) })
                XCTAssertTrue(last?.kindName == "EXEC" || name.hasPrefix("killed"),
                              "\(name): cut without an exec or a kill (last record \(String(describing: last)))")
            case nil:
                XCTFail("\(name): no end state")
            }
            // Reading twice gives the same records: the reader keeps no state between passes.
            XCTAssertEqual(FuzzKit.execute(bytes, keepRecords: true).records, outcome.records, name)
        }
    }

    /// The corpus covers every record kind the tracer writes (glibc's sbrk moves the break
    /// without calling brk, so BRK never appears in a real trace) and both chunk codecs.
    func testCorpusCoversEveryRecordKindAndBothCodecs() throws {
        var kinds = Set<String>()
        var codecs = Set<UInt8>()
        for (_, bytes) in try FuzzKit.corpus() {
            let outcome = FuzzKit.execute(bytes, keepRecords: true)
            kinds.formUnion(outcome.kinds)
            for offset in Set(outcome.contexts.map(\.chunkOffset)) where Int(offset) + 4 < bytes.count {
                codecs.insert(bytes[Int(offset) + 4])
            }
        }
        let written: Set<String> = ["ALLOC", "FREE", "REALLOC_RELEASE", "REALLOC", "TIME", "THREAD", "STACK", "MODULES",
                                    "MMAP", "MUNMAP", "MREMAP", "SBRK", "MALLOPT", "SAMPLE", "MARK", "THREAD_NAME",
                                    "FORK", "EXEC", "NOTE", "FOLD", "END"]
        XCTAssertEqual(written.subtracting(kinds), [], "record kinds missing from the corpus")
        XCTAssertEqual(codecs, [0, 1], "raw and zstd chunks")
    }

    /// Traces of the version-1 tracer stay in the corpus beside version-2 ones: both must read.
    func testCorpusHoldsBothFormatVersions() throws {
        var versions = Set<UInt16>()
        for (_, bytes) in try FuzzKit.corpus() where bytes.count >= 10 {
            versions.insert(UInt16(bytes[8]) | UInt16(bytes[9]) << 8)
        }
        XCTAssertEqual(versions, [1, 2])
    }
}
