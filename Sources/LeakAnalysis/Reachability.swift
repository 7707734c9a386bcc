import LiveSet
import TraceFormat

// Reachability at exit in the report: blocks and bytes per category (valgrind memcheck's words),
// the facts of the tracer's scan, and why reachability is unknown when the trace cannot say.

extension Reachability {
    /// The category as one JSON word: `definitely-lost`, `indirectly-lost`, `possibly-lost`,
    /// `still-reachable`.
    public var jsonName: String {
        switch self {
        case .definitelyLost: return "definitely-lost"
        case .indirectlyLost: return "indirectly-lost"
        case .possiblyLost: return "possibly-lost"
        case .stillReachable: return "still-reachable"
        }
    }
}

/// Blocks and bytes in each reachability category.
public struct ReachabilityAmounts: Equatable, Sendable, Encodable {
    public var definitelyLost = Amount()
    public var indirectlyLost = Amount()
    public var possiblyLost = Amount()
    public var stillReachable = Amount()
    /// Live at exit but named by no entry of the scan (allocated by another thread while it ran).
    public var unclassified = Amount()
    public init() {}

    /// Adds a block or mapping piece; nil: the scan gave it no category.
    public mutating func add(_ category: Reachability?, bytes: UInt64) {
        switch category {
        case .definitelyLost?: definitelyLost.add(blocks: 1, bytes: bytes)
        case .indirectlyLost?: indirectlyLost.add(blocks: 1, bytes: bytes)
        case .possiblyLost?: possiblyLost.add(blocks: 1, bytes: bytes)
        case .stillReachable?: stillReachable.add(blocks: 1, bytes: bytes)
        case nil: unclassified.add(blocks: 1, bytes: bytes)
        }
    }

    public mutating func merge(_ other: ReachabilityAmounts) {
        definitelyLost = definitelyLost + other.definitelyLost
        indirectlyLost = indirectlyLost + other.indirectlyLost
        possiblyLost = possiblyLost + other.possiblyLost
        stillReachable = stillReachable + other.stillReachable
        unclassified = unclassified + other.unclassified
    }

    /// Definitely and indirectly lost: what `--fail-on-leak` counts when reachability is known.
    public var lost: Amount { definitelyLost + indirectlyLost }

    /// The amount of one category (nil: unclassified).
    public subscript(category: Reachability?) -> Amount {
        switch category {
        case .definitelyLost?: return definitelyLost
        case .indirectlyLost?: return indirectlyLost
        case .possiblyLost?: return possiblyLost
        case .stillReachable?: return stillReachable
        case nil: return unclassified
        }
    }

    /// Where a group with these amounts is listed: lost blocks first, then possibly lost, then
    /// blocks the scan did not classify, then groups that are still reachable and nothing else.
    public var severity: ReachabilitySeverity {
        if lost.blocks > 0 { return .lost }
        if possiblyLost.blocks > 0 { return .possiblyLost }
        if unclassified.blocks > 0 { return .unclassified }
        return .stillReachable
    }

    enum CodingKeys: String, CodingKey {
        case definitelyLost, indirectlyLost, possiblyLost, stillReachable, unclassified
    }

    /// `unclassified` appears only when something is.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(definitelyLost, forKey: .definitelyLost)
        try container.encode(indirectlyLost, forKey: .indirectlyLost)
        try container.encode(possiblyLost, forKey: .possiblyLost)
        try container.encode(stillReachable, forKey: .stillReachable)
        if unclassified.blocks > 0 { try container.encode(unclassified, forKey: .unclassified) }
    }
}

/// The order in which groups are listed when reachability is known (lowest first).
public enum ReachabilitySeverity: Int, Comparable, Sendable {
    case lost = 0, possiblyLost, unclassified, stillReachable
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The facts of the tracer's scan at exit, from the REACH records.
public struct ReachabilityScan: Equatable, Sendable, Encodable {
    public var scanned: Bool
    /// glibc's `__libc_freeres` ran before the scan.
    public var libcFreeres: Bool
    /// libstdc++'s `__gnu_cxx::__freeres` ran before the scan.
    public var cxxFreeres: Bool
    /// Other threads were still running: their stacks were scanned whole, their registers not read.
    public var otherThreadsRunning: Bool
    /// The scan ran in a fatal signal's handler.
    public var inFatalSignalHandler: Bool
    /// The tracer refused to scan (out of memory, or memory it could not read safely).
    public var refused: Bool
    public var scanUs: UInt64
    public var rootBytes: UInt64
    public var scannedBytes: UInt64

    public init(_ reachability: ExitReachability) {
        let flags = reachability.flags
        scanned = flags.contains(.scanned)
        libcFreeres = flags.contains(.libcFreeresCalled)
        cxxFreeres = flags.contains(.gnuCxxFreeresCalled)
        otherThreadsRunning = flags.contains(.otherThreadsRunning)
        inFatalSignalHandler = flags.contains(.inFatalSignalHandler)
        refused = flags.contains(.refused)
        scanUs = reachability.scanMicroseconds
        rootBytes = reachability.rootBytes
        scannedBytes = reachability.scannedBytes
    }
}

/// The report's reachability: the unsuppressed blocks and mappings by category, and the scan.
public struct ReachabilitySummary: Equatable, Sendable, Encodable {
    public var amounts: ReachabilityAmounts
    public var scan: ReachabilityScan

    enum CodingKeys: String, CodingKey { case scan }

    /// The amounts' fields, and `scan`, in one object.
    public func encode(to encoder: Encoder) throws {
        try amounts.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scan, forKey: .scan)
    }
}

extension Replayer {
    /// The scan's categories when they can be used for the state replay left: the REACH records
    /// were replayed and the scan ran.
    public var knownReachability: ExitReachability? {
        guard let reachability = exitReachability, reachability.isKnown else { return nil }
        return reachability
    }

    /// Why the report cannot give categories (nil when it can), in words for the report.
    public func reachabilityUnknownReason(outcome: ReadingOutcome) -> String? {
        if knownReachability != nil { return nil }
        if outcome.replayedUntilUs != nil { return "reported before the end (--at): reachability is known only at exit" }
        if let reachability = exitReachability {
            return reachability.flags.contains(.refused) ? "the tracer refused the scan at exit (out of memory, or memory it could not read safely)"
                                                         : "the tracer did not scan at exit"
        }
        if outcome.isCut { return "the trace was cut before the scan at exit" }
        if outcome.endedByExec != nil { return "the process called exec: the scan runs at exit only" }
        if outcome.diedOf != nil { return "the process died of a signal the tracer could not scan in" }
        return "no REACH record: the scan was off (LEAKTRACE_REACHABILITY=0) or the tracer predates it"
    }
}

// MARK: - Filtering diff and growth by category

/// Which blocks and mappings `diff --category` and `growth --category` count: those live at
/// exit whose category is one of `categories`. Built from a replay that reached the end; a block
/// seen earlier (growth's moments A and B) is the same block when its address, size, time and
/// stack match a kept one, so a block freed before exit never counts, even when a later block
/// took its address.
public struct ReachabilityFilter: Sendable {
    public let categories: Set<Reachability>
    /// False when the trace has no usable scan: then nothing is kept.
    public let isKnown: Bool
    /// The kept blocks, sorted by address.
    private var blocks: [BlockIdentity] = []
    /// The kept mapping pieces, sorted by start.
    private var mappings: [BlockIdentity] = []

    private struct BlockIdentity: Comparable, Sendable {
        var address: UInt64
        var size: UInt64
        var time: UInt64
        var stack: StackRef
        static func < (lhs: Self, rhs: Self) -> Bool { lhs.address < rhs.address }
    }

    /// The filter for the blocks live at the end of `replay`.
    public init(categories: Set<Reachability>, replay: Replayer) {
        self.categories = categories
        guard let reachability = replay.knownReachability else {
            isKnown = false
            return
        }
        isKnown = true
        replay.live.forEach { block in
            if let category = reachability.category(of: block.address), categories.contains(category) {
                blocks.append(BlockIdentity(address: block.address, size: block.size, time: block.time,
                                            stack: block.stackRef))
            }
        }
        for mapping in replay.mappings.mappings {
            if let category = reachability.category(of: mapping.start), categories.contains(category) {
                mappings.append(BlockIdentity(address: mapping.start, size: mapping.size, time: mapping.time,
                                              stack: mapping.stackRef))
            }
        }
        blocks.sort()
        mappings.sort()
    }

    /// Whether `block` is one of the kept blocks live at exit.
    public func keeps(_ block: LiveBlock) -> Bool {
        Self.contains(blocks, BlockIdentity(address: block.address, size: block.size, time: block.time,
                                            stack: block.stackRef))
    }

    /// Whether `mapping` is one of the kept mapping pieces live at exit.
    public func keeps(_ mapping: Mapping) -> Bool {
        Self.contains(mappings, BlockIdentity(address: mapping.start, size: mapping.size, time: mapping.time,
                                              stack: mapping.stackRef))
    }

    private static func contains(_ list: [BlockIdentity], _ wanted: BlockIdentity) -> Bool {
        var low = 0, high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].address < wanted.address { low = middle + 1 } else { high = middle }
        }
        return low < list.count && list[low] == wanted
    }

    /// The warning for a trace whose reachability is unknown (nil when it is known).
    public func unknownWarning(trace path: String) -> String? {
        isKnown ? nil : "\(path): reachability at exit is unknown (no usable REACH record): --category keeps none of its blocks"
    }
}
