// FOLD records (format version 2): what a damaged one does to reading, and that the reader
// still refuses versions it does not know. The cut and bit-flip tests run on a version-2 sample
// too (ReaderDamageTests).

import XCTest
import TraceFormat

extension ReaderDamageTests {
    private func foldTail(stack: UInt64 = 2, info: UInt8 = 0x10, count: UInt64 = 1, entries: Int = 1) -> [UInt8] {
        var body = FieldWriter()
        body.uv(10); body.uv(20); body.uv(4096); body.uv(0x1000); body.uv(count)
        for _ in 0..<entries {
            body.uv(stack); body.u8(info); body.uv(7); body.uv(336); body.uv(3); body.uv(2)
        }
        var tail = FieldWriter()
        tail.u8(0x4D)
        tail.lengthPrefixed(body.bytes)
        return tail.bytes
    }

    func testFoldRecordReadsWhole() throws {
        let (bytes, _) = chunkWithTail(good, foldTail() + [0x4F, 7, 0, 0, 0, 0, 2, 0, 0])
        let (_, read) = try readBack(bytes)
        let entry = FoldEntry(stack: 2, function: .malloc, path: .heap, blocks: 7, bytes: 336, temporary: 3,
                              releasedByRealloc: 2)
        XCTAssertEqual(read.records, good + [.fold(FoldSummary(firstMicroseconds: 10, lastMicroseconds: 20, peakBytes: 4096,
                                                               lowestHeapAddress: 0x1000, entries: [entry])),
                                             .end(TraceEnd(allocs: 0, frees: 0, reallocs: 0, mappings: 0, stacks: 2,
                                                           chunks: 0, untraced: 0))])
        XCTAssertTrue(read.records[4].dumpLine.hasPrefix("FOLD first-us=10 last-us=20 peak-bytes=4096 low-heap=0x1000 count=1: "
                                                         + "stack=2 malloc heap blocks=7 bytes=336 temporary=3 by-realloc=2"))
    }

    func testFoldEntryWithAnUndefinedStackIsDamage() throws {
        let (bytes, badOffset) = chunkWithTail(good, foldTail(stack: 9))
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: FOLD record is damaged (undefined stack id 9 (2 defined)) at offset \(badOffset)")
    }

    func testFoldEntryWithAnUnknownFunctionIsDamage() throws {
        let (bytes, badOffset) = chunkWithTail(good, foldTail(info: 0x1C))
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: FOLD record is damaged (entry with unknown function or path (info 0x1c)) at offset \(badOffset)")
    }

    func testFoldCountOfTwoToThe40IsRefusedBeforeAllocating() throws {
        let (bytes, badOffset) = chunkWithTail(good, foldTail(count: 1 << 40))
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: FOLD record is damaged (1099511627776 entries cannot fit in 7 bytes) at offset \(badOffset)")
    }

    /// Version 2's own encodings (STACK parents as the distance back, realloc(NULL, n) without
    /// its old pointer) read back as the same records.
    func testEveryRecordKindRoundTripsInVersion2() throws {
        var builder = TraceBuilder(version: 2)
        builder.appendChunk(ChunkRecords(SampleRecords.everyKind, version: 2), codec: .zstd)
        let (reader, read) = try readBack(builder.bytes)
        XCTAssertEqual(reader.header.version, 2)
        XCTAssertEqual(read.records, SampleRecords.everyKind)
        XCTAssertTrue(read.endState?.isComplete == true)
    }

    func testStackParentDistanceOutsideTheTrieIsDamage() throws {
        for up: UInt64 in [0, 4] {
            var chunk = ChunkRecords(version: 2)
            chunk.append(.thread(tid: 9))
            chunk.append(.stack(id: 1, parent: 0, ip: 0x4000))
            chunk.append(.stack(id: 2, parent: 1, ip: 0x4010))
            let badStart = chunk.bytes.count
            chunk.appendRaw([0x07] + [UInt8(up), 0x20])
            var builder = TraceBuilder(version: 2)
            let offset = builder.appendChunk(chunk)
            let (_, read) = try readBack(builder.bytes)
            XCTAssertEqual(read.records.count, 3)
            XCTAssertEqual(read.endState, .cut(atOffset: UInt64(offset + 16 + badStart),
                                               reason: "chunk at offset \(offset): STACK record's parent distance \(up) does not fit node 3 at offset \(offset + 16 + badStart)"))
        }
    }

    func testReallocWithoutOldPointerIsDamageInVersion1() throws {
        var chunk = ChunkRecords(good)
        let badStart = chunk.bytes.count
        chunk.appendRaw([0x04, 0x80, 0x02, 0x10, 0x02])
        var builder = TraceBuilder()
        let offset = builder.appendChunk(chunk)
        try assertCut(builder.bytes, delivers: good, at: offset + 16 + badStart,
                      reason: "chunk at offset \(offset): REALLOC record with unknown status or function (info 0x80) at offset \(offset + 16 + badStart)")
    }

    func testVersion3IsRefusedWithItsNumber() {
        XCTAssertThrowsError(try TraceReader(bytes: TraceBuilder(version: 3).bytes, name: "v3.lt")) { error in
            XCTAssertEqual("\(error)", "v3.lt: format version 3 is newer than this reader (2)")
        }
    }
}
