import TraceFormat

// What the REACH records and the runtime-cleanup MARK say about the end of the run. The replay
// keeps the entries as the trace gives them (one packed word each, sorted by address) and answers
// a block's category by binary search when the analysis asks: no per-block table is built.

/// The reachability scan the tracer ran at exit: its facts and the category of every block and
/// mapping piece live then.
public struct ExitReachability: Sendable {
    /// The flags of the first REACH record (every record carries the same header).
    public private(set) var flags: ReachScanFlags
    public private(set) var scanMicroseconds: UInt64
    public private(set) var rootBytes: UInt64
    public private(set) var scannedBytes: UInt64
    /// REACH records met.
    public private(set) var records = 0
    /// The entries of all records, in ascending address order (8 bytes each).
    public private(set) var entries: [ReachEntry] = []
    /// The address of every `strideOfIndex`-th entry: a lookup searches this small array (it
    /// stays in the cache) and then one stretch of entries, instead of halving the whole list
    /// with a cache miss at every step.
    private var index: [UInt64] = []
    private static let strideOfIndex = 32

    init(_ first: ReachRecord) {
        flags = first.flags
        scanMicroseconds = first.scanMicroseconds
        rootBytes = first.rootBytes
        scannedBytes = first.scannedBytes
        add(first)
    }

    /// Adds a record's entries. Records normally follow each other in address order; when one
    /// does not, the whole list is sorted again (the merge of sorted runs is linear).
    mutating func add(_ record: ReachRecord) {
        records += 1
        guard let first = record.entries.first else { return }
        let inOrder = entries.last.map { $0.address < first.address } ?? true
        entries.append(contentsOf: record.entries)
        if !inOrder { entries.sort() }
        index = stride(from: 0, to: entries.count, by: Self.strideOfIndex).map { entries[$0].address }
    }

    /// True when the scan ran and its categories can be used.
    public var isKnown: Bool { flags.contains(.scanned) && !flags.contains(.refused) }

    /// The category the scan gave the block or mapping piece starting at `address`; nil when no
    /// entry names it (allocated by another thread while the scan ran).
    public func category(of address: UInt64) -> Reachability? {
        // The last stretch whose first address is at most `address`.
        var low = 0, high = index.count
        while low < high {
            let middle = (low + high) / 2
            if index[middle] <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        low = (low - 1) * Self.strideOfIndex
        high = min(low + Self.strideOfIndex, entries.count)
        while low < high {
            let middle = (low + high) / 2
            let found = entries[middle].address
            if found == address { return entries[middle].category }
            if found < address { low = middle + 1 } else { high = middle }
        }
        return nil
    }
}

/// Blocks the C and C++ runtimes freed in their cleanup at exit (`__libc_freeres`,
/// `__gnu_cxx::__freeres`): those released after the MARK of source 2 and before the first
/// REACH record. They are not leaks of the program, and the report shows them apart.
public struct RuntimeCleanupRelease: Equatable, Sendable {
    public internal(set) var blocks = 0
    public internal(set) var bytes: UInt64 = 0
    /// Time of the MARK.
    public let time: UInt64
}

extension Replayer {
    /// A MARK record: one of source 2 starts counting the runtimes' cleanup.
    mutating func noteMark(source: UInt64, time: UInt64) {
        guard source == MarkSource.runtimeCleanup, runtimeCleanup == nil else { return }
        runtimeCleanup = RuntimeCleanupRelease(time: time)
        countingRuntimeCleanup = true
    }

    /// A REACH record: the scan is over, so the runtimes' cleanup is too.
    mutating func noteReach(_ record: ReachRecord) {
        countingRuntimeCleanup = false
        if exitReachability == nil {
            exitReachability = ExitReachability(record)
        } else {
            exitReachability?.add(record)
        }
    }
}
