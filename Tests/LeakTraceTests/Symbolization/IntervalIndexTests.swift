// The symbolizer's range search (Sources/Symbolization/IntervalIndex.swift) against a brute-force
// answer: every entry containing an address, latest start first and, among equal starts, the
// last given first. Module addresses are sorted as packed integers; starts above 2^40 (or more
// than 2^24 entries) take the general sort, and both must give the same order.

@testable import Symbolization
import XCTest

final class IntervalIndexTests: XCTestCase {
    private struct Generator {
        var state: UInt64
        mutating func next(_ bound: UInt64) -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (state >> 33) % bound
        }
    }

    private func check(base: UInt64, seed: UInt64) {
        var random = Generator(state: seed)
        var entries: [IntervalIndex<Int>.Entry] = []
        for payload in 0..<3000 {
            // Few distinct starts, so many entries share one; nested and overlapping lengths.
            let start = base + random.next(400) * 16
            entries.append(.init(start: start, end: start + 1 + random.next(2000), payload: payload))
        }
        let index = IntervalIndex(entries)
        for _ in 0..<500 {
            let address = base + random.next(9000)
            var found: [Int] = []
            index.forEach(containing: address) { found.append($0.payload); return true }
            let expected = entries.filter { $0.start <= address && address < $0.end }
                .sorted { ($0.start, $0.payload) > ($1.start, $1.payload) }.map(\.payload)
            XCTAssertEqual(found, expected, "address \(address)")
            XCTAssertEqual(index.payload(containing: address), expected.first)
        }
    }

    func testDistinctKeysAreSortedAsTheStandardLibrarySortsThem() {
        var random = Generator(state: 7)
        for count in [0, 1, 255, 257, 3000, 40000] {
            // Keys varying in low, middle and high bytes, as (start << 24 | position) keys do.
            var keys = Set<UInt64>()
            while keys.count < count {
                keys.insert(random.next(1 << 31) << 33 | random.next(1 << 20) << 4 | random.next(16))
            }
            var sorted = Array(keys)
            IntervalIndex<Int>.sortDistinct(&sorted)
            XCTAssertEqual(sorted, keys.sorted(), "\(count) keys")
            // Keys made in order of their low 24 bits (a position) need sorting above them only.
            var positioned = Array(keys.sorted().map { $0 >> 24 }.enumerated().map { $0.element << 24 | UInt64($0.offset) }.reversed())
            positioned.sort { $0 & 0xFF_FFFF < $1 & 0xFF_FFFF }
            let expected = positioned.sorted()
            IntervalIndex<Int>.sortDistinct(&positioned, sortedBelow: 24)
            XCTAssertEqual(positioned, expected, "\(count) keys in position order")
        }
    }

    func testModuleAddressesFindEveryContainingRangeInOrder() {
        check(base: 0x1000, seed: 1)
        check(base: 0, seed: 2)
    }

    func testStartsAboveThePackedRangeGiveTheSameOrder() {
        check(base: (1 << 40) - 4000, seed: 3) // some starts packed, some not: the general sort
        check(base: 0x7fff_0000_0000, seed: 4)
    }
}
