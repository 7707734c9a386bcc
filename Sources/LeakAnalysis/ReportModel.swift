import LiveSet
import Symbolization
import TraceFormat

// The analyzer's result: everything every output format needs, as plain values.
// JSON encoding follows docs/report-json.md (schemaVersion 1): sizes and times are exact
// integers, addresses are "0x..." strings (JSON numbers lose precision above 2^53).

// MARK: - Paths

/// Where a leaked byte sits: a path of glibc's allocator, a kind of direct mapping, or
/// program-break growth made by the program itself.
public enum LeakPath: String, CaseIterable, Sendable, Codable {
    case heap
    case mmapThreshold = "mmap-threshold"
    case threadArena = "thread-arena"
    case unknown
    case privateAnonymous = "private-anonymous"
    case sharedAnonymous = "shared-anonymous"
    case privateFile = "private-file"
    case sharedFile = "shared-file"
    case breakGrowth = "brk-growth"

    public init(_ path: AllocPath) {
        switch path {
        case .heap: self = .heap
        case .mmapThreshold: self = .mmapThreshold
        case .threadArena: self = .threadArena
        case .unknown: self = .unknown
        }
    }

    public init(_ kind: MappingKind) {
        switch kind {
        case .privateAnonymous: self = .privateAnonymous
        case .sharedAnonymous: self = .sharedAnonymous
        case .privateFile: self = .privateFile
        case .sharedFile: self = .sharedFile
        }
    }

    /// Position in `LeakPath.allCases`, for per-path arrays.
    var index: Int {
        switch self {
        case .heap: return 0
        case .mmapThreshold: return 1
        case .threadArena: return 2
        case .unknown: return 3
        case .privateAnonymous: return 4
        case .sharedAnonymous: return 5
        case .privateFile: return 6
        case .sharedFile: return 7
        case .breakGrowth: return 8
        }
    }

    /// True for the four direct-mapping kinds.
    public var isMapping: Bool { index >= 4 && index <= 7 }

    /// Words for the text report.
    public var label: String {
        switch self {
        case .heap: return "heap (brk)"
        case .mmapThreshold: return "mmap threshold"
        case .threadArena: return "thread arena"
        case .unknown: return "unknown path"
        case .privateAnonymous: return "private anonymous mappings"
        case .sharedAnonymous: return "shared anonymous mappings"
        case .privateFile: return "private file mappings"
        case .sharedFile: return "shared file mappings"
        case .breakGrowth: return "brk growth"
        }
    }
}

/// A number of blocks and their bytes.
public struct Amount: Equatable, Sendable, Codable {
    public var blocks: Int
    public var bytes: UInt64
    public init(blocks: Int = 0, bytes: UInt64 = 0) { self.blocks = blocks; self.bytes = bytes }
    public mutating func add(blocks: Int, bytes: UInt64) {
        self.blocks += blocks
        self.bytes &+= bytes
    }
    public static func + (lhs: Amount, rhs: Amount) -> Amount {
        Amount(blocks: lhs.blocks + rhs.blocks, bytes: lhs.bytes &+ rhs.bytes)
    }
}

/// Amounts per path; encodes as an object with one key per non-empty path.
public struct PathAmounts: Equatable, Sendable, Encodable {
    public private(set) var values = [Amount](repeating: Amount(), count: LeakPath.allCases.count)
    public init() {}
    public subscript(path: LeakPath) -> Amount {
        get { values[path.index] }
        set { values[path.index] = newValue }
    }
    public mutating func add(_ path: LeakPath, blocks: Int, bytes: UInt64) {
        values[path.index].add(blocks: blocks, bytes: bytes)
    }
    public mutating func merge(_ other: PathAmounts) {
        for index in values.indices { values[index] = values[index] + other.values[index] }
    }
    /// Paths with something in them, in the fixed order of `LeakPath.allCases`.
    public var nonEmpty: [(path: LeakPath, amount: Amount)] {
        LeakPath.allCases.compactMap { path in
            let amount = self[path]
            return amount.blocks > 0 || amount.bytes > 0 ? (path, amount) : nil
        }
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        for (path, amount) in nonEmpty { try container.encode(amount, forKey: DynamicKey(path.rawValue)) }
    }
}

struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

// MARK: - Trace facts

/// How far the trace was read and whether it was whole.
public struct ReadingOutcome: Equatable, Sendable, Encodable {
    /// True when the END record was read.
    public var isComplete: Bool
    /// Byte offset where reading stopped on damage or a cut, and why.
    public var stoppedAtOffset: UInt64?
    public var stopReason: String?
    /// Set when `--at` ended the replay early: the time (µs) replayed up to.
    public var replayedUntilUs: UInt64?
    /// Set when the trace has no END because the process called exec: the path it executed.
    /// Such a trace is whole (the new program writes its own trace); `isComplete` stays false.
    public var endedByExec: String?
    /// Set when END says a signal ended the process.
    public var diedOf: ProcessDeath?
    public init(isComplete: Bool, stoppedAtOffset: UInt64? = nil, stopReason: String? = nil,
                replayedUntilUs: UInt64? = nil, endedByExec: String? = nil, diedOf: ProcessDeath? = nil) {
        self.isComplete = isComplete; self.stoppedAtOffset = stoppedAtOffset
        self.stopReason = stopReason; self.replayedUntilUs = replayedUntilUs
        self.endedByExec = endedByExec; self.diedOf = diedOf
    }
}

extension ReadingOutcome {
    /// True when the trace was cut or damaged: only the events before `stoppedAtOffset` count.
    /// (A trace replayed only up to `--at` or moment B, or ended by exec, is not cut.)
    public var isCut: Bool { !isComplete && replayedUntilUs == nil && endedByExec == nil }

    /// How `reader`'s pass over the file ended: at the END record, at an exec (a whole trace
    /// without END), or cut or damaged at an offset.
    public init(reader: TraceReader) {
        switch reader.endState {
        case let .complete(end)?: self.init(isComplete: true, diedOf: end.signal.map(ProcessDeath.init))
        case let .cut(offset, reason)?:
            self.init(isComplete: false, stoppedAtOffset: offset, stopReason: reason, endedByExec: reader.endedByExec)
        case nil: self.init(isComplete: false, stopReason: "reading did not finish")
        }
    }
}

/// What the report says about the trace itself.
public struct TraceFacts: Equatable, Sendable, Encodable {
    public var path: String
    public var program: String?
    public var pid: UInt64?
    public var arguments: [String]
    /// For a fork child: the parent's trace, and whether it could be replayed.
    public var parentTrace: String?
    public var parentReplayed: Bool
    public var outcome: ReadingOutcome
    /// Time of the last event replayed (µs since tracing began).
    public var lastEventUs: UInt64
    public var allocs: Int
    public var frees: Int
    public var reallocs: Int
    public var mappingCalls: Int
    /// Allocator calls the tracer could not record (from END).
    public var untraced: UInt64?
    /// How the trace was written: `folded` (short-lived blocks counted, not written) or `all`.
    public var events: String
    /// Blocks the writer folded (included in `allocs` and `frees`).
    public var foldedBlocks: UInt64

    public init(path: String, header: TraceHeader, outcome: ReadingOutcome, replay: Replayer,
                parentReplayed: Bool) {
        self.path = path
        program = header.program
        pid = header.pid
        arguments = header.arguments
        parentTrace = header.parentTrace
        self.parentReplayed = parentReplayed
        self.outcome = outcome
        lastEventUs = replay.lastTime
        let folded = replay.counters.foldedBlocks, foldedReallocs = replay.counters.foldedReallocs
        allocs = replay.counters.allocs + Int(truncatingIfNeeded: folded &- foldedReallocs)
        frees = replay.counters.frees + Int(truncatingIfNeeded: folded &- replay.counters.foldedByRealloc)
        events = header.eventsMode
        foldedBlocks = replay.counters.foldedBlocks
        reallocs = replay.counters.reallocs + Int(truncatingIfNeeded: foldedReallocs)
        mappingCalls = replay.counters.mmaps + replay.counters.munmaps + replay.counters.mremaps
            + replay.counters.breakCalls
        untraced = replay.end?.untraced
    }
}

// MARK: - Summary pieces

/// How a suppression was used.
public struct SuppressionUse: Equatable, Sendable, Encodable {
    public var pattern: String
    public var origin: String
    public var matched: Amount
}

/// One move of the mmap threshold, for the report.
public struct ThresholdMove: Equatable, Sendable, Encodable {
    public var timeUs: UInt64
    public var from: UInt64
    public var to: UInt64
    /// "mallopt" or "free-of-mmapped-block".
    public var reason: String
    /// For a dynamic raise: the freed block's request size and glibc chunk size.
    public var freedBlockSize: UInt64?
    public var freedChunkSize: UInt64?

    init(_ change: ThresholdChange) {
        timeUs = change.time
        from = change.oldValue
        to = change.newValue
        switch change.reason {
        case .mallopt:
            reason = "mallopt"
        case let .freedMmappedBlock(requestSize, chunkSize):
            reason = "free-of-mmapped-block"
            freedBlockSize = requestSize
            freedChunkSize = chunkSize
        }
    }
}

/// The mmap threshold over the trace.
public struct ThresholdHistory: Equatable, Sendable, Encodable {
    public var initial: UInt64
    public var final: UInt64
    /// Whether glibc was still adjusting it at the end.
    public var dynamic: Bool
    public var fixedBecause: String?
    public var moves: [ThresholdMove]
    public var movesNotKept: Int
    /// Leaked blocks at least as big as the initial threshold that glibc served from the
    /// heap or a thread arena anyway.
    public var largeBlocksFromHeap: Amount
}

/// Free memory of the brk heap that cannot be given back because live blocks sit above it.
public struct HeapHole: Equatable, Sendable, Encodable {
    /// Lowest heap-block address seen in the trace (the heap's start as far as it shows).
    @OptionalHexAddress public var heapStart: UInt64?
    /// Highest end of a live heap block.
    @OptionalHexAddress public var top: UInt64?
    public var liveHeap: Amount
    /// top - start - live heap bytes, at least 0.
    public var pinnedBytes: UInt64
    /// The live heap blocks nearest the top, highest first.
    public var nearTop: [PlacedBlock]
}

/// A block with its place in memory and the call site that allocated it.
public struct PlacedBlock: Equatable, Sendable, Encodable {
    @HexAddress public var address: UInt64
    public var size: UInt64
    public var path: LeakPath
    public var timeUs: UInt64
    public var inherited: Bool
    public var callsite: SymbolizedFrame?
    /// Full stack, innermost first (empty when not resolved).
    public var stack: [SymbolizedFrame]
}

/// A free or realloc of an address that was not live.
public struct UnknownFreeExample: Equatable, Sendable, Encodable {
    @HexAddress public var address: UInt64
    public var tid: UInt64
    public var timeUs: UInt64
    public var viaRealloc: Bool
}

/// The first page of the report.
public struct LeakSummary: Equatable, Sendable, Encodable {
    /// Everything leaked and not suppressed: blocks plus mappings (blocks counts both),
    /// plus net brk growth (bytes only).
    public var leaked: Amount
    public var byPath: PathAmounts
    /// Leaked and not suppressed, inherited from the parent process at fork.
    public var inherited: Amount
    public var suppressed: Amount
    public var suppressions: [SuppressionUse]
    public var peakLiveBytes: UInt64
    public var peakLiveUs: UInt64
    /// In a folded trace: the most the live heap can have held (the peak is between
    /// `peakLiveBytes` and this); nil when the trace holds every event and the peak is exact.
    public var peakLiveBytesBound: UInt64?
    /// Allocation calls over the whole trace.
    public var allocations: AllocationTotals
    public var heapHole: HeapHole
    public var mmapThreshold: ThresholdHistory
    public var unknownFrees: Int
    public var unknownFreeExamples: [UnknownFreeExample]
    public var duplicateAllocations: Int
    /// Number of groups before --top and --min-bytes.
    public var groups: Int
    /// The unsuppressed blocks and mappings by reachability at exit, and the scan; nil (left
    /// out of the JSON) when the trace cannot say.
    public var reachability: ReachabilitySummary?
    /// Why reachability is unknown (nil when it is known).
    public var reachabilityUnknown: String?
    /// Blocks the C and C++ runtimes freed in their cleanup at exit (nil: the trace has no
    /// MARK of source 2). Not leaks, and not in `leaked`.
    public var releasedByRuntimeCleanup: Amount?
}

// MARK: - Groups

/// One group of leaked blocks (by call site, stack, function, file or module).
public struct LeakGroup: Equatable, Sendable, Encodable {
    /// 1 for the biggest group.
    public var rank: Int
    /// What the group is: the call site's display name, a function, a file or a module.
    public var name: String
    /// The call site frame of the group's biggest block (nil when it has no stack).
    public var callsite: SymbolizedFrame?
    public var blocks: Int
    public var bytes: UInt64
    public var smallest: UInt64
    public var largest: UInt64
    public var byPath: PathAmounts
    public var inherited: Amount
    public var firstAllocationUs: UInt64
    public var lastAllocationUs: UInt64
    /// Why blocks of this group that reached the initial mmap threshold came from the heap.
    public var thresholdNote: String?
    /// The group's blocks and mappings by reachability at exit (nil when unknown).
    public var reachability: ReachabilityAmounts?
    /// The biggest block and its full stack.
    public var biggest: PlacedBlock
}

/// Net program-break growth from one call site.
public struct BreakGrowthSite: Equatable, Sendable, Encodable {
    public var netBytes: Int64
    public var calls: Int
    public var callsite: SymbolizedFrame?
    public var stack: [SymbolizedFrame]
}

/// A leaked stack with its bytes, for flame graphs.
public struct LeakStack: Equatable, Sendable {
    /// Innermost first, inline-expanded.
    public var frames: [SymbolizedFrame]
    public var bytes: UInt64
    public var blocks: Int
}

// MARK: - The report

/// Everything `leakreport` found.
public struct LeakReport: Equatable, Sendable, Encodable {
    public static let schemaVersion = 1
    /// The version of the JSON documents (`LeakReport.schemaVersion`).
    public let schemaVersion = LeakReport.schemaVersion
    public var trace: TraceFacts
    public var summary: LeakSummary
    /// The top groups after --top and --min-bytes, biggest first.
    public var groups: [LeakGroup]
    /// The grouping used: callsite, stack, function, file or module.
    public var groupBy: String
    /// Direct mappings still mapped (not suppressed), biggest first.
    public var mappings: [PlacedMapping]
    /// brk/sbrk growth by call site, biggest growth first.
    public var breakGrowth: [BreakGrowthSite]
    /// Every leaked stack (only when asked for, for the folded format).
    public var stacks: [LeakStack]
    /// Problems met on the way (missing parent trace, binaries changed since the trace, ...).
    public var warnings: [String]
    /// The call sites whose live bytes keep growing, steepest first (see GrowthRates.swift).
    public var growing: [SiteRate] = []
    /// When the trace asked for ended by exec and the report is of the program its process ran
    /// last: the programs before it, first first.
    public var execChain: [ExecStep] = []
    /// The call sites that allocate most often, freed or not (grouped like `groups`).
    public var allocationSites: [AllocationSite] = []

    /// `stacks` is left out: only the folded format uses it.
    enum CodingKeys: String, CodingKey {
        case schemaVersion, trace, summary, groupBy, groups, mappings, breakGrowth, warnings, growing, execChain,
             allocationSites
    }
}

/// A program a process ran before it exec'd the next one.
public struct ExecStep: Equatable, Sendable, Encodable {
    /// The trace of that program.
    public var trace: String
    public var program: String?
    /// The path it passed to exec.
    public var executed: String?
    public init(trace: String, program: String?, executed: String?) {
        self.trace = trace; self.program = program; self.executed = executed
    }
}

/// Allocation calls of the whole trace, freed or not.
public struct AllocationTotals: Equatable, Sendable, Encodable {
    public var calls: UInt64
    public var bytes: UInt64
    /// Blocks freed by their own thread with no other allocation or free by it in between.
    public var temporary: UInt64
}

/// Allocation calls of one call site (or stack, function, file, module: the report's grouping).
public struct AllocationSite: Equatable, Sendable, Encodable {
    /// 1 for the site with the most calls.
    public var rank: Int
    public var name: String
    public var callsite: SymbolizedFrame?
    public var calls: UInt64
    public var bytes: UInt64
    public var temporary: UInt64
}

/// A direct mapping still mapped at the end.
public struct PlacedMapping: Equatable, Sendable, Encodable {
    @HexAddress public var start: UInt64
    public var size: UInt64
    public var kind: LeakPath
    /// The mapped file for file mappings.
    public var file: String?
    public var timeUs: UInt64
    public var inherited: Bool
    public var callsite: SymbolizedFrame?
    /// Its reachability at exit (`definitely-lost`, `indirectly-lost`, `possibly-lost`,
    /// `still-reachable`, `unclassified`); nil when unknown.
    public var reachability: String?
}
