import XCTest
import TraceFormat
import LiveSet
import Symbolization
@testable import LeakAnalysis

/// The frame cache's per-stack answers (walked node by node, suppressions remembered per node)
/// against the same questions asked of each stack's frames one by one, and the tie-breaking sort
/// against a sort that names every item.
final class FrameCacheTests: XCTestCase {
    /// A fixed pseudo-random sequence (SplitMix64), so that a failure can be replayed.
    private struct Numbers {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    /// A trie of random stacks over 40 addresses: a few allocator functions, a few that
    /// suppressions match, the rest plain.
    private func makeStacks(seed: UInt64) -> (trie: StackTrie, symbolizer: TableSymbolizer, ids: [UInt32]) {
        var numbers = Numbers(state: seed)
        let symbolizer = TableSymbolizer()
        for index in 0..<40 {
            let address = UInt64(0x2000 + index * 0x10)
            switch index {
            case 0..<4: symbolizer.define(address, ["malloc", "xmalloc", "operator new(unsigned long)", "g_malloc0"][index])
            case 4: symbolizer.define(address, "_IO_file_doallocate")
            case 5: symbolizer.define(address, "_nl_load_locale_from_archive")
            case 6: symbolizer.define(address, "__cxa_allocate_exception", file: "libsupc++/eh_alloc.cc", line: 9)
            default: symbolizer.define(address, "work_\(index)", file: "work.c", line: index)
            }
        }
        let trie = StackTrie()
        var ids: [UInt32] = []
        for _ in 0..<300 {
            let depth = 1 + numbers.next(12)
            // Shared outer frames: stacks often begin (outermost) with the same few addresses.
            let frames = (0..<depth).map { level -> UInt64 in
                let index = level >= depth - 2 ? 20 + numbers.next(3) : numbers.next(40)
                return UInt64(0x2000 + index * 0x10)
            }
            ids.append(trie.intern(frames: frames))
        }
        return (trie, symbolizer, ids)
    }

    func testStackAnswersAgreeWithEachFramesAnswers() {
        for seed: UInt64 in [1, 2, 3] {
            let (trie, symbolizer, ids) = makeStacks(seed: seed)
            var options = AnalysisOptions()
            options.suppressions = Suppressions(rules: Suppressions.builtIn)
            let cache = FrameCache(symbolizer: symbolizer, modules: SingleModule(), options: options, ownStacks: trie)
            var numbers = Numbers(state: seed &* 31)
            for _ in 0..<600 {
                let id = ids[numbers.next(ids.count)]
                // Snapshot 1 now and then: answered afresh, never from what snapshot 0 remembered.
                let snapshot = numbers.next(5) == 0 ? 1 : 0
                let frames = trie.frames(id).map { symbolizer.table[$0]! }
                XCTAssertEqual(cache.suppression(ofStack: id, in: trie, snapshot: snapshot),
                               options.suppressions.firstMatch(in: frames.flatMap { $0 }), "stack \(id)")
                let expected = frames.first { !options.frameFilter.isAllocatorFrame(function: $0[0].function) }
                    ?? frames.first
                XCTAssertEqual(cache.callsiteNumber(ofStack: id, in: trie, snapshot: snapshot).map(cache.frame),
                               expected?[0], "stack \(id)")
            }
            XCTAssertNil(cache.callsiteNumber(ofStack: 0, in: trie, snapshot: 0))
            XCTAssertNil(cache.suppression(ofStack: 0, in: trie, snapshot: 0))
        }
    }

    func testEachAddressIsResolvedOnce() {
        let (trie, symbolizer, ids) = makeStacks(seed: 4)
        var options = AnalysisOptions()
        options.suppressions = Suppressions(rules: Suppressions.builtIn)
        let cache = FrameCache(symbolizer: symbolizer, modules: SingleModule(), options: options, ownStacks: trie)
        for id in ids + ids {
            _ = cache.suppression(ofStack: id, in: trie, snapshot: 0)
            _ = cache.callsiteNumber(ofStack: id, in: trie, snapshot: 0)
        }
        XCTAssertEqual(symbolizer.requests.count, Set(symbolizer.requests).count)
    }

    func testTieBreakingSortNamesOnlyTiedItemsAndSortsAsIfAllWereNamed() {
        var numbers = Numbers(state: 7)
        for count in [0, 1, 2, 50, 400] {
            let amounts = (0..<count).map { _ in numbers.next(count / 3 + 1) }
            let names = (0..<count).map { _ in "site-\(numbers.next(10))" }
            var asked: Set<Int> = []
            let sorted = AnalysisRun.sortedIndices(
                count: count,
                before: { amounts[$0] != amounts[$1] ? amounts[$0] > amounts[$1] : nil },
                name: { asked.insert($0); return names[$0] },
                after: { $0 < $1 })
            let expected = (0..<count).sorted {
                (-amounts[$0], names[$0], $0) < (-amounts[$1], names[$1], $1)
            }
            XCTAssertEqual(sorted, expected, "\(count) items")
            let tied = Set((0..<count).filter { item in amounts.indices.contains { $0 != item && amounts[$0] == amounts[item] } })
            XCTAssertEqual(asked, tied, "\(count) items")
        }
    }
}
