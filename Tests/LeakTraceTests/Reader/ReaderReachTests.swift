// REACH records (reachability at exit) and MARK source 2: decoding, concatenation, the dump line,
// and what a damaged record does to reading.

import XCTest
import TraceFormat

final class ReaderReachTests: XCTestCase {
    private let prefix: [TraceRecord] = [.thread(tid: 9), .stack(id: 1, parent: 0, ip: 0x4000),
                                         .alloc(function: .malloc, path: .heap, address: 0x1000, size: 8, stack: 1)]

    /// A REACH body written by hand from the spec: `flags scan-us root-bytes scanned-bytes count`
    /// then `entries` as given (already `delta * 4 + category`).
    private func reachTail(flags: UInt64 = 0x3, count: UInt64, entries: [UInt64]) -> [UInt8] {
        var body = FieldWriter()
        body.uv(flags); body.uv(850); body.uv(65536); body.uv(4096); body.uv(count)
        for entry in entries { body.uv(entry) }
        var tail = FieldWriter()
        tail.u8(0x4E)
        tail.lengthPrefixed(body.bytes)
        return tail.bytes
    }

    private func chunkWithTail(_ tail: [UInt8]) -> (bytes: [UInt8], badOffset: Int, chunkOffset: Int) {
        var chunk = ChunkRecords(prefix, version: 2)
        let goodSize = chunk.bytes.count
        chunk.appendRaw(tail)
        var builder = TraceBuilder(version: 2)
        let offset = builder.appendChunk(chunk)
        return (builder.bytes, offset + 16 + goodSize, offset)
    }

    func testEntriesDecodeAsDistanceTimesFourPlusCategory() throws {
        // 0x1000 definite, 0x1040 still reachable, 0x2000 indirect, 0x7f0000 possible.
        let entries: [UInt64] = [0x1000 * 4 + 3, 0x40 * 4 + 0, (0x2000 - 0x1040) * 4 + 2, (0x7F_0000 - 0x2000) * 4 + 1]
        let (bytes, _, _) = chunkWithTail(reachTail(count: 4, entries: entries))
        let (_, read) = try readBack(bytes)
        guard case let .reach(reach)? = read.records.last else { return XCTFail("no REACH record: \(read.records)") }
        XCTAssertEqual(reach.flags, [.scanned, .libcFreeresCalled])
        XCTAssertEqual(reach.scanMicroseconds, 850)
        XCTAssertEqual(reach.rootBytes, 65536)
        XCTAssertEqual(reach.scannedBytes, 4096)
        XCTAssertEqual(reach.entries.map(\.address), [0x1000, 0x1040, 0x2000, 0x7F_0000])
        XCTAssertEqual(reach.entries.map(\.category), [.definitelyLost, .stillReachable, .indirectlyLost, .possiblyLost])
        XCTAssertEqual(read.records.last?.dumpLine,
                       "REACH flags=scanned|libc-freeres scan-us=850 root-bytes=65536 scanned-bytes=4096 count=4: "
                           + "definite=1 indirect=1 possible=1 reachable=1")
    }

    func testEveryFlagHasAName() {
        XCTAssertEqual(ReachScanFlags(rawValue: 0x3F).names,
                       "scanned|libc-freeres|cxx-freeres|threads-running|in-signal-handler|refused")
        XCTAssertEqual(ReachScanFlags(rawValue: 0).names, "0")
        XCTAssertEqual(ReachScanFlags(rawValue: 0x41).names, "scanned|0x40")
    }

    func testBuilderRoundTripsReachAndRuntimeCleanupMark() throws {
        let reach = ReachRecord(flags: [.scanned, .libcFreeresCalled, .gnuCxxFreeresCalled], scanMicroseconds: 12,
                                rootBytes: 1 << 20, scannedBytes: 64,
                                entries: [ReachEntry(address: 0x1000, category: .definitelyLost),
                                          ReachEntry(address: 0x7FFF_F7FF_0000, category: .stillReachable)])
        let refused = ReachRecord(flags: [.refused], scanMicroseconds: 0, rootBytes: 0, scannedBytes: 0, entries: [])
        let records = prefix + [.mark(name: "runtime cleanup at exit", source: 2), .reach(reach), .reach(refused),
                                .end(TraceEnd(allocs: 1, frees: 0, reallocs: 0, mappings: 0, stacks: 1, chunks: 0,
                                              untraced: 0))]
        var builder = TraceBuilder(version: 2)
        builder.appendChunk(ChunkRecords(records, version: 2), codec: .zstd)
        let (_, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, records)
        XCTAssertEqual(read.records[3].dumpLine, "MARK \"runtime cleanup at exit\" source=runtime-cleanup")
        XCTAssertEqual(read.records[5].dumpLine, "REACH flags=refused scan-us=0 root-bytes=0 scanned-bytes=0 count=0")
    }

    func testCountLargerThanTheBodyIsRefusedBeforeAllocating() throws {
        let (bytes, badOffset, chunkOffset) = chunkWithTail(reachTail(count: 1 << 40, entries: [4]))
        let (_, read) = try readBack(bytes)
        XCTAssertEqual(read.records, prefix)
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(badOffset),
                                           reason: "chunk at offset \(chunkOffset): REACH record is damaged "
                                               + "(1099511627776 entries cannot fit in 1 bytes) at offset \(badOffset)"))
    }

    func testEntriesNotInAscendingOrderAreDamage() throws {
        let (bytes, badOffset, chunkOffset) = chunkWithTail(reachTail(count: 2, entries: [0x1000 * 4 + 3, 0 * 4 + 1]))
        let (_, read) = try readBack(bytes)
        XCTAssertEqual(read.records, prefix)
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(badOffset),
                                           reason: "chunk at offset \(chunkOffset): REACH record is damaged "
                                               + "(entry at 0x1000 not above the previous one) at offset \(badOffset)"))
    }

    func testEntryAddressBeyond62BitsIsDamage() throws {
        let (bytes, _, _) = chunkWithTail(reachTail(count: 2, entries: [(1 << 61) * 4, (1 << 61) * 4]))
        let (_, read) = try readBack(bytes)
        XCTAssertEqual(read.records, prefix)
        XCTAssertTrue(cutReason(read).contains("REACH record is damaged (entry address beyond 62 bits)"), cutReason(read))
    }

    func testMissingEntryIsDamage() throws {
        let (bytes, _, _) = chunkWithTail(reachTail(count: 2, entries: [0x10000 * 4 + 3]))
        let (_, read) = try readBack(bytes)
        XCTAssertEqual(read.records, prefix)
        XCTAssertTrue(cutReason(read).contains("REACH record is damaged (body cut short)"), cutReason(read))
    }

    private func cutReason(_ read: ReadBack) -> String {
        if case let .cut(_, reason)? = read.endState { return reason }
        return "not cut: \(String(describing: read.endState))"
    }
}
