// The one address search of the symbolizer: which of a set of code ranges (compile units,
// functions, symbols) contains an address. Ranges may overlap and nest, so a binary search for
// the last range starting at or before the address is followed by a walk backwards that stops
// as soon as no earlier range reaches far enough (the furthest end seen up to each position).

/// Half-open address ranges `start..<end`, each with a payload, sorted by start.
struct IntervalIndex<Payload> {
    struct Entry {
        let start: UInt64
        let end: UInt64
        let payload: Payload
    }

    private static var positionBits: UInt64 { 24 }
    private static var positionMask: UInt64 { (1 << positionBits) - 1 }
    private static var largestPackedStart: UInt64 { UInt64.max >> positionBits }

    private let entries: [Entry]
    /// For each position, the largest end among the entries up to it.
    private let furthestEnd: [UInt64]

    /// Sorts `entries` by start; entries with the same start keep the order given.
    init(_ entries: [Entry]) {
        let sorted: [Entry]
        if entries.count <= Self.positionMask, entries.allSatisfy({ $0.start <= Self.largestPackedStart }) {
            // Module addresses are small: the start and the position given fit one integer, and
            // sorting plain integers moves 8 bytes instead of a whole entry (sorting entries
            // with a comparison closure was most of indexing cc1's symbol table).
            var keys: [UInt64] = []
            keys.reserveCapacity(entries.count)
            for (position, entry) in entries.enumerated() {
                keys.append(entry.start << Self.positionBits | UInt64(position))
            }
            Self.sortDistinct(&keys, sortedBelow: Self.positionBits)
            sorted = keys.map { entries[Int($0 & Self.positionMask)] }
        } else {
            sorted = entries.enumerated()
                .sorted { ($0.element.start, $0.offset) < ($1.element.start, $1.offset) }.map(\.element)
        }
        var furthest: [UInt64] = []
        furthest.reserveCapacity(sorted.count)
        var maximum: UInt64 = 0
        for entry in sorted {
            maximum = max(maximum, entry.end)
            furthest.append(maximum)
        }
        self.entries = sorted
        self.furthestEnd = furthest
    }

    /// Sorts distinct keys, a byte at a time from the lowest (skipping bytes all keys share):
    /// the standard library's sort took 360 instructions a key on cc1's 27,600 symbols. Keys
    /// already in order by their low `sortedBelow` bits (start << positionBits | position, made
    /// in position order) are sorted by the bits above only: each pass keeps the order it is given.
    static func sortDistinct(_ keys: inout [UInt64], sortedBelow: UInt64 = 0) {
        guard keys.count > 256, let first = keys.first else { keys.sort(); return }
        var varying: UInt64 = 0
        for key in keys { varying |= key ^ first }
        varying &= ~((1 << sortedBelow) - 1)
        var spare = [UInt64](repeating: 0, count: keys.count)
        var counts = [Int](repeating: 0, count: 256)
        var inSpare = false
        keys.withUnsafeMutableBufferPointer { keys in
            spare.withUnsafeMutableBufferPointer { spare in
                counts.withUnsafeMutableBufferPointer { counts in
                    for shift in stride(from: sortedBelow, to: 64, by: 8) where (varying >> shift) & 0xFF != 0 {
                        let (from, to) = inSpare ? (spare, keys) : (keys, spare)
                        for index in 0 ..< 256 { counts[index] = 0 }
                        for key in from { counts[Int(truncatingIfNeeded: key >> shift) & 0xFF] += 1 }
                        var offset = 0
                        for index in 0 ..< 256 {
                            let count = counts[index]
                            counts[index] = offset
                            offset += count
                        }
                        for key in from {
                            let digit = Int(truncatingIfNeeded: key >> shift) & 0xFF
                            to[counts[digit]] = key
                            counts[digit] += 1
                        }
                        inSpare.toggle()
                    }
                }
            }
        }
        if inSpare { keys = spare }
    }

    var isEmpty: Bool { entries.isEmpty }

    subscript(index: Int) -> Entry { entries[index] }

    /// The position of the last entry starting at or before `address`, or -1.
    func lastIndex(startingAtOrBefore address: UInt64) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].start <= address { low = middle + 1 } else { high = middle }
        }
        return low - 1
    }

    /// Calls `visit` with each entry containing `address`, the latest-starting first (among
    /// equal starts, the last given first), until `visit` returns false.
    func forEach(containing address: UInt64, _ visit: (Entry) -> Bool) {
        var index = lastIndex(startingAtOrBefore: address)
        while index >= 0, furthestEnd[index] > address {
            if entries[index].end > address, !visit(entries[index]) { return }
            index -= 1
        }
    }

    /// The payload of the latest-starting entry containing `address`.
    func payload(containing address: UInt64) -> Payload? {
        var found: Payload?
        forEach(containing: address) { entry in
            found = entry.payload
            return false
        }
        return found
    }
}
