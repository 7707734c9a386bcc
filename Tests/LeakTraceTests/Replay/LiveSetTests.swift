import XCTest
import TraceFormat
@testable import LiveSet

final class LiveSetTableTests: XCTestCase {
    func testTableMatchesDictionaryUnderRandomChurn() {
        var table = LiveBlockTable(minimumCapacity: 16)
        var reference: [UInt64: UInt64] = [:]
        var generator = SeededGenerator(seed: 42)
        for step in 0..<200_000 {
            // A small address space so that inserts collide with live keys and removes hit.
            let address = (generator.next() % 5_000 + 1) * 16
            if generator.next() % 3 == 0 {
                XCTAssertEqual(table.remove(address)?.size, reference.removeValue(forKey: address))
            } else {
                let size = UInt64(step)
                let replaced = table.insert(LiveBlock(address: address, size: size, time: 0, stack: 1,
                                                      path: .heap, function: .malloc))
                XCTAssertEqual(replaced?.size, reference.updateValue(size, forKey: address))
            }
        }
        XCTAssertEqual(table.count, reference.count)
        XCTAssertEqual(table.totalBytes, reference.values.reduce(0, +))
        for (address, size) in reference { XCTAssertEqual(table.block(at: address)?.size, size) }
        var seen = 0
        table.forEach { block in
            seen += 1
            XCTAssertEqual(reference[block.address], block.size)
        }
        XCTAssertEqual(seen, reference.count)
    }

    /// Every block counts in its slot, including the one whose new slot makes the count storage
    /// grow: the storage pointer was read before the slot lookup moved it, so that block's count
    /// went to freed memory (leakreport aborted with "malloc(): mismatching next->prev_size" on a
    /// trace of bash, whose 1,500 stacks outgrow the first 64 slots).
    func testSiteAccountingCountsEveryBlockAcrossStorageGrowth() {
        let accounting = SiteAccounting { stack, _ in Int(stack.id) - 1 }
        var blocks: [LiveBlock] = []
        for id in UInt32(1)...300 {
            for k in 0..<Int(id % 3 + 1) {
                let block = LiveBlock(address: UInt64(id) << 20 | UInt64(k) << 4, size: UInt64(id), time: 7,
                                      stack: id, path: .heap, function: .malloc)
                accounting.allocated(block, time: 7)
                blocks.append(block)
            }
        }
        XCTAssertEqual(accounting.slotCount, 300)
        var counts = accounting.counts
        for id in 1...300 {
            XCTAssertEqual(counts[id - 1].blocks, id % 3 + 1, "stack \(id)")
            XCTAssertEqual(counts[id - 1].bytes, Int64(id * (id % 3 + 1)), "stack \(id)")
        }
        for block in blocks where block.stack % 2 == 0 { accounting.released(block) }
        counts = accounting.counts
        XCTAssertEqual(counts[63].blocks, 0)
        XCTAssertEqual(counts[64].blocks, 65 % 3 + 1)
        var expectedLive: UInt64 = 0
        for id in stride(from: 1, through: 299, by: 2) { expectedLive += UInt64(id * (id % 3 + 1)) }
        XCTAssertEqual(accounting.liveBytes, expectedLive)
    }

    /// A mapped table (past `hugePageBytes`) grows in place when asked to (mremap, then each block moved once); its
    /// layout, and so the order `forEach` visits blocks in (which picks among a group's equal
    /// blocks in the reports), must be the one growing by copying gives. Addresses spread over
    /// the whole hash range, with churn, so that clusters wrap around the table's end.
    func testGrowingInPlaceKeepsTheLayoutOfGrowingByCopying() {
        var inPlace = LiveBlockTable(minimumCapacity: 16)
        inPlace.inPlaceGrowthFromBytes = 0
        var copying = LiveBlockTable(minimumCapacity: 16)
        copying.inPlaceGrowthFromBytes = .max
        var generator = SeededGenerator(seed: 7)
        var live: [UInt64] = []
        for step in 0..<700_000 {
            if step % 4 == 3, !live.isEmpty {
                let index = Int(generator.next() % UInt64(live.count))
                live.swapAt(index, live.count - 1)
                let address = live.removeLast()
                XCTAssertEqual(inPlace.remove(address)?.size, copying.remove(address)?.size)
            } else {
                let address = (generator.next() | 1) & 0x0000_7FFF_FFFF_FFF0 | 0x10
                let block = LiveBlock(address: address, size: UInt64(step), time: UInt64(step) * 1000,
                                      stack: UInt32(step % 1000), path: .heap, function: .malloc)
                XCTAssertEqual(inPlace.insert(block)?.size, copying.insert(block)?.size)
                live.append(address)
            }
        }
        XCTAssertGreaterThanOrEqual(inPlace.bufferBytes, 4 * LiveTableMemory.hugePageBytes)
        XCTAssertEqual(inPlace.bufferBytes, copying.bufferBytes)
        XCTAssertEqual(inPlace.count, copying.count)
        XCTAssertEqual(inPlace.totalBytes, copying.totalBytes)
        XCTAssertTrue(inPlace.allBlocks == copying.allBlocks, "the same blocks in the same order")
        for address in live.prefix(10_000) { XCTAssertEqual(inPlace.block(at: address)?.address, address) }
    }

    /// The same with runs of blocks that share one home at every capacity: a run longer than
    /// 14 takes the in-place growth's far-distance path, and a run at the last slot wraps
    /// around the table's end, so that blocks wait for the chains of the last step. (Any
    /// 64-bit address: the table has 24-byte slots.)
    func testGrowingInPlaceKeepsTheLayoutWithLongRunsAndRunsThatWrap() {
        var inPlace = LiveBlockTable(minimumCapacity: 16, wideSlots: true)
        inPlace.inPlaceGrowthFromBytes = 0
        var copying = LiveBlockTable(minimumCapacity: 16, wideSlots: true)
        copying.inPlaceGrowthFromBytes = .max
        // The address whose hash (the product with the table's multiplier) is `product`.
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        var inverse = multiplier
        for _ in 0..<6 { inverse = inverse &* (2 &- multiplier &* inverse) }
        XCTAssertEqual(multiplier &* inverse, 1)
        func address(hashing product: UInt64) -> UInt64 { product &* inverse }
        var generator = SeededGenerator(seed: 5)
        var live: [UInt64] = []
        for step in 0..<450_000 {
            var addresses = [generator.next() | 0x10]
            if step % 5_000 == 0 {
                // 40 blocks whose hashes share their top 24 bits: one home up to 2^24 slots.
                let top = step == 0 ? UInt64(0xFF_FFFF) : generator.next() >> 40
                addresses = (1...40).map { address(hashing: top << 40 | UInt64($0) << 8) }
            }
            for address in addresses {
                let block = LiveBlock(address: address, size: UInt64(step), time: 0, stack: 1, path: .heap,
                                      function: .malloc)
                XCTAssertEqual(inPlace.insert(block)?.size, copying.insert(block)?.size)
                live.append(address)
            }
            if step % 7 == 6 {
                let index = Int(generator.next() % UInt64(live.count))
                live.swapAt(index, live.count - 1)
                let address = live.removeLast()
                XCTAssertEqual(inPlace.remove(address)?.size, copying.remove(address)?.size)
            }
        }
        XCTAssertTrue(inPlace.isWide)
        XCTAssertGreaterThanOrEqual(inPlace.bufferBytes, 4 * LiveTableMemory.hugePageBytes)
        XCTAssertEqual(inPlace.bufferBytes, copying.bufferBytes)
        XCTAssertEqual(inPlace.count, copying.count)
        XCTAssertTrue(inPlace.allBlocks == copying.allBlocks, "the same blocks in the same order")
        for address in live { XCTAssertEqual(inPlace.block(at: address)?.address, address) }
    }

    /// Giving back the pages without a block keeps every block, and their order; blocks added
    /// afterwards land in the pages given back.
    func testReleasingEmptyPagesKeepsBlocksAndOrder() {
        var table = LiveBlockTable(minimumCapacity: 16)
        var generator = SeededGenerator(seed: 11)
        var addresses: [UInt64] = []
        for step in 0..<200_000 {
            let address = generator.next() & 0x0000_7FFF_FFFF_FFF0 | 0x10
            table.insert(LiveBlock(address: address, size: UInt64(step), time: 0, stack: 1, path: .heap,
                                   function: .malloc))
            addresses.append(address)
        }
        for address in addresses.dropFirst(500) { table.remove(address) }
        let before = table.allBlocks
        table.releaseEmptyPages()
        XCTAssertTrue(table.allBlocks == before)
        for address in addresses.prefix(500) { XCTAssertEqual(table.block(at: address)?.address, address) }
        for address in addresses.dropFirst(500).prefix(50_000) {
            XCTAssertNil(table.block(at: address))
            table.insert(LiveBlock(address: address, size: 1, time: 0, stack: 2, path: .heap, function: .malloc))
        }
        XCTAssertEqual(table.count, 50_500)
        for address in addresses.prefix(50_500) { XCTAssertEqual(table.block(at: address)?.address, address) }
    }

    func testAddressZeroIsNeverStored() {
        var table = LiveBlockTable()
        XCTAssertNil(table.insert(LiveBlock(address: 0, size: 5, time: 0, stack: 0, path: .heap, function: .malloc)))
        XCTAssertEqual(table.count, 0)
        XCTAssertNil(table.remove(0))
    }

    func testStoredBlocksAreSixteenBytesUntilOneDoesNotFit() {
        XCTAssertEqual(MemoryLayout<NarrowBlock>.stride, 16)
        XCTAssertEqual(MemoryLayout<WideBlock>.stride, 24)
        var table = LiveBlockTable(minimumCapacity: 1024)
        XCTAssertEqual(table.bufferBytes, 1024 * 16)
        table.insert(LiveBlock(address: 0x10, size: 1, time: 0, stack: 1, path: .heap, function: .malloc))
        XCTAssertEqual(table.bufferBytes, 1024 * 16)
        table.insert(LiveBlock(address: 1 << 48, size: 1, time: 0, stack: 1, path: .heap, function: .malloc))
        XCTAssertTrue(table.isWide)
        XCTAssertEqual(table.bufferBytes, 1024 * 24)
        XCTAssertEqual(table.count, 2)
    }

    /// Sizes from 16 MiB - 1 on do not fit a 16-byte slot's field and go to the side map; the
    /// slots stay 16 bytes, and every size and total comes back exact.
    func testHugeSizesAndMillisecondTimes() {
        var table = LiveBlockTable(minimumCapacity: 16)
        let huge: UInt64 = 5 << 32 + 7
        let marker: UInt64 = 1 << 24 - 1
        table.insert(LiveBlock(address: 0x1000, size: huge, time: 2_345_678, stack: 3, path: .mmapThreshold,
                               function: .calloc, flags: .inherited))
        table.insert(LiveBlock(address: 0x2000, size: UInt64(UInt32.max) - 1, time: 999, stack: 4, path: .heap, function: .malloc))
        table.insert(LiveBlock(address: 0x3000, size: marker, time: 0, stack: 5, path: .heap, function: .pvalloc))
        table.insert(LiveBlock(address: 0x4000, size: marker - 1, time: 0, stack: 6, path: .threadArena,
                               function: .realloc))
        XCTAssertFalse(table.isWide)
        XCTAssertEqual(table.totalBytes, huge + UInt64(UInt32.max) - 1 + marker + marker - 1)
        XCTAssertEqual(table.block(at: 0x1000),
                       LiveBlock(address: 0x1000, size: huge, time: 2_345_000, stack: 3, path: .mmapThreshold,
                                 function: .calloc, flags: .inherited))
        XCTAssertEqual(table.block(at: 0x2000)?.time, 0)
        XCTAssertEqual(table.block(at: 0x3000), LiveBlock(address: 0x3000, size: marker, time: 0, stack: 5, path: .heap,
                                                          function: .pvalloc))
        XCTAssertEqual(table.block(at: 0x4000), LiveBlock(address: 0x4000, size: marker - 1, time: 0, stack: 6,
                                                          path: .threadArena, function: .realloc))
        // Replacing a huge block by a small one, then removing it, leaves the totals exact.
        XCTAssertEqual(table.insert(LiveBlock(address: 0x1000, size: 8, time: 0, stack: 1, path: .heap, function: .malloc))?.size, huge)
        XCTAssertEqual(table.totalBytes, 8 + UInt64(UInt32.max) - 1 + marker + marker - 1)
        XCTAssertEqual(table.remove(0x1000)?.size, 8)
        XCTAssertEqual(table.remove(0x2000)?.size, UInt64(UInt32.max) - 1)
        XCTAssertEqual(table.remove(0x3000)?.size, marker)
        XCTAssertEqual(table.remove(0x4000)?.size, marker - 1)
        XCTAssertEqual(table.totalBytes, 0)
        XCTAssertFalse(table.isWide)
    }

    /// Each field that can outgrow a 16-byte slot moves the table to 24-byte slots when a block
    /// first needs it, in a table big enough to be mapped and grown in place: no block is cut or
    /// lost, and the blocks keep the order a table of 24-byte slots from the start gives them
    /// (the order reports meet equal blocks in). Without such a block the two layouts give the
    /// same order too.
    func testABlockThatDoesNotFitSixteenBytesMovesTheTableToTwentyFourKeepingEveryBlockAndTheOrder() {
        let tooBig: [(String, LiveBlock, step: Int)] = [
            ("no field too big", LiveBlock(address: 0x7FFF_FFFF_FFF0, size: 1 << 30, time: (1 << 25 - 1) * 1000,
                                         stack: 1 << 24 - 1, path: .threadArena, function: .pvalloc, flags: .inherited),
             100_000),
            ("address", LiveBlock(address: 1 << 48 | 0x10, size: 32, time: 5_000, stack: 9, path: .heap, function: .malloc),
             100_000),
            // Early, while the slots are still the allocator's (not mapped): widened by copying.
            ("address, small table", LiveBlock(address: 1 << 48 | 0x10, size: 32, time: 5_000, stack: 9, path: .heap,
                                               function: .malloc), 1_000),
            ("stack", LiveBlock(address: 0x10, size: 32, time: 5_000, stack: 1 << 24, path: .heap, function: .malloc),
             100_000),
            ("time", LiveBlock(address: 0x10, size: 32, time: (1 << 25) * 1000, stack: 9, path: .heap, function: .malloc),
             100_000),
            ("flags", LiveBlock(address: 0x10, size: 32, time: 5_000, stack: 9, path: .heap, function: .malloc,
                                flags: BlockFlags(rawValue: 2)), 100_000),
        ]
        for (name, odd, oddStep) in tooBig {
            var narrowFirst = LiveBlockTable(minimumCapacity: 16)
            var wideAlways = LiveBlockTable(minimumCapacity: 16, wideSlots: true)
            var reference: [UInt64: LiveBlock] = [:]
            var generator = SeededGenerator(seed: 3)
            var live: [UInt64] = []
            // The odd block stays to the end (it is not among the blocks churned).
            func insert(_ block: LiveBlock, churned: Bool = true) {
                let replaced = reference.updateValue(block, forKey: block.address)
                XCTAssertEqual(narrowFirst.insert(block), replaced, name)
                XCTAssertEqual(wideAlways.insert(block), replaced, name)
                if replaced == nil && churned { live.append(block.address) }
            }
            for step in 0..<200_000 {
                if step == oddStep { insert(odd, churned: false) }
                if step % 4 == 3, !live.isEmpty {
                    let index = Int(generator.next() % UInt64(live.count))
                    live.swapAt(index, live.count - 1)
                    let address = live.removeLast()
                    let removed = reference.removeValue(forKey: address)
                    XCTAssertEqual(narrowFirst.remove(address), removed, name)
                    XCTAssertEqual(wideAlways.remove(address), removed, name)
                } else {
                    let address = generator.next() & 0x0000_7FFF_FFFF_FFF0 | 0x10
                    insert(LiveBlock(address: address, size: UInt64(step % 5000) << 12, time: UInt64(step) * 1000,
                                     stack: UInt32(step % 1000), path: .heap, function: .calloc))
                }
            }
            XCTAssertEqual(narrowFirst.isWide, name != "no field too big", name)
            XCTAssertEqual(narrowFirst.bufferBytes, wideAlways.bufferBytes / 3 * (narrowFirst.isWide ? 3 : 2), name)
            XCTAssertGreaterThan(narrowFirst.bufferBytes, LiveTableMemory.hugePageBytes, name)
            XCTAssertEqual(narrowFirst.count, reference.count, name)
            XCTAssertEqual(narrowFirst.totalBytes, reference.values.reduce(0) { $0 + $1.size }, name)
            XCTAssertEqual(narrowFirst.block(at: odd.address), odd, name)
            let blocks = narrowFirst.allBlocks
            XCTAssertTrue(blocks == wideAlways.allBlocks, "\(name): the same blocks in the same order")
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: blocks.map { ($0.address, $0) }), reference, name)
        }
    }
}

final class LiveSetStackTrieTests: XCTestCase {
    func testInterningSharesPrefixesAndRoundTrips() {
        let trie = StackTrie()
        let a = trie.intern(frames: [0x10, 0x20, 0x30])
        let b = trie.intern(frames: [0x11, 0x20, 0x30])
        XCTAssertEqual(trie.count, 4)   // 0x30, 0x20 shared; 0x10 and 0x11 leaves
        XCTAssertEqual(trie.frames(a), [0x10, 0x20, 0x30])
        XCTAssertEqual(trie.frames(b), [0x11, 0x20, 0x30])
        XCTAssertEqual(trie.intern(frames: [0x10, 0x20, 0x30]), a)
        XCTAssertEqual(trie.frames(a, limit: 2), [0x10, 0x20])
        XCTAssertEqual(trie.frames(99), [])
        XCTAssertEqual(trie.intern(frames: []), 0)
    }

    func testAppendRejectsUndefinedParent() {
        let trie = StackTrie()
        XCTAssertEqual(trie.append(parent: 0, ip: 0x100), 1)
        XCTAssertEqual(trie.append(parent: 7, ip: 0x200), 2)   // 7 not defined: rooted at 0
        XCTAssertEqual(trie.frames(2), [0x200])
    }
}

final class LiveSetMappingTests: XCTestCase {
    private func anonymous(_ start: UInt64, _ end: UInt64) -> Mapping {
        Mapping(start: start, end: end, kind: .privateAnonymous, path: "", stack: 1, time: 0)
    }

    func testPartialUnmapSplitsAndTrims() {
        var set = MappingSet()
        set.insert(anonymous(0x10000, 0x20000))
        set.remove(from: 0x14000, to: 0x15000)   // hole in the middle
        XCTAssertEqual(set.mappings.map { [$0.start, $0.end] }, [[0x10000, 0x14000], [0x15000, 0x20000]])
        set.remove(from: 0xF000, to: 0x11000)    // head
        set.remove(from: 0x1F000, to: 0x30000)   // tail
        XCTAssertEqual(set.mappings.map { [$0.start, $0.end] }, [[0x11000, 0x14000], [0x15000, 0x1F000]])
        XCTAssertEqual(set.totalBytes, 0x3000 + 0xA000)
        set.remove(from: 0, to: 0x100000)
        XCTAssertEqual(set.count, 0)
    }

    func testFixedMappingReplacesOverlap() {
        var set = MappingSet()
        set.insert(anonymous(0x10000, 0x20000))
        set.insert(Mapping(start: 0x18000, end: 0x28000, kind: .sharedFile, path: "/tmp/f", stack: 2, time: 5))
        XCTAssertEqual(set.mappings.map(\.kind), [.privateAnonymous, .sharedFile])
        XCTAssertEqual(set.mappings.map(\.end), [0x18000, 0x28000])
    }

    func testRemapMovesAndKeepsAttributes() {
        var set = MappingSet()
        set.insert(Mapping(start: 0x10000, end: 0x12000, kind: .privateFile, path: "/lib/x", stack: 3, time: 9))
        XCTAssertTrue(set.remap(oldStart: 0x10000, oldSize: 0x2000, newStart: 0x50000, newSize: 0x8000, keepOld: false))
        XCTAssertEqual(set.mappings, [Mapping(start: 0x50000, end: 0x58000, kind: .privateFile, path: "/lib/x", stack: 3, time: 9)])
        XCTAssertFalse(set.remap(oldStart: 0x90000, oldSize: 0x1000, newStart: 0xA0000, newSize: 0x1000, keepOld: false))
    }

    func testKindFromFlags() {
        XCTAssertEqual(MappingKind(flags: 0x22, fd: -1, path: ""), .privateAnonymous)
        XCTAssertEqual(MappingKind(flags: 0x21, fd: -1, path: ""), .sharedAnonymous)
        XCTAssertEqual(MappingKind(flags: 0x02, fd: 3, path: "/f"), .privateFile)
        XCTAssertEqual(MappingKind(flags: 0x03, fd: 3, path: "/f"), .sharedFile)
    }
}

final class LiveSetThresholdTests: XCTestCase {
    func testChunkSizeFormula() {
        let tracker = MmapThresholdTracker(headerThreshold: nil, pageSize: 4096, mallocEnvironment: [])
        // 200000 + 8 rounded to 16 = 200016, + 8 = 200024, rounded to pages = 49 * 4096.
        XCTAssertEqual(tracker.mmappedChunkSize(requestSize: 200_000), 200_704)
        XCTAssertEqual(tracker.mmappedChunkSize(requestSize: 4088), 8192)
        XCTAssertEqual(tracker.mmappedChunkSize(requestSize: 4072), 4096)
    }

    func testDynamicRaiseStopsAfterMallopt() {
        var tracker = MmapThresholdTracker(headerThreshold: 131_072, pageSize: 4096, mallocEnvironment: [])
        tracker.freedMmappedBlock(requestSize: 100_000, time: 1)       // below threshold: no raise
        tracker.freedMmappedBlock(requestSize: 1_000_000, time: 2)     // 1003520 chunk
        tracker.freedMmappedBlock(requestSize: 40 << 20, time: 3)      // above 32 MiB: no raise
        XCTAssertEqual(tracker.current, 1_003_520)
        tracker.mallopt(parameter: MalloptParameter.mmapThreshold, value: 65536, result: 1, time: 4)
        tracker.freedMmappedBlock(requestSize: 2_000_000, time: 5)     // fixed now
        XCTAssertEqual(tracker.current, 65536)
        XCTAssertFalse(tracker.isDynamic)
        XCTAssertEqual(tracker.history, [
            ThresholdChange(time: 2, oldValue: 131_072, newValue: 1_003_520,
                            reason: .freedMmappedBlock(requestSize: 1_000_000, chunkSize: 1_003_520)),
            ThresholdChange(time: 4, oldValue: 1_003_520, newValue: 65536, reason: .mallopt),
        ])
        XCTAssertEqual(tracker.threshold(at: 1), 131_072)
        XCTAssertEqual(tracker.threshold(at: 3), 1_003_520)
        XCTAssertEqual(tracker.threshold(at: 9), 65536)
    }

    func testRefusedMalloptAndEnvironment() {
        var tracker = MmapThresholdTracker(headerThreshold: nil, pageSize: 4096, mallocEnvironment: [])
        tracker.mallopt(parameter: MalloptParameter.mmapThreshold, value: 1 << 40, result: 0, time: 1)
        XCTAssertTrue(tracker.isDynamic)
        XCTAssertEqual(tracker.history, [])
        let fixed = MmapThresholdTracker(headerThreshold: 1 << 20, pageSize: 4096,
                                         mallocEnvironment: ["GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576"])
        XCTAssertFalse(fixed.isDynamic)
        XCTAssertEqual(fixed.initial, 1 << 20)
    }
}

final class LiveSetReplayTests: XCTestCase {
    private func header() -> TraceHeader {
        var header = TraceHeader()
        header.pageSize = 4096
        header.mmapThreshold = 131_072
        return header
    }

    func testAllocFreeReallocAndUnknownFree() {
        var replay = Replayer(header: header())
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x1000, size: 24, stack: 1), tid: 1, time: 10_000)
        replay.apply(.alloc(function: .calloc, path: .heap, address: 0x2000, size: 100, stack: 2), tid: 1, time: 11_000)
        replay.apply(.free(address: 0x1000), tid: 1, time: 12_000)
        replay.apply(.free(address: 0x9999), tid: 2, time: 13_000)   // never allocated
        // realloc moves 0x2000 to 0x3000 with 300 bytes.
        replay.apply(.reallocRelease(address: 0x2000), tid: 1, time: 14_000)
        replay.apply(.realloc(status: .movedOrResized, path: .heap, isReallocarray: false,
                              old: 0x2000, new: 0x3000, size: 300, stack: 3), tid: 1, time: 14_000)
        // A failed realloc restores the old block untouched.
        replay.apply(.reallocRelease(address: 0x3000), tid: 1, time: 15_000)
        XCTAssertNil(replay.live.block(at: 0x3000))
        replay.apply(.realloc(status: .failed, path: .unknown, isReallocarray: false,
                              old: 0x3000, new: 0, size: 1 << 50, stack: 4), tid: 1, time: 15_000)
        XCTAssertEqual(replay.live.allBlocks,
                       [LiveBlock(address: 0x3000, size: 300, time: 14_000, stack: 3, path: .heap, function: .realloc)])
        XCTAssertEqual(replay.counters.unknownReleases, 1)
        XCTAssertEqual(replay.unknownReleaseExamples,
                       [UnknownRelease(address: 0x9999, tid: 2, time: 13_000, viaRealloc: false)])
        XCTAssertEqual(replay.counters.failedReallocs, 1)
        XCTAssertEqual(replay.peakLiveBytes, 300)   // 124 live before the free, 300 after the move
        XCTAssertEqual(replay.lowestHeapAddress, 0x1000)
    }

    func testReallocToZeroFreesAndInterleavedThreads() {
        var replay = Replayer(header: header())
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x1000, size: 8, stack: 1), tid: 1, time: 0)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x2000, size: 8, stack: 1), tid: 2, time: 0)
        replay.apply(.reallocRelease(address: 0x1000), tid: 1, time: 1)
        replay.apply(.reallocRelease(address: 0x2000), tid: 2, time: 1)
        // Thread 2's realloc fails, thread 1's frees.
        replay.apply(.realloc(status: .failed, path: .unknown, isReallocarray: true, old: 0x2000, new: 0, size: 9, stack: 1), tid: 2, time: 2)
        replay.apply(.realloc(status: .freed, path: .unknown, isReallocarray: false, old: 0x1000, new: 0, size: 0, stack: 1), tid: 1, time: 2)
        XCTAssertEqual(replay.live.allBlocks.map(\.address), [0x2000])
        XCTAssertEqual(replay.counters.unknownReleases, 0)
    }

    /// The realloc in flight is kept in one inline slot, others in a list: a thread whose earlier
    /// REALLOC never came (a damaged trace) has its stale release replaced wherever it waits, and
    /// a REALLOC matches only its own thread's newest release.
    func testReallocsInFlightOnSeveralThreadsWithAMissingRealloc() {
        var replay = Replayer(header: header())
        for (address, tid) in [(0x1000, 1), (0x2000, 2), (0x3000, 2)] as [(UInt64, UInt64)] {
            replay.apply(.alloc(function: .malloc, path: .heap, address: address, size: 8, stack: 1), tid: tid, time: 0)
        }
        replay.apply(.reallocRelease(address: 0x1000), tid: 1, time: 1)   // the inline slot
        replay.apply(.reallocRelease(address: 0x2000), tid: 2, time: 1)   // the list
        replay.apply(.realloc(status: .movedOrResized, path: .heap, isReallocarray: false, old: 0x1000, new: 0x1100,
                              size: 16, stack: 2), tid: 1, time: 2)
        // Thread 2's REALLOC of 0x2000 never came: its next release replaces the one in the list.
        replay.apply(.reallocRelease(address: 0x3000), tid: 2, time: 3)
        // A late REALLOC of 0x2000 finds nothing in flight, and 0x2000 is no longer live.
        replay.apply(.realloc(status: .movedOrResized, path: .heap, isReallocarray: false, old: 0x2000, new: 0x2100,
                              size: 32, stack: 3), tid: 2, time: 4)
        replay.apply(.realloc(status: .movedOrResized, path: .heap, isReallocarray: false, old: 0x3000, new: 0x3100,
                              size: 48, stack: 4), tid: 2, time: 4)
        XCTAssertEqual(replay.live.allBlocks.sorted { $0.address < $1.address }.map { [$0.address, $0.size] },
                       [[0x1100, 16], [0x2100, 32], [0x3100, 48]])
        XCTAssertEqual(replay.unknownReleaseExamples,
                       [UnknownRelease(address: 0x2000, tid: 2, time: 4, viaRealloc: true)])
        // A failed realloc on thread 1 still gets its own block back while thread 2 has one in flight.
        replay.apply(.reallocRelease(address: 0x2100), tid: 2, time: 5)
        replay.apply(.reallocRelease(address: 0x1100), tid: 1, time: 5)
        replay.apply(.realloc(status: .failed, path: .unknown, isReallocarray: false, old: 0x1100, new: 0,
                              size: 1 << 40, stack: 5), tid: 1, time: 6)
        replay.apply(.realloc(status: .freed, path: .unknown, isReallocarray: false, old: 0x2100, new: 0,
                              size: 0, stack: 5), tid: 2, time: 6)
        XCTAssertEqual(replay.live.allBlocks.map(\.address).sorted(), [0x1100, 0x3100])
        XCTAssertEqual(replay.counters.unknownReleases, 1)
    }

    /// The whole-trace replay applies allocations some events after decoding them; a MODULES
    /// record's snapshot is added to the reader when the record is decoded, and naming a new
    /// stack's site during the replay looks it up in the newest snapshot. So the allocations
    /// before a MODULES record must be applied before it is decoded (an allocation from a
    /// library just before its dlclose must still find the library).
    func testQueuedAllocationsAreAppliedUnderTheirOwnModuleSnapshot() throws {
        var builder = TraceBuilder()
        var chunk = ChunkRecords()
        for round in 0..<3 {
            chunk.append(.modules(generation: UInt64(round), modules: []))
            for index in 0..<5 {
                chunk.append(.alloc(function: .malloc, path: .heap, address: UInt64(round * 100 + index + 1) * 16,
                                    size: 8, stack: 0))
            }
        }
        chunk.append(.free(address: 16))
        builder.appendChunk(chunk)
        let reader = try TraceReader(bytes: builder.bytes, name: "modules-between-allocations")
        var replayer = Replayer(header: reader.header)
        final class Seen { var snapshots: [Int] = [] }
        let seen = Seen()
        replayer.observer = { event in
            if case .allocated = event { seen.snapshots.append(reader.moduleMaps.count) }
        }
        _ = replayer.replay(reader)
        XCTAssertEqual(seen.snapshots, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3])
        XCTAssertEqual(replayer.live.count, 14)
    }

    /// A whole-trace replay (no hook: its own visitor, with the live table's uniqueness checks
    /// skipped) must end exactly where a replay with a hook ends, and tell an observer the same
    /// events in the same order: over several chunks, threads, failed, freeing and unreleased
    /// reallocs, duplicate and unknown addresses, mappings, marks, threshold changes and TIME
    /// records between them.
    func testWholeTraceReplayEqualsRecordByRecordReplay() throws {
        var generator = SeededGenerator(seed: 7)
        var builder = TraceBuilder()
        var stacks = ChunkRecords()
        for id in 1...20 { stacks.append(.stack(id: UInt32(id), parent: UInt32(id / 3), ip: 0x40_0000 + UInt64(id) * 8)) }
        builder.appendChunk(stacks)
        var time: UInt64 = 0
        var kept: UInt64 = 0
        for chunkIndex in 0..<12 {
            var chunk = ChunkRecords()
            chunk.append(.thread(tid: 100 + UInt64(chunkIndex % 3)))
            for _ in 0..<2_000 {
                let roll = generator.next() % 100
                // A small address space: frees and reallocs often hit live blocks, sometimes not.
                let address = 0x10_0000 + (generator.next() % 600) * 16
                let stack = UInt32(1 + generator.next() % 20)
                switch roll {
                case 0..<40:
                    chunk.append(.alloc(function: .malloc, path: roll < 35 ? .heap : .mmapThreshold, address: address,
                                        size: 16 + generator.next() % 300_000, stack: stack))
                case 40..<75:
                    chunk.append(.free(address: address))
                case 75..<90:
                    let status: ReallocStatus = roll < 85 ? .movedOrResized : roll < 88 ? .failed : .freed
                    chunk.append(.reallocRelease(address: address))
                    // Now and then the REALLOC comes after another record, or never.
                    if roll == 80 { chunk.append(.time(microseconds: time)) }
                    if roll != 81 {
                        chunk.append(.realloc(status: status, path: .heap, isReallocarray: roll == 82, old: address,
                                              new: status == .movedOrResized ? 0x10_0000 + (generator.next() % 600) * 16 : 0,
                                              size: 1 + generator.next() % 500, stack: stack))
                    }
                case 90..<94:
                    time += 1 + generator.next() % 3_000
                    chunk.append(.time(microseconds: time))
                case 94..<96:
                    chunk.append(.thread(tid: 100 + generator.next() % 3))
                case 96..<98:
                    chunk.append(.mmap(addressArgument: 0, length: 8192, prot: 3, flags: 0x22, fd: -1, offset: 0,
                                       result: 0x7000_0000 + (generator.next() % 8) * 0x10000, errno: 0, path: "",
                                       stack: stack))
                case 98:
                    chunk.append(.munmap(address: 0x7000_0000 + (generator.next() % 8) * 0x10000, length: 8192,
                                         result: 0, errno: 0, stack: stack))
                default:
                    // A large heap block (kept to the end) with a threshold change right after it
                    // and a mark: the block records the threshold of its own allocation.
                    chunk.append(.alloc(function: .malloc, path: .heap, address: 0x20_0000 + kept * 16,
                                        size: 200_000, stack: stack))
                    kept += 1
                    chunk.append(.mallopt(parameter: MalloptParameter.mmapThreshold,
                                          value: 150_000 + Int64(generator.next() % 100_000), result: 1))
                    chunk.append(.mark(name: "m", source: 0))
                }
            }
            builder.appendChunk(chunk, codec: chunkIndex % 2 == 0 ? .raw : .zstd)
        }
        let path = try temporaryFile(builder.bytes)

        final class Events { var list: [ReplayEvent] = [] }
        func replay(applyingEachAtOnce: Bool) throws -> (replayer: Replayer, events: [ReplayEvent]) {
            let reader = try TraceReader(path: path)
            var replayer = Replayer(header: reader.header)
            let events = Events()
            replayer.observer = { events.list.append($0) }
            let outcome = applyingEachAtOnce ? replayer.replay(reader, hook: { _, _, _ in }) : replayer.replay(reader)
            XCTAssertFalse(outcome.stoppedByLimit)
            return (replayer, events.list)
        }
        let whole = try replay(applyingEachAtOnce: false), stepped = try replay(applyingEachAtOnce: true)
        XCTAssertGreaterThan(whole.events.count, 10_000)
        XCTAssertEqual(whole.events, stepped.events)
        let order = { (lhs: LiveBlock, rhs: LiveBlock) in lhs.address < rhs.address }
        XCTAssertEqual(whole.replayer.live.allBlocks.sorted(by: order), stepped.replayer.live.allBlocks.sorted(by: order))
        XCTAssertEqual(whole.replayer.counters, stepped.replayer.counters)
        XCTAssertGreaterThan(whole.replayer.counters.unknownReleases, 0)
        XCTAssertGreaterThan(whole.replayer.counters.duplicateAllocs, 0)
        XCTAssertGreaterThan(whole.replayer.counters.failedReallocs, 0)
        XCTAssertEqual(whole.replayer.unknownReleaseExamples, stepped.replayer.unknownReleaseExamples)
        XCTAssertEqual(whole.replayer.duplicateAllocExamples, stepped.replayer.duplicateAllocExamples)
        XCTAssertEqual(whole.replayer.mappings.mappings, stepped.replayer.mappings.mappings)
        XCTAssertEqual(whole.replayer.peakLiveBytes, stepped.replayer.peakLiveBytes)
        XCTAssertEqual(whole.replayer.peakLiveTime, stepped.replayer.peakLiveTime)
        XCTAssertEqual(whole.replayer.lowestHeapAddress, stepped.replayer.lowestHeapAddress)
        XCTAssertEqual(whole.replayer.largeHeapBlocks, stepped.replayer.largeHeapBlocks)
        XCTAssertGreaterThan(Set(whole.replayer.largeHeapBlocks.values.map(\.threshold)).count, 1)
        XCTAssertEqual(whole.replayer.threshold.history, stepped.replayer.threshold.history)
        XCTAssertEqual(whole.replayer.lastTime, stepped.replayer.lastTime)
    }

    func testDuplicateAllocReplaces() {
        var replay = Replayer(header: header())
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x1000, size: 8, stack: 1), tid: 1, time: 0)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x1000, size: 16, stack: 2), tid: 1, time: 1)
        XCTAssertEqual(replay.counters.duplicateAllocs, 1)
        XCTAssertEqual(replay.live.totalBytes, 16)
        XCTAssertEqual(replay.duplicateAllocExamples.map(\.size), [8])
    }

    func testFreeOfMmappedBlockRaisesThreshold() {
        var replay = Replayer(header: header())
        replay.apply(.alloc(function: .malloc, path: .mmapThreshold, address: 0x7000_0000, size: 300_000, stack: 1), tid: 1, time: 5)
        replay.apply(.free(address: 0x7000_0000), tid: 1, time: 6)
        XCTAssertEqual(replay.threshold.current, 303_104)   // (300000+8 -> 300016) + 8 -> 74 pages
        XCTAssertEqual(replay.threshold.history.map(\.time), [6])
    }

    func testLargeHeapBlocksRememberTheThresholdOfTheirAllocation() {
        var replay = Replayer(header: header())
        replay.apply(.alloc(function: .malloc, path: .mmapThreshold, address: 0x7000_0000, size: 300_000, stack: 1), tid: 1, time: 0)
        replay.apply(.free(address: 0x7000_0000), tid: 1, time: 0)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x1000, size: 200_000, stack: 1), tid: 1, time: 0)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x90000, size: 100, stack: 1), tid: 1, time: 0)
        // A later mallopt at the same coarse time does not change what held at the allocation.
        replay.apply(.mallopt(parameter: MalloptParameter.mmapThreshold, value: 65536, result: 1), tid: 1, time: 0)
        let context = replay.largeHeapBlocks[0x1000]
        XCTAssertEqual(context?.threshold, 303_104)
        XCTAssertEqual(context?.lastChange?.reason, .freedMmappedBlock(requestSize: 300_000, chunkSize: 303_104))
        XCTAssertEqual(replay.largeHeapBlocks.count, 1)
        replay.apply(.free(address: 0x1000), tid: 1, time: 0)
        XCTAssertEqual(replay.largeHeapBlocks.count, 0)
    }

    func testMappingRecords() {
        var replay = Replayer(header: header())
        replay.apply(.mmap(addressArgument: 0, length: 10_000, prot: 3, flags: 0x22, fd: -1, offset: 0,
                           result: 0x40000, errno: 0, path: "", stack: 1), tid: 1, time: 1)
        replay.apply(.mmap(addressArgument: 0, length: 4096, prot: 3, flags: 0x22, fd: -1, offset: 0,
                           result: failedAddress, errno: 12, path: "", stack: 1), tid: 1, time: 1)
        replay.apply(.munmap(address: 0x41000, length: 4096, result: 0, errno: 0, stack: 2), tid: 1, time: 2)
        replay.apply(.mremap(oldAddress: 0x42000, oldSize: 4096, newSize: 16384, flags: 1, newAddressArgument: 0,
                             result: 0x80000, errno: 0, stack: 3), tid: 1, time: 3)
        replay.apply(.mmap(addressArgument: 0, length: 100, prot: 1, flags: 0x01, fd: 3, offset: 0,
                           result: 0x90000, errno: 0, path: "/data/file", stack: 4), tid: 1, time: 4)
        XCTAssertEqual(replay.mappings.mappings.map { [$0.start, $0.end] },
                       [[0x40000, 0x41000], [0x80000, 0x84000], [0x90000, 0x91000]])
        XCTAssertEqual(replay.mappings.mappings.map(\.kind), [.privateAnonymous, .privateAnonymous, .sharedFile])
        XCTAssertEqual(replay.mappings.mappings.last?.path, "/data/file")
    }

    func testBreakGrowthPerStack() {
        var replay = Replayer(header: header())
        replay.apply(.sbrk(increment: 8192, result: 0x5000, breakAfter: 0x7000, stack: 7), tid: 1, time: 1)
        replay.apply(.sbrk(increment: 0, result: 0x7000, breakAfter: 0x7000, stack: 8), tid: 1, time: 2)
        replay.apply(.brk(addressArgument: 0x6000, result: 0, breakBefore: 0x7000, breakAfter: 0x6000, stack: 7), tid: 1, time: 3)
        replay.apply(.brk(addressArgument: 0x9000, result: -1, breakBefore: 0x6000, breakAfter: 0x6000, stack: 9), tid: 1, time: 4)
        XCTAssertEqual(replay.breakGrowth.count, 1)
        XCTAssertEqual(replay.breakGrowth[7]?.netBytes, 4096)
        XCTAssertEqual(replay.breakGrowth[7]?.calls, 2)
    }

    func testForkInheritanceReinternsStacks() {
        let parentStacks = StackTrie()
        let parentStack = parentStacks.intern(frames: [0xA, 0xB])
        var parent = Replayer(header: header())
        parent.apply(.alloc(function: .malloc, path: .heap, address: 0x1000, size: 10, stack: parentStack), tid: 1, time: 50)
        parent.apply(.mmap(addressArgument: 0, length: 4096, prot: 3, flags: 0x21, fd: -1, offset: 0,
                           result: 0x40000, errno: 0, path: "", stack: parentStack), tid: 1, time: 51)
        var child = Replayer(header: header())
        child.inherit(from: parent, parentStacks: parentStacks)
        child.apply(.alloc(function: .malloc, path: .heap, address: 0x2000, size: 5, stack: 1), tid: 2, time: 1)
        let inherited = try? XCTUnwrap(child.live.block(at: 0x1000))
        XCTAssertEqual(inherited?.isInherited, true)
        XCTAssertEqual(inherited?.time, 0)
        XCTAssertEqual(inherited.map { child.frames(of: $0.stackRef, in: StackTrie()) }, [0xA, 0xB])
        XCTAssertEqual(child.inheritedBlocks, 1)
        XCTAssertEqual(child.inheritedBytes, 10)
        XCTAssertEqual(child.mappings.mappings.first?.flags, .inherited)
        XCTAssertEqual(child.live.block(at: 0x2000)?.isInherited, false)
    }

    func testMemoryFollowsLiveBlocksNotEvents() {
        var replay = Replayer(header: header())
        let initialBuffer = replay.live.bufferBytes
        // Two million events, never more than 1000 blocks live.
        for index in 0..<1_000_000 {
            let address = UInt64(index % 1000 + 1) * 64
            if index >= 1000 { replay.apply(.free(address: address), tid: 1, time: 0) }
            replay.apply(.alloc(function: .malloc, path: .heap, address: address, size: 48, stack: 1), tid: 1, time: 0)
        }
        XCTAssertEqual(replay.live.count, 1000)
        XCTAssertEqual(replay.live.totalBytes, 48_000)
        XCTAssertEqual(replay.live.bufferBytes, initialBuffer)
        XCTAssertEqual(replay.counters.allocs, 1_000_000)
        XCTAssertEqual(replay.counters.frees, 999_000)
        XCTAssertEqual(replay.counters.unknownReleases, 0)
        XCTAssertEqual(replay.peakLiveBytes, 48_000)
    }

    func testObserverSeesEveryStep() {
        var replay = Replayer(header: header())
        var events: [ReplayEvent] = []
        replay.observer = { events.append($0) }
        let block = LiveBlock(address: 0x1000, size: 8, time: 0, stack: 1, path: .heap, function: .malloc)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x1000, size: 8, stack: 1), tid: 1, time: 0)
        replay.apply(.free(address: 0x1000), tid: 1, time: 0)
        replay.apply(.free(address: 0x1000), tid: 1, time: 0)
        XCTAssertEqual(events, [.allocated(block, replaced: nil), .released(block),
                                .unknownRelease(UnknownRelease(address: 0x1000, tid: 1, time: 0, viaRealloc: false))])
    }
}
