// Module snapshots (MODULES records) in trace order, with a sorted segment index per snapshot so
// that resolving an address is a binary search rather than a scan over every loaded object.

/// The MODULES snapshots of a trace, in order, and address-to-module resolution across them.
public struct ModuleMapHistory: Sendable {
    /// Every snapshot in trace order; snapshot `i` is the `i+1`-th MODULES record.
    public private(set) var snapshots: [[Module]] = []
    private var indexes: [SegmentIndex] = []

    public init() {}

    /// Number of snapshots seen.
    public var count: Int { snapshots.count }

    /// Adds the next snapshot.
    public mutating func append(_ modules: [Module]) {
        snapshots.append(modules)
        indexes.append(SegmentIndex(modules))
    }

    /// Forgets every snapshot, for a new pass over the trace.
    mutating func removeAll() {
        snapshots.removeAll()
        indexes.removeAll()
    }

    /// The module whose segment contains `address`, looking at snapshot `index` first, then older
    /// ones, then newer ones (a module loaded after an event is found in a later snapshot).
    /// An `index` below 0 (no snapshot yet at the event) searches every snapshot from the oldest.
    public func module(containing address: UInt64, snapshot index: Int) -> Module? {
        guard !snapshots.isEmpty else { return nil }
        let newestAtEvent = min(index, snapshots.count - 1)
        if newestAtEvent >= 0 {
            for snapshot in stride(from: newestAtEvent, through: 0, by: -1) {
                if let found = indexes[snapshot].moduleIndex(containing: address) {
                    return snapshots[snapshot][found]
                }
            }
        }
        for snapshot in (newestAtEvent + 1)..<snapshots.count {
            if let found = indexes[snapshot].moduleIndex(containing: address) {
                return snapshots[snapshot][found]
            }
        }
        return nil
    }
}

/// The segments of one snapshot sorted by start address.
private struct SegmentIndex: Sendable {
    private var starts: [UInt64] = []
    private var ends: [UInt64] = []
    private var modules: [Int] = []
    /// The largest segment end among entries 0...i. Real segments never overlap, but a damaged or
    /// odd snapshot might; this bounds the backward scan that keeps lookups exact anyway.
    private var maximumEndSoFar: [UInt64] = []

    init(_ snapshot: [Module]) {
        var entries: [(start: UInt64, end: UInt64, module: Int)] = []
        for (moduleIndex, module) in snapshot.enumerated() {
            for segment in module.segments where segment.size > 0 {
                let (end, overflow) = segment.start.addingReportingOverflow(segment.size)
                entries.append((segment.start, overflow ? .max : end, moduleIndex))
            }
        }
        entries.sort { $0.start < $1.start }
        var maximumEnd: UInt64 = 0
        for entry in entries {
            starts.append(entry.start)
            ends.append(entry.end)
            modules.append(entry.module)
            maximumEnd = max(maximumEnd, entry.end)
            maximumEndSoFar.append(maximumEnd)
        }
    }

    /// Index (in the snapshot) of a module with a segment holding `address`.
    func moduleIndex(containing address: UInt64) -> Int? {
        // The first entry that starts after the address.
        var low = 0, high = starts.count
        while low < high {
            let middle = (low + high) / 2
            if starts[middle] <= address { low = middle + 1 } else { high = middle }
        }
        var candidate = low - 1
        while candidate >= 0 && maximumEndSoFar[candidate] > address {
            if ends[candidate] > address { return modules[candidate] }
            candidate -= 1
        }
        return nil
    }
}
