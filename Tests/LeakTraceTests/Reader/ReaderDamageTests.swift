// Cut and damaged traces: the reader never crashes or hangs, delivers every record that is
// intact, and ends with `.cut` at the right offset with a reason naming the problem.

import XCTest
import TraceFormat

final class ReaderDamageTests: XCTestCase {
    // MARK: - A multi-chunk trace to cut and damage

    struct Sample {
        var bytes: [UInt8]
        var chunks: [ChunkRecords]
        var records: [[TraceRecord]]
        var codecs: [TraceBuilder.Codec]
        var offsets: [Int]
        var firstChunkOffset: Int

        var allRecords: [TraceRecord] { records.flatMap { $0 } }
        func chunkEnd(_ index: Int) -> Int { index + 1 < offsets.count ? offsets[index + 1] : bytes.count }
    }

    /// Five chunks, raw and zstd alternating, about 2.5 KiB in all, ending with END. Version 2
    /// adds the header's events keys and a FOLD record to every chunk.
    static func multiChunkSample(version: UInt16 = 1) -> Sample {
        var random = SeededGenerator(seed: 0x1EAC)
        var chunks: [[TraceRecord]] = []
        var nextStack: UInt32 = 1
        var live: [UInt64] = []
        for index in 0..<5 {
            var records: [TraceRecord] = [.thread(tid: 100 + UInt64(index % 2)), .time(microseconds: 1000 * UInt64(index + 1))]
            if index == 0 { records.append(.modules(generation: 1, modules: [SampleRecords.programModule])) }
            for _ in 0..<3 {
                let parent = nextStack == 1 ? 0 : UInt32.random(in: 0..<nextStack, using: &random)
                records.append(.stack(id: nextStack, parent: parent, ip: 0x5555_5555_5000 + UInt64.random(in: 0..<0x2000, using: &random)))
                nextStack += 1
            }
            for _ in 0..<44 {
                if !live.isEmpty && Bool.random(using: &random) {
                    records.append(.free(address: live.removeLast()))
                } else {
                    let address = 0x5555_5556_0000 + UInt64.random(in: 0..<0x100_0000, using: &random) * 16
                    live.append(address)
                    records.append(.alloc(function: .malloc, path: .heap, address: address,
                                          size: UInt64.random(in: 1...5000, using: &random),
                                          stack: UInt32.random(in: 0..<nextStack, using: &random)))
                }
            }
            records.append(.mmap(addressArgument: 0, length: 4096, prot: 3, flags: 0x22, fd: -1, offset: 0,
                                 result: 0x7FFF_F7FF_0000, errno: 0, path: "", stack: nextStack - 1))
            if version >= 2 {
                let address = 0x5555_5557_0000 + UInt64(index) * 0x100
                live.append(address)
                records.append(.realloc(status: .movedOrResized, path: .heap, isReallocarray: index % 2 == 1, old: 0,
                                        new: address, size: 100, stack: nextStack - 1))
                let stacks = (0..<3).map { _ in UInt32.random(in: 0..<nextStack, using: &random) }.sorted()
                let entries = stacks.enumerated().map { entry, stack in
                    FoldEntry(stack: stack, function: entry == 2 ? .calloc : .malloc, path: .heap,
                              blocks: UInt64.random(in: 0...900, using: &random),
                              bytes: UInt64.random(in: 1...5_000_000, using: &random), temporary: UInt64(entry))
                }
                records.append(.fold(FoldSummary(firstMicroseconds: 1000 * UInt64(index + 1),
                                                 lastMicroseconds: 1000 * UInt64(index + 1) + 999,
                                                 peakBytes: UInt64(index) * 4096,
                                                 lowestHeapAddress: index == 0 ? 0 : 0x5555_5556_0000,
                                                 entries: entries)))
            }
            records.append(.mark(name: "phase \(index)", source: 0))
            if index == 4 {
                records.append(.end(TraceEnd(allocs: 110, frees: 110, reallocs: version >= 2 ? 5 : 0, mappings: 5,
                                             stacks: 15, chunks: 4, untraced: 0)))
            }
            chunks.append(records)
        }
        var header = TraceBuilder.sampleHeader
        if version >= 2 {
            header.events = 1
            header.foldWindow = 16384
        }
        var builder = TraceBuilder(header: header, version: version)
        let codecs: [TraceBuilder.Codec] = [.raw, .zstd, .raw, .zstd, .raw]
        var encoded: [ChunkRecords] = []
        for (records, codec) in zip(chunks, codecs) {
            let chunk = ChunkRecords(records, version: version)
            encoded.append(chunk)
            builder.appendChunk(chunk, codec: codec)
        }
        return Sample(bytes: builder.bytes, chunks: encoded, records: chunks, codecs: codecs,
                      offsets: builder.chunkOffsets, firstChunkOffset: TraceBuilder(header: header).bytes.count)
    }

    func testSampleIsAMultiChunkTraceOfTwoToThreeKiB() throws {
        for version: UInt16 in [1, 2] {
            let sample = Self.multiChunkSample(version: version)
            XCTAssertTrue((2048...3072).contains(sample.bytes.count), "\(sample.bytes.count) bytes")
            let (reader, read) = try readBack(sample.bytes)
            XCTAssertEqual(reader.header.version, version)
            XCTAssertEqual(reader.header.foldsShortLivedBlocks, version == 2)
            XCTAssertEqual(read.records, sample.allRecords)
            XCTAssertEqual(read.contexts, expectedContexts(chunks: sample.records, offsets: sample.offsets))
            XCTAssertTrue(read.endState?.isComplete == true)
            XCTAssertEqual(read.records.contains { if case .fold = $0 { return true }; return false }, version == 2)
        }
    }

    // MARK: - Cut at every byte

    func testCutAtEveryByteOffset() throws {
        try checkCutAtEveryByteOffset(Self.multiChunkSample(version: 1))
    }

    func testCutAtEveryByteOffsetVersion2() throws {
        try checkCutAtEveryByteOffset(Self.multiChunkSample(version: 2))
    }

    private func checkCutAtEveryByteOffset(_ sample: Sample) throws {
        let all = sample.allRecords
        for length in 0...sample.bytes.count {
            let bytes = Array(sample.bytes.prefix(length))
            guard length >= sample.firstChunkOffset else {
                XCTAssertThrowsError(try TraceReader(bytes: bytes, name: "cut.lt")) { error in
                    let text = "\(error)"
                    XCTAssertTrue(text.hasPrefix("cut.lt: "), text)
                    XCTAssertFalse(text.contains("\n"))
                    if length == 0 { XCTAssertEqual(text, "cut.lt: empty file") }
                }
                continue
            }
            let (_, read) = try readBack(bytes, name: "cut.lt")
            if length == sample.bytes.count {
                XCTAssertEqual(read.records, all)
                XCTAssertTrue(read.endState?.isComplete == true)
                continue
            }
            // Whole chunks, then what the spec lets a reader recover from the cut one.
            let whole = sample.offsets.indices.filter { sample.chunkEnd($0) <= length }
            let wholeCount = whole.reduce(0) { $0 + sample.records[$1].count }
            XCTAssertEqual(Array(read.records.prefix(wholeCount)), Array(all.prefix(wholeCount)), "cut at \(length)")
            XCTAssertEqual(read.records, Array(all.prefix(read.records.count)), "cut at \(length)")
            guard case .cut(let offset, let reason)? = read.endState else {
                XCTFail("cut at \(length): \(String(describing: read.endState))")
                continue
            }
            XCTAssertTrue(reason.hasSuffix("no END record"), "cut at \(length): \(reason)")
            let cutChunk = whole.count
            if cutChunk == sample.offsets.count || sample.offsets[cutChunk] == length {
                // Cut exactly at a chunk boundary.
                XCTAssertEqual(read.records.count, wholeCount)
                XCTAssertEqual(read.endState, .cut(atOffset: UInt64(length), reason: "no END record"))
                continue
            }
            let chunkOffset = sample.offsets[cutChunk]
            let payloadStart = chunkOffset + 16
            if length < payloadStart {
                XCTAssertEqual(read.records.count, wholeCount, "cut at \(length)")
                XCTAssertEqual(offset, UInt64(chunkOffset))
            } else if sample.codecs[cutChunk] == .raw {
                // Exactly the records whose bytes are all there, and the cut right after them.
                let ends = sample.chunks[cutChunk].recordEnds.filter { $0 <= length - payloadStart }
                XCTAssertEqual(read.records.count, wholeCount + ends.count, "cut at \(length)")
                XCTAssertEqual(offset, UInt64(payloadStart + (ends.last ?? 0)), "cut at \(length)")
            } else {
                XCTAssertLessThanOrEqual(read.records.count, wholeCount + sample.records[cutChunk].count)
                XCTAssertEqual(offset, UInt64(chunkOffset), "cut at \(length)")
            }
        }
    }

    // MARK: - Random bit flips

    func testTenThousandRandomBitFlipsNeverCrashOrHang() {
        checkRandomBitFlips(Self.multiChunkSample(version: 1))
    }

    func testTenThousandRandomBitFlipsOfVersion2NeverCrashOrHang() {
        checkRandomBitFlips(Self.multiChunkSample(version: 2))
    }

    private func checkRandomBitFlips(_ sample: Sample) {
        let all = sample.allRecords
        withWatchdog(seconds: 300, "10,000 bit-flipped reads") {
            var random = SeededGenerator(seed: 20_261_122)
            var refused = 0, cut = 0, complete = 0
            for iteration in 0..<10_000 {
                var bytes = sample.bytes
                let flips = Int.random(in: 1...3, using: &random)
                var firstFlipped = bytes.count
                for _ in 0..<flips {
                    let bit = Int.random(in: 0..<(bytes.count * 8), using: &random)
                    bytes[bit / 8] ^= 1 << UInt8(bit % 8)
                    firstFlipped = min(firstFlipped, bit / 8)
                }
                let reader: TraceReader
                do {
                    reader = try TraceReader(bytes: bytes, name: "flip.lt")
                } catch {
                    let text = "\(error)"
                    XCTAssertTrue(text.hasPrefix("flip.lt: ") && !text.contains("\n"), text)
                    refused += 1
                    continue
                }
                let read = readBack(reader)
                XCTAssertNotNil(read.endState, "iteration \(iteration)")
                XCTAssertLessThanOrEqual(read.records.count, bytes.count)
                if read.endState?.isComplete == true { complete += 1 } else { cut += 1 }
                // Chunks that end before the first flipped byte are untouched and must come out whole.
                if firstFlipped >= sample.firstChunkOffset {
                    let untouched = sample.offsets.indices.filter { sample.chunkEnd($0) <= firstFlipped }
                    let count = untouched.reduce(0) { $0 + sample.records[$1].count }
                    XCTAssertEqual(Array(read.records.prefix(count)), Array(all.prefix(count)),
                                   "iteration \(iteration), first flip at byte \(firstFlipped)")
                }
            }
            XCTAssertEqual(refused + cut + complete, 10_000)
            XCTAssertGreaterThan(refused, 0)
            XCTAssertGreaterThan(cut, 0)
        }
    }

    // MARK: - Lengths that claim too much

    /// A raw chunk with `good` records, then `bad` bytes. Returns the trace and the file offset
    /// of the bad bytes.
    func chunkWithTail(_ good: [TraceRecord], _ bad: [UInt8]) -> ([UInt8], Int) {
        var chunk = ChunkRecords(good)
        let goodSize = chunk.bytes.count
        chunk.appendRaw(bad)
        var builder = TraceBuilder()
        let offset = builder.appendChunk(chunk)
        return (builder.bytes, offset + 16 + goodSize)
    }

    let good: [TraceRecord] = [.thread(tid: 9), .stack(id: 1, parent: 0, ip: 0x4000),
                                       .stack(id: 2, parent: 1, ip: 0x4010),
                                       .alloc(function: .malloc, path: .heap, address: 0x1000, size: 8, stack: 2)]

    func assertCut(_ bytes: [UInt8], delivers expected: [TraceRecord], at offset: Int, reason: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let (_, read) = try readBack(bytes)
        XCTAssertEqual(read.records, expected, file: file, line: line)
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(offset), reason: reason), file: file, line: line)
    }

    func testSizedRecordLengthOfTwoToThe40() throws {
        var tail = FieldWriter()
        tail.u8(0x41)
        tail.uv(1 << 40)
        tail.raw([1, 2, 3])
        let (bytes, badOffset) = chunkWithTail(good, tail.bytes)
        let chunkOffset = TraceBuilder().bytes.count
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset \(chunkOffset): MMAP record runs past the end of the chunk at offset \(badOffset)")
    }

    func testModuleCountOfTwoToThe40IsRefusedBeforeAllocating() throws {
        var body = FieldWriter()
        body.uv(1)
        body.uv(1 << 40)
        body.raw([0, 0, 0, 0])
        var tail = FieldWriter()
        tail.u8(0x40)
        tail.lengthPrefixed(body.bytes)
        let (bytes, badOffset) = chunkWithTail(good, tail.bytes)
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: MODULES record is damaged (1099511627776 modules cannot fit in 4 bytes) at offset \(badOffset)")
    }

    func testStringLengthOfTwoToThe40() throws {
        var body = FieldWriter()
        body.uv(1 << 40)
        body.raw(Array("/bin/sh".utf8))
        var tail = FieldWriter()
        tail.u8(0x4B)
        tail.lengthPrefixed(body.bytes)
        let (bytes, badOffset) = chunkWithTail(good, tail.bytes)
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: EXEC record is damaged (body cut short) at offset \(badOffset)")
    }

    func testChunkSizesOverTheLimit() throws {
        var builder = TraceBuilder()
        builder.appendChunk([.fork(childPid: 1)])
        let second = builder.appendChunk(ChunkRecords([.fork(childPid: 2)]), codec: .zstd, storedSize: .max)
        try assertCut(builder.bytes, delivers: [.fork(childPid: 1)], at: second,
                      reason: "chunk at offset \(second): stored-size 4294967295 is over the 64 MiB limit")

        var rawSize = TraceBuilder()
        let only = rawSize.appendChunk(ChunkRecords([.fork(childPid: 2)]), codec: .zstd, rawSize: (64 << 20) + 1)
        try assertCut(rawSize.bytes, delivers: [], at: only,
                      reason: "chunk at offset \(only): raw-size 67108865 is over the 64 MiB limit")
    }

    // MARK: - Undefined references

    func testUndefinedStackId() throws {
        var chunk = ChunkRecords(good)
        let badStart = chunk.bytes.count
        chunk.append(.alloc(function: .calloc, path: .heap, address: 0x2000, size: 8, stack: 3))
        var builder = TraceBuilder()
        let offset = builder.appendChunk(chunk)
        try assertCut(builder.bytes, delivers: good, at: offset + 16 + badStart,
                      reason: "chunk at offset \(offset): ALLOC record names undefined stack id 3 (2 defined) at offset \(offset + 16 + badStart)")
    }

    func testUndefinedStackIdInAZstdChunkReportsTheChunkOffset() throws {
        var builder = TraceBuilder()
        let offset = builder.appendChunk(good + [.realloc(status: .movedOrResized, path: .heap, isReallocarray: false,
                                                          old: 0x1000, new: 0x3000, size: 1, stack: 7)],
                                         codec: .zstd)
        let badStart = ChunkRecords(good).bytes.count
        try assertCut(builder.bytes, delivers: good, at: offset,
                      reason: "chunk at offset \(offset): REALLOC record names undefined stack id 7 (2 defined) at offset \(offset) (byte \(badStart) of its decompressed records)")
    }

    func testUndefinedStackIdInASizedRecord() throws {
        var chunk = ChunkRecords(good)
        let badStart = chunk.bytes.count
        chunk.append(.munmap(address: 0x1000, length: 4096, result: 0, errno: 0, stack: 5))
        var builder = TraceBuilder()
        let offset = builder.appendChunk(chunk)
        try assertCut(builder.bytes, delivers: good, at: offset + 16 + badStart,
                      reason: "chunk at offset \(offset): MUNMAP record is damaged (undefined stack id 5 (2 defined)) at offset \(offset + 16 + badStart)")
    }

    func testUndefinedParent() throws {
        var chunk = ChunkRecords(good)
        let badStart = chunk.bytes.count
        chunk.append(.stack(id: 3, parent: 3, ip: 0x4020))
        var builder = TraceBuilder()
        let offset = builder.appendChunk(chunk)
        let (reader, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, good)
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(offset + 16 + badStart),
                                           reason: "chunk at offset \(offset): STACK record names undefined parent id 3 (2 defined) at offset \(offset + 16 + badStart)"))
        XCTAssertEqual(reader.stacks.count, 2)
    }

    // MARK: - Malformed records

    func testUnknownFixedTagIsDamage() throws {
        let (bytes, badOffset) = chunkWithTail(good, [0x20, 0x00])
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: unknown record tag 0x20 at offset \(badOffset)")
    }

    func testUnknownAllocFunctionIsDamage() throws {
        let (bytes, badOffset) = chunkWithTail(good, [0x01, 0x19, 0x00, 0x01, 0x00])
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: ALLOC record with unknown function 9 at offset \(badOffset)")
    }

    func testOverlongVarintIsDamage() throws {
        let (bytes, badOffset) = chunkWithTail(good, [0x02] + [UInt8](repeating: 0xFF, count: 11) + [0x00])
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: FREE record has a malformed varint at offset \(badOffset)")
        // Ten bytes whose last one carries more than bit 63.
        let (tooBig, tooBigOffset) = chunkWithTail(good, [0x05] + [UInt8](repeating: 0xFF, count: 9) + [0x02])
        try assertCut(tooBig, delivers: good, at: tooBigOffset,
                      reason: "chunk at offset 203: TIME record has a malformed varint at offset \(tooBigOffset)")
    }

    func testFixedRecordRunningPastTheChunkEnd() throws {
        let (bytes, badOffset) = chunkWithTail(good, [0x01, 0x00, 0x80])
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: ALLOC record runs past the end of the chunk at offset \(badOffset)")
    }

    func testSizedRecordWithBytesLeftOverIsDamage() throws {
        let (bytes, badOffset) = chunkWithTail(good, [0x4A, 0x03, 0x05, 0x00, 0x00])
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: FORK record is damaged (2 bytes left over) at offset \(badOffset)")
    }

    func testSizedRecordWithTooShortABodyIsDamage() throws {
        let (bytes, badOffset) = chunkWithTail(good, [0x4F, 0x03, 0x01, 0x02, 0x03])
        try assertCut(bytes, delivers: good, at: badOffset,
                      reason: "chunk at offset 203: END record is damaged (body cut short) at offset \(badOffset)")
    }

    // MARK: - Chunk headers

    func testGarbageWhereAChunkHeaderShouldBe() throws {
        var builder = TraceBuilder()
        builder.appendChunk([.fork(childPid: 1)])
        let garbage = builder.bytes.count
        builder.appendRaw(Array("not a chunk at all".utf8))
        try assertCut(builder.bytes, delivers: [.fork(childPid: 1)], at: garbage,
                      reason: "no chunk header at offset \(garbage) (found 6e 6f 74 20)")
    }

    func testUnknownCodec() throws {
        var builder = TraceBuilder()
        let offset = builder.appendChunk(ChunkRecords([.fork(childPid: 1)]), codecByte: 2)
        try assertCut(builder.bytes, delivers: [], at: offset, reason: "chunk at offset \(offset): unknown codec 2")
    }

    func testRawChunkWhoseSizesDisagree() throws {
        var builder = TraceBuilder()
        let offset = builder.appendChunk(ChunkRecords([.fork(childPid: 1)]), rawSize: 9)
        try assertCut(builder.bytes, delivers: [], at: offset,
                      reason: "chunk at offset \(offset): raw chunk with stored-size 3 but raw-size 9")
    }

    func testHalfAChunkHeaderAtTheEnd() throws {
        var builder = TraceBuilder()
        builder.appendChunk([.fork(childPid: 1)])
        let offset = builder.bytes.count
        builder.appendRaw(Array("LTCK".utf8) + [0, 0])
        try assertCut(builder.bytes, delivers: [.fork(childPid: 1)], at: offset,
                      reason: "chunk header at offset \(offset) is cut short (6 of 16 bytes); no END record")
    }

    // MARK: - zstd frames

    /// One zstd chunk of 40,000 ALLOC records (about 300 KiB raw: three zstd blocks).
    private func bigZstdChunk() -> (bytes: [UInt8], chunk: ChunkRecords, records: [TraceRecord], offset: Int) {
        var random = SeededGenerator(seed: 7)
        var records: [TraceRecord] = [.thread(tid: 1)]
        for _ in 0..<40_000 {
            records.append(.alloc(function: .malloc, path: .heap,
                                  address: 0x5555_0000_0000 + UInt64.random(in: 0..<(1 << 24), using: &random) * 16,
                                  size: UInt64.random(in: 1...100_000, using: &random), stack: 0))
        }
        let chunk = ChunkRecords(records)
        var builder = TraceBuilder()
        let offset = builder.appendChunk(chunk, codec: .zstd)
        return (builder.bytes, chunk, records, offset)
    }

    func testCutZstdFrameRecoversTheWholeRecordsOfFinishedBlocks() throws {
        let big = bigZstdChunk()
        XCTAssertGreaterThan(big.chunk.bytes.count, 2 * 131_072)
        let payload = big.bytes.count - big.offset - 16
        let cutLength = big.offset + 16 + payload * 3 / 4
        let (_, read) = try readBack(Array(big.bytes.prefix(cutLength)))
        // Streaming decompression hands out whole 128 KiB blocks: at least the first one, and
        // not everything.
        let firstBlockRecords = big.chunk.recordEnds.filter { $0 <= 131_072 }.count
        XCTAssertGreaterThanOrEqual(read.records.count, firstBlockRecords)
        XCTAssertLessThan(read.records.count, big.records.count)
        XCTAssertEqual(read.records, Array(big.records.prefix(read.records.count)))
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(big.offset),
                                           reason: "chunk at offset \(big.offset) is cut short (\(cutLength - big.offset - 16) of \(payload) payload bytes); no END record"))
    }

    func testDamagedZstdBlockKeepsTheBlocksBeforeIt() throws {
        let big = bigZstdChunk()
        var bytes = big.bytes
        let frameStart = big.offset + 16
        let blocks = zstdBlockOffsets(bytes, frameStart: frameStart)
        XCTAssertGreaterThanOrEqual(blocks.count, 3)
        // Mark the second block's type as reserved (3): the decoder must refuse it.
        bytes[blocks[1]] |= 0b110
        let (_, read) = try readBack(bytes)
        let firstBlockRecords = big.chunk.recordEnds.filter { $0 <= 131_072 }.count
        XCTAssertEqual(read.records, Array(big.records.prefix(firstBlockRecords)))
        guard case .cut(let offset, let reason)? = read.endState else { return XCTFail("not cut") }
        XCTAssertEqual(offset, UInt64(big.offset))
        XCTAssertEqual(reason, "chunk at offset \(big.offset): zstd frame is damaged (data corruption detected); "
                       + "131072 of \(big.chunk.bytes.count) bytes recovered")
    }

    func testZstdFrameLargerThanRawSize() throws {
        var builder = TraceBuilder()
        let records: [TraceRecord] = [.fork(childPid: 1), .fork(childPid: 2)]
        let offset = builder.appendChunk(ChunkRecords(records), codec: .zstd, rawSize: 3, zstdContentSize: false)
        let (_, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, [.fork(childPid: 1)])
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(offset),
                                           reason: "chunk at offset \(offset): zstd frame is damaged (decompresses to more than 3 bytes); 3 of 3 bytes recovered"))
    }

    func testZstdFrameSmallerThanRawSize() throws {
        var builder = TraceBuilder()
        let records: [TraceRecord] = [.fork(childPid: 1), .fork(childPid: 2)]
        let offset = builder.appendChunk(ChunkRecords(records), codec: .zstd, rawSize: 100, zstdContentSize: false)
        let (_, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, records)
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(offset),
                                           reason: "chunk at offset \(offset): zstd frame is damaged (decompresses to 6 bytes, not 100); 6 of 100 bytes recovered"))
    }

    func testRawSizeNoFrameOfThatSizeCouldHold() throws {
        var builder = TraceBuilder()
        let records = ChunkRecords([.fork(childPid: 1)])
        let frameSize = TraceBuilder.zstdFrame(records.bytes, declareContentSize: false).count
        let offset = builder.appendChunk(records, codec: .zstd, rawSize: 64 << 20, zstdContentSize: false)
        try assertCut(builder.bytes, delivers: [], at: offset,
                      reason: "chunk at offset \(offset): raw-size 67108864 is more than a \(frameSize)-byte zstd frame can hold")
    }

    func testZstdPayloadThatIsNotAFrame() throws {
        var builder = TraceBuilder()
        builder.appendChunk([.fork(childPid: 1)])
        var chunk = ChunkRecords()
        chunk.appendRaw((1...64).map { UInt8($0) })
        // A raw payload labelled zstd.
        let offset = builder.appendChunk(chunk, codecByte: 1, rawSize: 8)
        let (_, read) = try readBack(builder.bytes)
        XCTAssertEqual(read.records, [.fork(childPid: 1)])
        XCTAssertEqual(read.endState, .cut(atOffset: UInt64(offset),
                                           reason: "chunk at offset \(offset): zstd frame is damaged (unknown frame descriptor); 0 of 8 bytes recovered"))
    }

    /// File offsets of the block headers of the zstd frame at `frameStart` (RFC 8878, 3.1.1).
    private func zstdBlockOffsets(_ bytes: [UInt8], frameStart: Int) -> [Int] {
        let descriptor = bytes[frameStart + 4]
        let singleSegment = descriptor & 0x20 != 0
        let contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][Int(descriptor >> 6)]
        let dictionaryBytes = [0, 1, 2, 4][Int(descriptor & 3)]
        var position = frameStart + 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes
        var offsets: [Int] = []
        while position + 3 <= bytes.count {
            offsets.append(position)
            let header = Int(bytes[position]) | Int(bytes[position + 1]) << 8 | Int(bytes[position + 2]) << 16
            let last = header & 1 != 0, type = (header >> 1) & 3, size = header >> 3
            position += 3 + (type == 1 ? 1 : size)
            if last { break }
        }
        return offsets
    }
}
