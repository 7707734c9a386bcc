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
            keys.sort()
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
