import TraceFormat

// What replay keeps beside the live set (Replayer.swift): unknown releases, program-break
// growth, counters, the events an observer sees, the threshold context of large heap blocks.

// MARK: - Results kept beside the live set

/// A release of an address that was not live: freed before tracing began, freed twice, or
/// never returned by the allocator.
public struct UnknownRelease: Equatable, Sendable {
    public var address: UInt64
    public var tid: UInt64
    public var time: UInt64
    /// True for the old pointer of a realloc, false for free.
    public var viaRealloc: Bool
    public init(address: UInt64, tid: UInt64, time: UInt64, viaRealloc: Bool) {
        self.address = address; self.tid = tid; self.time = time; self.viaRealloc = viaRealloc
    }
}

/// Net movement of the program break by the program's own brk/sbrk calls from one stack.
public struct BreakGrowth: Equatable, Sendable {
    public var stack: StackRef
    /// Sum of the moves; negative when the program gave memory back.
    public var netBytes: Int64
    public var calls: Int
    public var firstTime: UInt64
    public var lastTime: UInt64
}

/// Counts of what replay met.
public struct ReplayCounters: Equatable, Sendable {
    public var allocs = 0
    public var frees = 0
    public var reallocs = 0
    public var failedReallocs = 0
    /// free or realloc of an address that was not live.
    public var unknownReleases = 0
    /// An allocation returned an address that was still live (the old block is replaced).
    public var duplicateAllocs = 0
    /// An allocation record at address 0 (the writer never emits one: a damaged trace).
    public var nullAllocs = 0
    public var mmaps = 0
    public var munmaps = 0
    public var mremaps = 0
    /// mremap of a range no known mapping contains (made before tracing, or by the allocator).
    public var unknownRemaps = 0
    public var breakCalls = 0
    public var malloptCalls = 0
    public var moduleSnapshots = 0
    /// Blocks the writer folded (FOLD records): each an allocation (or a realloc) and a free
    /// not written.
    public var foldedBlocks: UInt64 = 0
    /// Those of them made by realloc or reallocarray.
    public var foldedReallocs: UInt64 = 0
    /// Those of them released by a realloc rather than a free.
    public var foldedByRealloc: UInt64 = 0
    public var foldRecords = 0
    public init() {}
}

/// What replay did with one event, for consumers that follow replay step by step (the
/// mtrace export). Only delivered when `Replayer.observer` is set.
public enum ReplayEvent: Equatable, Sendable {
    /// `block` became live; `replaced` was live at the same address and is gone.
    case allocated(LiveBlock, replaced: LiveBlock?)
    /// `block` was freed or reallocated away.
    case released(LiveBlock)
    /// A free or realloc named an address that was not live.
    case unknownRelease(UnknownRelease)
}

/// The mmap threshold as it stood when a large block was allocated from the heap: why glibc
/// did not give it a mapping of its own.
public struct ThresholdContext: Equatable, Sendable {
    /// The threshold in force.
    public var threshold: UInt64
    /// The change that set it (nil: the initial value).
    public var lastChange: ThresholdChange?
    /// True when mallopt(M_MMAP_MAX, 0) had turned mmapped chunks off.
    public var mmapDisabled: Bool
}
