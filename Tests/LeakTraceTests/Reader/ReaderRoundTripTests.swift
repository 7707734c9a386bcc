// Traces written by TraceBuilder (the spec, encoded independently) read back exactly.

import XCTest
import TraceFormat

final class ReaderRoundTripTests: XCTestCase {
    // MARK: - Every record kind

    func testEveryRecordKindRoundTripsThroughARawChunk() throws {
        try assertRoundTrip(codec: .raw)
    }

    func testEveryRecordKindRoundTripsThroughAZstdChunk() throws {
        try assertRoundTrip(codec: .zstd)
    }

    func testZstdFrameWithoutDeclaredContentSizeReadsBack() throws {
        var builder = TraceBuilder()
        builder.appendChunk(ChunkRecords(SampleRecords.everyKind), codec: .zstd, zstdContentSize: false)
        let (_, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, SampleRecords.everyKind)
        XCTAssertEqual(read.endState, .complete(TraceEnd(allocs: 6, frees: 1, reallocs: 4, mappings: 10, stacks: 3,
                                                         chunks: 0, untraced: 7)))
    }

    private func assertRoundTrip(codec: TraceBuilder.Codec, file: StaticString = #filePath,
                                 line: UInt = #line) throws {
        var builder = TraceBuilder()
        let offset = builder.appendChunk(SampleRecords.everyKind, codec: codec)
        let (reader, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records.count, 52, file: file, line: line)
        XCTAssertEqual(read.records, SampleRecords.everyKind, file: file, line: line)
        XCTAssertEqual(read.contexts, expectedContexts(chunks: [SampleRecords.everyKind], offsets: [offset]),
                       file: file, line: line)
        XCTAssertEqual(read.endState, .complete(TraceEnd(allocs: 6, frees: 1, reallocs: 4, mappings: 10, stacks: 3,
                                                         chunks: 0, untraced: 7)), file: file, line: line)
        XCTAssertEqual(reader.stacks.count, 3, file: file, line: line)
        XCTAssertEqual(reader.moduleMaps.count, 3, file: file, line: line)
        XCTAssertEqual(reader.chunksRead, 1, file: file, line: line)
    }

    // MARK: - Bytes written by hand from the spec

    /// A chunk spelled out byte by byte, so the reader is checked against the document and not
    /// only against TraceBuilder.
    func testHandEncodedChunkDecodes() throws {
        let records: [UInt8] = [
            0x06, 0x2A,                         // THREAD tid=42
            0x05, 0xE8, 0x07,                   // TIME 1000
            0x07, 0x00, 0xA3, 0x20,             // STACK parent=0 ip=0x1023 (id 1)
            0x01, 0x11, 0x80, 0x40, 0x18, 0x01, // ALLOC calloc heap: sv(0x1000)=0x2000, size 24, stack 1
            0x01, 0x20, 0x40, 0x20, 0x00,       // ALLOC malloc mmap: delta +0x20 -> 0x1020, size 32, stack 0
            0x02, 0x3F,                         // FREE delta -32 -> 0x1000
            0x04, 0x50, 0x00, 0x80, 0x04, 0x30, 0x01, // REALLOC reallocarray moved heap, old=0x1000 (+0), new=+0x100
            0x4A, 0x02, 0xD2, 0x09,             // FORK child-pid=1234
            0x4F, 0x07, 2, 1, 1, 0, 1, 0, 0,    // END
        ]
        var bytes: [UInt8] = Array("LKTRACE".utf8) + [0, 1, 0, 0, 0, 3, 0, 0, 0] + [0x01, 0x01, 0x08]
        bytes += Array("LTCK".utf8) + [0, 0, 0, 0]
        bytes += [UInt8(records.count), 0, 0, 0, UInt8(records.count), 0, 0, 0] + records
        let (reader, read) = try readBack(bytes)
        XCTAssertEqual(reader.header.pointerSize, 8)
        XCTAssertEqual(read.records.map(\.dumpLine), [
            "THREAD tid=42",
            "TIME us=1000",
            "STACK id=1 parent=0 ip=0x1023",
            "ALLOC calloc heap 0x1000 size=24 stack=1",
            "ALLOC malloc mmap-threshold 0x1020 size=32 stack=0",
            "FREE 0x1000",
            "REALLOC reallocarray moved-or-resized heap old=0x1000 new=0x1100 size=48 stack=1",
            "FORK child-pid=1234",
            "END allocs=2 frees=1 reallocs=1 mappings=0 stacks=1 chunks=0 untraced=0",
        ])
        XCTAssertEqual(read.contexts.last, RecordContext(tid: 42, time: 1000, chunkOffset: 19))
    }

    func testVarintsOfEveryLengthDecode() throws {
        // 2^k - 1 and 2^k for every k: varints of 1 to 10 bytes, each read both with more bytes
        // after it (fast path) and as the last bytes of the chunk (careful path).
        var values: [UInt64] = [0, .max, .max - 1]
        for bit in 1..<64 { values += [(UInt64(1) << bit) - 1, UInt64(1) << bit, (UInt64(1) << bit) + 1] }
        var builder = TraceBuilder()
        for value in values {
            builder.appendChunk([.time(microseconds: value), .thread(tid: value)])
            builder.appendChunk([.thread(tid: value)])
        }
        let (_, read) = try readBack(builder.bytes)
        let expected = values.flatMap { [TraceRecord.time(microseconds: $0), .thread(tid: $0), .thread(tid: $0)] }
        XCTAssertEqual(read.records, expected)
        // Padded (non-minimal) encodings are still one value: TIME 5 in three bytes.
        var padded = ChunkRecords()
        padded.appendRaw([0x05, 0x85, 0x80, 0x00, 0x06, 0x01])
        var paddedTrace = TraceBuilder()
        paddedTrace.appendChunk(padded)
        XCTAssertEqual(try readBack(paddedTrace.bytes).1.records, [.time(microseconds: 5), .thread(tid: 1)])
    }

    // MARK: - Header

    func testHeaderFieldsRoundTripAndUnknownKeysAreSkipped() throws {
        var header = TraceBuilder.sampleHeader
        header.parentTrace = "/tmp/parent.lt"
        header.parentForkOffset = 123_456
        var big = FieldWriter()
        big.uv(.max)
        let builder = TraceBuilder(header: header, extraFields: [(99, [1, 2, 3]), (1 << 40, big.bytes), (200, [])])
        let reader = try TraceReader(bytes: builder.bytes, name: "h.lt")
        XCTAssertEqual(reader.header, header)
        XCTAssertEqual(reader.header.arguments, ["sample-app", "--iterations", "3"])
        XCTAssertEqual(reader.firstChunkOffset, UInt64(builder.bytes.count))
    }

    func testMissingHeaderFieldsAreNil() throws {
        let builder = TraceBuilder(rawHeaderFields: [])
        let reader = try TraceReader(bytes: builder.bytes, name: "h.lt")
        XCTAssertEqual(reader.header, TraceHeader())
        XCTAssertEqual(reader.firstChunkOffset, 16)
    }

    func testArgumentsWithTrailingNULAsInProcCmdline() throws {
        let fields: [UInt8] = [0x06, 0x05] + Array("a\0\0b\0".utf8) + [0x0C, 0x03] + Array("X=1".utf8)
        let reader = try TraceReader(bytes: TraceBuilder(rawHeaderFields: fields).bytes, name: "h.lt")
        XCTAssertEqual(reader.header.arguments, ["a", "", "b"])
        XCTAssertEqual(reader.header.mallocEnvironment, ["X=1"])
    }

    // MARK: - Chunks and decoder state

    func testDecoderStateResetsAtEveryChunk() throws {
        // The same records in two chunks encode to the same bytes: addresses restart from 0,
        // thread and time are unknown again until THREAD and TIME.
        let first: [TraceRecord] = [
            .thread(tid: 7), .time(microseconds: 50),
            .alloc(function: .malloc, path: .heap, address: 0x4000, size: 16, stack: 0),
        ]
        let second: [TraceRecord] = [
            .free(address: 0x4000),
            .thread(tid: 8),
            .alloc(function: .malloc, path: .heap, address: 0x4000, size: 16, stack: 0),
            .time(microseconds: 60),
            .free(address: 0x4000),
        ]
        XCTAssertEqual(ChunkRecords([first[2]]).bytes, ChunkRecords([second[2]]).bytes)
        XCTAssertEqual(ChunkRecords([.free(address: 0x4000)]).bytes, [0x02, 0x80, 0x80, 0x02])
        var builder = TraceBuilder()
        let offsets = [builder.appendChunk(first, codec: .raw), builder.appendChunk(second, codec: .zstd)]
        let (_, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, first + second)
        XCTAssertEqual(read.contexts, expectedContexts(chunks: [first, second], offsets: offsets))
        XCTAssertEqual(read.contexts[3], RecordContext(tid: 0, time: 0, chunkOffset: UInt64(offsets[1])))
        XCTAssertEqual(read.contexts[5], RecordContext(tid: 8, time: 0, chunkOffset: UInt64(offsets[1])))
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(builder.bytes.count), reason: "no END record"))
    }

    func testStackIdsCountAcrossChunks() throws {
        var builder = TraceBuilder()
        builder.appendChunk([.stack(id: 1, parent: 0, ip: 0x100), .stack(id: 2, parent: 1, ip: 0x200)])
        builder.appendChunk([.stack(id: 3, parent: 2, ip: 0x300), .stack(id: 4, parent: 1, ip: 0x400),
                             .alloc(function: .malloc, path: .heap, address: 0x10, size: 1, stack: 3)], codec: .zstd)
        builder.appendChunk([.alloc(function: .malloc, path: .heap, address: 0x20, size: 2, stack: 4)])
        let (reader, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records.count, 6)
        XCTAssertEqual(read.records[2], .stack(id: 3, parent: 2, ip: 0x300))
        XCTAssertEqual(read.records[3], .stack(id: 4, parent: 1, ip: 0x400))
        let stacks = reader.stacks
        XCTAssertEqual(stacks.count, 4)
        XCTAssertEqual(stacks.frames(3), [0x300, 0x200, 0x100])
        XCTAssertEqual(stacks.frames(3, limit: 2), [0x300, 0x200])
        XCTAssertEqual(stacks.frames(4), [0x400, 0x100])
        XCTAssertEqual(stacks.frames(0), [])
        XCTAssertEqual(stacks.frames(5), [])
        XCTAssertEqual(stacks.depth(3), 3)
        XCTAssertEqual(stacks.parent(3), 2)
        XCTAssertEqual(stacks.parent(1), 0)
        XCTAssertEqual(stacks.parent(99), 0)
        XCTAssertEqual(stacks.ip(2), 0x200)
        XCTAssertEqual(stacks.ip(0), 0)
        XCTAssertEqual(stacks.ip(5), 0)
        XCTAssertTrue(stacks.isDefined(4))
        XCTAssertFalse(stacks.isDefined(0))
        XCTAssertFalse(stacks.isDefined(5))
    }

    func testEmptyChunksAreAllowed() throws {
        var builder = TraceBuilder()
        builder.appendChunk([], codec: .raw)
        builder.appendChunk([], codec: .zstd)
        builder.appendChunk([.end(TraceEnd(allocs: 0, frees: 0, reallocs: 0, mappings: 0, stacks: 0, chunks: 2,
                                           untraced: 0))])
        let (reader, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records.count, 1)
        XCTAssertEqual(reader.chunksRead, 3)
        XCTAssertTrue(read.endState?.isComplete == true)
    }

    // MARK: - Module snapshots

    func testModuleSnapshotsResolveAddressesNewestFirstThenLater() throws {
        var builder = TraceBuilder()
        let program = SampleRecords.programModule, libc = SampleRecords.libcModule
        let plugin = SampleRecords.pluginModule
        var movedLibc = libc
        movedLibc.segments = [ModuleSegment(start: 0x6000_0000, size: 0x1000, flags: 5)]
        builder.appendChunk([.modules(generation: 1, modules: [program, libc]),
                             .modules(generation: 2, modules: [program, plugin, movedLibc])])
        var snapshotAtEvent: [Int] = []
        let reader = try TraceReader(bytes: builder.bytes, name: "m.lt")
        reader.forEachRecord { _, _ in snapshotAtEvent.append(reader.moduleMaps.count - 1) }
        XCTAssertEqual(snapshotAtEvent, [0, 1])
        let maps = reader.moduleMaps
        XCTAssertEqual(maps.snapshots, [[program, libc], [program, plugin, movedLibc]])
        // In the snapshot in force.
        XCTAssertEqual(maps.module(containing: 0x5555_5555_5FFF, snapshot: 0)?.path, program.path)
        XCTAssertEqual(maps.module(containing: 0x5555_5555_7000, snapshot: 0)?.path, nil)
        // An older snapshot when the newest lacks it; a newer one only when no older has it.
        XCTAssertEqual(maps.module(containing: 0x7FFF_F7DA_8000, snapshot: 1), libc)
        XCTAssertEqual(maps.module(containing: 0x6000_0010, snapshot: 0), movedLibc)
        XCTAssertEqual(maps.module(containing: 0x7FFF_F000_1000, snapshot: 0)?.path, plugin.path)
        XCTAssertEqual(maps.module(containing: 0x7FFF_F000_1800, snapshot: 1), nil)
        XCTAssertEqual(maps.module(containing: 0x7FFF_F000_1000, snapshot: -1)?.path, plugin.path)
        XCTAssertEqual(maps.module(containing: 0x5555_5555_4000, snapshot: 99)?.path, program.path)
    }

    func testOverlappingSegmentsStillResolve() {
        var maps = ModuleMapHistory()
        let wide = Module(path: "wide", bias: 0, buildID: [], segments: [ModuleSegment(start: 0x1000, size: 0x10000, flags: 5)])
        let inner = Module(path: "inner", bias: 0, buildID: [], segments: [ModuleSegment(start: 0x2000, size: 0x100, flags: 5)])
        maps.append([wide, inner])
        XCTAssertEqual(maps.module(containing: 0x2050, snapshot: 0)?.path, "inner")
        XCTAssertEqual(maps.module(containing: 0x3000, snapshot: 0)?.path, "wide")
        XCTAssertEqual(maps.module(containing: 0x11000, snapshot: 0)?.path, nil)
        XCTAssertEqual(maps.module(containing: 0xFFF, snapshot: 0)?.path, nil)
    }

    // MARK: - END, unknown records, stopping, progress, passes

    func testEndRecordCompletesTheTraceAndStopsReading() throws {
        var builder = TraceBuilder()
        let end = TraceEnd(allocs: 1, frees: 0, reallocs: 0, mappings: 0, stacks: 0, chunks: 0, untraced: 0)
        builder.appendChunk([.alloc(function: .malloc, path: .heap, address: 0x10, size: 1, stack: 0), .end(end),
                             .free(address: 0x10)])
        builder.appendChunk([.free(address: 0x20)])
        let (reader, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records.count, 2)
        XCTAssertEqual(read.endState, .complete(end))
        XCTAssertEqual(reader.chunksRead, 1)
    }

    func testHeaderOnlyTraceIsCutWithNoRecords() throws {
        let builder = TraceBuilder()
        let (reader, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, [])
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(builder.bytes.count), reason: "no END record"))
        XCTAssertEqual(reader.chunksRead, 0)
    }

    func testUnknownSizedRecordsAreSkipped() throws {
        var chunk = ChunkRecords()
        chunk.append(.fork(childPid: 1))
        chunk.appendSized(tag: 0x77, body: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        chunk.append(.fork(childPid: 2))
        var builder = TraceBuilder()
        builder.appendChunk(chunk)
        let (_, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, [.fork(childPid: 1), .unknown(tag: 0x77, length: 11), .fork(childPid: 2)])
    }

    func testStopAtOffsetEndsBeforeThatChunk() throws {
        var builder = TraceBuilder()
        builder.appendChunk([.fork(childPid: 1)])
        let second = builder.appendChunk([.fork(childPid: 2)], codec: .zstd)
        builder.appendChunk([.fork(childPid: 3)])
        let reader = try TraceReader(bytes: builder.bytes, name: "p.lt")
        let atBoundary = readBack(reader, stopAtOffset: UInt64(second))
        XCTAssertEqual(atBoundary.records, [.fork(childPid: 1)])
        XCTAssertEqual(atBoundary.endState, .cut(atOffset: UInt64(second),
                                                 reason: "stopped at offset \(second) as asked"))
        // Inside the second chunk: that chunk started before the offset, so it is read.
        let inside = readBack(reader, stopAtOffset: UInt64(second + 1))
        XCTAssertEqual(inside.records, [.fork(childPid: 1), .fork(childPid: 2)])
    }

    func testProgressReportsTheEndOfEveryChunk() throws {
        var builder = TraceBuilder()
        builder.appendChunk([.fork(childPid: 1)])
        builder.appendChunk([.fork(childPid: 2)], codec: .zstd)
        var seen: [UInt64] = []
        let reader = try TraceReader(bytes: builder.bytes, name: "p.lt")
        reader.forEachRecord(progress: { seen.append($0) }) { _, _ in }
        XCTAssertEqual(seen, [UInt64(builder.chunkOffsets[1]), UInt64(builder.bytes.count)])
    }

    func testASecondPassReadsTheSameAndRebuildsTables() throws {
        var builder = TraceBuilder()
        builder.appendChunk(SampleRecords.everyKind)
        let (reader, first) = try readBack(builder.bytes)
        let second = readBack(reader)
        XCTAssertEqual(second.records, first.records)
        XCTAssertEqual(second.contexts, first.contexts)
        XCTAssertEqual(reader.stacks.count, 3)
        XCTAssertEqual(reader.moduleMaps.count, 3)
    }

    func testErrorThrownByTheClosureStopsReading() throws {
        struct Stop: Error {}
        var builder = TraceBuilder()
        builder.appendChunk(SampleRecords.everyKind)
        let reader = try TraceReader(bytes: builder.bytes, name: "t.lt")
        var delivered = 0
        XCTAssertThrowsError(try reader.forEachRecord { _, _ in
            delivered += 1
            if delivered == 4 { throw Stop() }
        }) { XCTAssertTrue($0 is Stop) }
        XCTAssertEqual(delivered, 4)
        XCTAssertNil(reader.endState)
    }

    // MARK: - Visitor

    func testVisitorGetsFrequentRecordsAsArgumentsAndTheRestAsRecords() throws {
        struct Tally: TraceVisitor {
            var allocatedBytes: UInt64 = 0
            var allocs = 0, frees = 0, releases = 0, reallocs = 0
            var others: [String] = []
            var lastFreeContext: RecordContext?
            mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                                     stack: UInt32, context: RecordContext) {
                allocs += 1
                allocatedBytes &+= size
            }
            mutating func visitFree(address: UInt64, context: RecordContext) {
                frees += 1
                lastFreeContext = context
            }
            mutating func visitReallocRelease(address: UInt64, context: RecordContext) { releases += 1 }
            mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                                       new: UInt64, size: UInt64, stack: UInt32, context: RecordContext) {
                reallocs += 1
            }
            mutating func visitRecord(_ record: TraceRecord, context: RecordContext) {
                others.append(String(record.dumpLine.prefix { $0 != " " }))
            }
        }
        var builder = TraceBuilder()
        let offset = builder.appendChunk(SampleRecords.everyKind)
        let reader = try TraceReader(bytes: builder.bytes, name: "v.lt")
        var tally = Tally()
        reader.visitRecords(&tally)
        XCTAssertEqual(tally.allocs, 9)
        XCTAssertEqual(tally.frees, 1)
        XCTAssertEqual(tally.releases, 1)
        XCTAssertEqual(tally.reallocs, 4)
        // 24 + 1 MiB + 64 + 4096 + UInt64.max + 7 + 300000 + 256 + 0, wrapping.
        XCTAssertEqual(tally.allocatedBytes, 24 &+ (1 << 20) &+ 64 &+ 4096 &+ UInt64.max &+ 7 &+ 300_000 &+ 256)
        XCTAssertEqual(tally.lastFreeContext, RecordContext(tid: 4242, time: 1500, chunkOffset: UInt64(offset)))
        XCTAssertEqual(tally.others.count, 52 - 15)
        XCTAssertEqual(tally.others.first, "MODULES")
        XCTAssertEqual(tally.others.last, "END")
        XCTAssertTrue(reader.endState?.isComplete == true)
    }

    func testVisitorThatOnlyImplementsVisitRecordSeesEverything() throws {
        struct Collect: TraceVisitor {
            var records: [TraceRecord] = []
            mutating func visitRecord(_ record: TraceRecord, context: RecordContext) { records.append(record) }
        }
        var builder = TraceBuilder()
        builder.appendChunk(SampleRecords.everyKind, codec: .zstd)
        let reader = try TraceReader(bytes: builder.bytes, name: "v.lt")
        var collect = Collect()
        reader.visitRecords(&collect)
        XCTAssertEqual(collect.records, SampleRecords.everyKind)
    }

    // MARK: - Files

    func testReadsFromAFileOnDisk() throws {
        var builder = TraceBuilder()
        builder.appendChunk(SampleRecords.everyKind, codec: .zstd)
        let path = try temporaryFile(builder.bytes)
        let reader = try TraceReader(path: path)
        XCTAssertEqual(reader.path, path)
        XCTAssertEqual(reader.fileSize, UInt64(builder.bytes.count))
        XCTAssertEqual(readBack(reader).records, SampleRecords.everyKind)
    }
}
