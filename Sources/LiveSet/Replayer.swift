import TraceFormat

// MARK: - Replayer

/// Replays trace records into the set of live blocks, direct mappings, program-break moves
/// and the mmap threshold history.
///
/// Memory grows with the number of live blocks, live mappings and distinct stacks that call
/// brk/sbrk, never with the number of events.
///
/// A value type: a replay pass moves it into the reader's visitor and back, so the hot path
/// (one table insert or remove per event) runs without runtime exclusivity checks.
public struct Replayer {
    /// Blocks allocated and not yet released.
    public private(set) var live: LiveBlockTable
    /// The program's own direct mappings still mapped.
    public private(set) var mappings = MappingSet()
    public private(set) var threshold: MmapThresholdTracker
    /// Stacks of blocks inherited from a parent process (see `BlockFlags.inherited`).
    public private(set) var inheritedStacks = StackTrie()
    public internal(set) var counters = ReplayCounters()
    /// The first few unknown releases, as examples for the report.
    public private(set) var unknownReleaseExamples: [UnknownRelease] = []
    /// The first few allocations at an address that was already live (the replaced block).
    public private(set) var duplicateAllocExamples: [LiveBlock] = []
    /// Program-break moves by the program itself, per calling stack.
    public private(set) var breakGrowth: [UInt32: BreakGrowth] = [:]
    /// Highest total of live block bytes, and when it was reached. In a folded trace, the
    /// highest the trace proves (see `peakLiveBytesUpperBound`).
    public internal(set) var peakLiveBytes: UInt64 = 0
    public internal(set) var peakLiveTime: UInt64 = 0
    /// In a folded trace: the most the live heap can have held (blocks shorter than the writer's
    /// window were live between written events); nil when the trace holds every event.
    public internal(set) var peakLiveBytesUpperBound: UInt64?
    /// The least and most live bytes since the last FOLD record (for the peak's bounds).
    var foldSpanLow: UInt64 = 0
    var foldSpanHigh: UInt64 = 0
    /// Allocation calls, bytes and temporary allocations per stack.
    public let allocationCalls: AllocationCalls
    /// True during a pass whose reader counts `allocationCalls` itself, on its decoding thread
    /// (`TraceReader.visitRecordsDecodingAhead`): the replay leaves them alone then.
    var allocationCallsCountedByReader = false
    /// Lowest address of any heap-path block seen: where the brk heap starts, as far as the
    /// trace shows.
    public var lowestHeapAddress: UInt64? { lowestHeapStart == .max ? nil : lowestHeapStart }
    /// `lowestHeapAddress`, `.max` until a heap block is seen: one compare per allocation.
    var lowestHeapStart: UInt64 = .max
    /// Time of each MODULES snapshot, in order (index = snapshot index).
    public private(set) var moduleSnapshotTimes: [UInt64] = []
    /// Time of the last event replayed.
    public private(set) var lastTime: UInt64 = 0
    /// The END record, once replayed.
    public private(set) var end: TraceEnd?
    /// The reachability scan at exit, from the REACH records (nil: none replayed).
    public internal(set) var exitReachability: ExitReachability?
    /// What the runtimes' cleanup at exit released (nil: no MARK of source 2 replayed).
    public internal(set) var runtimeCleanup: RuntimeCleanupRelease?
    /// True between the MARK of source 2 and the first REACH record.
    var countingRuntimeCleanup = false
    /// Blocks and bytes inherited from the parent process at fork.
    public private(set) var inheritedBlocks = 0
    public private(set) var inheritedBytes: UInt64 = 0
    /// For live heap and thread-arena blocks at least as big as the initial threshold: the
    /// threshold state when each was allocated. Captured then because trace times are coarse
    /// (many events share one TIME), so a later lookup by time could pick the wrong change.
    public private(set) var largeHeapBlocks: [UInt64: ThresholdContext] = [:]
    /// Requests below this cannot reach the initial threshold (cheap pre-check per event).
    private var largeBlockMinimum: UInt64
    /// Page size used to round mapping lengths.
    public let pageSize: UInt64
    /// Called for every allocation and release, when set.
    public var observer: ((ReplayEvent) -> Void)?
    /// Live bytes per call site, kept when set (growth rates): see `startSiteAccounting`.
    public private(set) var siteAccounting: SiteAccounting? {
        didSet { countingSites = siteAccounting.map(Unmanaged.passUnretained) }
    }
    /// `siteAccounting` without reference counting, for the per-event calls (the property
    /// above keeps it alive).
    private var countingSites: Unmanaged<SiteAccounting>?

    public static let exampleLimit = 5

    /// True during a replay pass in which no code but the replayer's own can reach it (`replay`
    /// without a hook: the replayer lives in the visitor, and an observer only receives events).
    /// The live table's storage was made unique when the pass began and nothing can take a
    /// second reference to it, so the per-event uniqueness check is skipped.
    private var liveTableIsExclusive = false

    /// Old blocks of realloc calls in flight, per thread (REALLOC_RELEASE seen, REALLOC not yet),
    /// at most one per thread across `pendingFirst` and `pendingReleases`. Nearly every REALLOC
    /// comes right after its own thread's REALLOC_RELEASE, so the one slot kept inline serves
    /// almost all of them without touching the array (a uniqueness and a bounds check per access).
    private var pendingFirst = PendingRelease(tid: 0, address: 0, block: nil, isActive: false)
    /// Other threads' reallocs in flight while `pendingFirst` is taken. Slots are reused rather
    /// than removed: realloc is frequent, threads are few.
    private var pendingReleases: [PendingRelease] = []
    private struct PendingRelease {
        var tid: UInt64
        var address: UInt64
        var block: LiveBlock?
        var isActive: Bool
    }

    /// - Parameter header: supplies the page size, the initial mmap threshold and the malloc
    ///   environment.
    public init(header: TraceHeader, expectedLiveBlocks: Int = 1 << 14) {
        let page = header.pageSize ?? 4096
        pageSize = page > 0 && page & (page - 1) == 0 ? page : 4096
        threshold = MmapThresholdTracker(headerThreshold: header.mmapThreshold, pageSize: pageSize,
                                         mallocEnvironment: header.mallocEnvironment)
        live = LiveBlockTable(minimumCapacity: expectedLiveBlocks)
        allocationCalls = AllocationCalls(countsTemporariesFromEvents: !header.foldsShortLivedBlocks)
        largeBlockMinimum = threshold.initial > 64 ? threshold.initial - 64 : 0
    }

    /// Keeps live bytes per call site from now on (for growth rates), starting with the blocks
    /// already live (inherited at fork). Costs a few loads and a store per allocation and release.
    public mutating func startSiteAccounting(_ accounting: SiteAccounting) {
        live.forEach { accounting.allocated($0, time: 0) }
        siteAccounting = accounting
    }

    /// Stops site accounting and returns what it holds.
    public mutating func stopSiteAccounting() -> SiteAccounting? {
        defer { siteAccounting = nil }
        return siteAccounting
    }

    // MARK: Replaying records

    /// Applies one record. `tid` and `time` are the record's context (current thread and time).
    @inline(__always)
    public mutating func apply(_ record: TraceRecord, tid: UInt64, time: UInt64) {
        switch record {
        case let .alloc(function, path, address, size, stack):
            recordAlloc(function: function, path: path, address: address, size: size, stack: stack, time: time,
                        tid: tid)
        case let .free(address):
            recordFree(address: address, tid: tid, time: time)
        case let .reallocRelease(address):
            recordReallocRelease(address: address, tid: tid, time: time)
        case let .realloc(status, path, isReallocarray, old, new, size, stack):
            recordRealloc(status: status, path: path, isReallocarray: isReallocarray, old: old, new: new,
                          size: size, stack: stack, tid: tid, time: time)
        default:
            applyOther(record, time: time)
        }
    }

    /// An ALLOC record.
    @inline(__always)
    public mutating func recordAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                            stack: UInt32, time: UInt64, tid: UInt64 = 0) {
        counters.allocs += 1
        if !allocationCallsCountedByReader { allocationCalls.allocated(stack: stack, size: size, address: address, tid: tid) }
        allocate(LiveBlock(address: address, size: size, time: time, stack: stack, path: path, function: function))
    }

    /// A FREE record.
    @inline(__always)
    public mutating func recordFree(address: UInt64, tid: UInt64, time: UInt64) {
        counters.frees += 1
        if !allocationCallsCountedByReader { allocationCalls.released(address: address, tid: tid) }
        release(address, tid: tid, time: time)
    }

    /// A REALLOC_RELEASE record.
    public mutating func recordReallocRelease(address: UInt64, tid: UInt64, time: UInt64) {
        if !allocationCallsCountedByReader { allocationCalls.released(address: address, tid: tid) }
        releaseForRealloc(address, tid: tid, time: time)
    }

    /// A REALLOC record.
    public mutating func recordRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                              new: UInt64, size: UInt64, stack: UInt32, tid: UInt64, time: UInt64) {
        finishRealloc(status: status, path: path, function: isReallocarray ? .reallocarray : .realloc,
                      old: old, new: new, size: size, stack: stack, tid: tid, time: time)
    }

    /// Every record other than the four allocation records (rare: kept out of line).
    public mutating func applyOther(_ record: TraceRecord, time: UInt64) {
        switch record {
        case .alloc, .free, .reallocRelease, .realloc:
            apply(record, tid: 0, time: time)
        case let .time(microseconds):
            lastTime = microseconds
        case .thread, .stack, .sample, .threadName, .fork, .exec, .note, .unknown:
            break
        case let .mark(_, source):
            noteMark(source: source, time: time)
        case let .reach(record):
            noteReach(record)
        case let .fold(summary):
            applyFold(summary)
        case .modules:
            counters.moduleSnapshots += 1
            moduleSnapshotTimes.append(time)
        case let .mmap(_, length, _, flags, fd, _, result, _, path, stack):
            counters.mmaps += 1
            guard result != failedAddress, length > 0 else { return }
            let kind = MappingKind(flags: flags, fd: fd, path: path)
            let isFile = kind == .privateFile || kind == .sharedFile
            mappings.insert(Mapping(start: result, end: MappingSet.saturatingEnd(result, roundToPage(length)),
                                    kind: kind, path: isFile ? path : "", stack: stack, time: time))
        case let .munmap(address, length, result, _, _):
            counters.munmaps += 1
            guard result == 0, length > 0 else { return }
            mappings.remove(from: address, to: MappingSet.saturatingEnd(address, roundToPage(length)))
        case let .mremap(oldAddress, oldSize, newSize, flags, _, result, _, _):
            counters.mremaps += 1
            guard result != failedAddress, newSize > 0 else { return }
            let dontUnmap: UInt64 = 4   // MREMAP_DONTUNMAP
            let moved = mappings.remap(oldStart: oldAddress, oldSize: roundToPage(oldSize),
                                       newStart: result, newSize: roundToPage(newSize),
                                       keepOld: flags & dontUnmap != 0 || oldSize == 0)
            if !moved { counters.unknownRemaps += 1 }
        case let .brk(_, result, before, after, stack):
            guard result == 0 else { return }
            moveBreak(by: Int64(bitPattern: after &- before), stack: stack, time: time)
        case let .sbrk(increment, result, _, stack):
            guard result != failedAddress else { return }
            moveBreak(by: increment, stack: stack, time: time)
        case let .mallopt(parameter, value, result):
            counters.malloptCalls += 1
            threshold.mallopt(parameter: parameter, value: value, result: result, time: time)
        case let .end(counts):
            end = counts
        }
    }

    @inline(__always)
    private mutating func allocate(_ block: LiveBlock) {
        guard block.address != 0 else {
            counters.nullAllocs += 1
            return
        }
        let replaced = liveTableIsExclusive ? live.insertAssumingUnique(block) : live.insert(block)
        if block.size >= largeBlockMinimum { noteLargeBlock(block) }
        if let replaced {
            forgetLargeBlock(replaced)
            counters.duplicateAllocs += 1
            if duplicateAllocExamples.count < Self.exampleLimit { duplicateAllocExamples.append(replaced) }
        }
        if block.pathRaw == AllocPath.heap.rawValue, block.address < lowestHeapStart {
            lowestHeapStart = block.address
        }
        if live.totalBytes > peakLiveBytes {
            peakLiveBytes = live.totalBytes
            peakLiveTime = block.time
        }
        if live.totalBytes > foldSpanHigh { foldSpanHigh = live.totalBytes }
        if let countingSites {
            countingSites._withUnsafeGuaranteedRef { accounting in
                if let replaced { accounting.released(replaced) }
                accounting.allocated(block, time: block.time)
            }
        }
        if let observer { observer(.allocated(block, replaced: replaced)) }
    }

    /// Site accounting's side of a block that left (freed, reallocated away, replaced): the one
    /// place that calls it, so that the closure is inlined wherever this is. Written out in
    /// two release paths, the two identical closures were merged into one function the
    /// optimizer then called (45 instructions a realloc on perl's trace).
    @inline(__always)
    private func accountRelease(_ block: LiveBlock) {
        if let countingSites {
            countingSites._withUnsafeGuaranteedRef { accounting in accounting.released(block) }
        }
    }

    @inline(__always)
    private mutating func removeLive(_ address: UInt64) -> LiveBlock? {
        let block = liveTableIsExclusive ? live.removeAssumingUnique(address) : live.remove(address)
        if live.totalBytes < foldSpanLow { foldSpanLow = live.totalBytes }
        return block
    }

    /// Starts a pass that nothing outside the replayer can observe (see `liveTableIsExclusive`).
    mutating func beginExclusivePass() {
        live.makeStorageUnique()
        liveTableIsExclusive = true
    }

    mutating func endExclusivePass() { liveTableIsExclusive = false }

    /// At the end of a replay pass: the live table gives back the pages that hold no block.
    mutating func releaseEmptyTablePages() { live.releaseEmptyPages() }

    /// Remembers the threshold state for a large block the heap served.
    private mutating func noteLargeBlock(_ block: LiveBlock) {
        guard block.pathRaw == AllocPath.heap.rawValue || block.pathRaw == AllocPath.threadArena.rawValue,
              MmapThresholdTracker.normalizedRequest(block.size) >= threshold.initial else { return }
        largeHeapBlocks[block.address] = ThresholdContext(threshold: threshold.current,
                                                          lastChange: threshold.history.last,
                                                          mmapDisabled: threshold.mmapDisabledAt != nil)
    }

    @inline(__always)
    private mutating func forgetLargeBlock(_ block: LiveBlock) {
        if block.size >= largeBlockMinimum, !largeHeapBlocks.isEmpty {
            largeHeapBlocks.removeValue(forKey: block.address)
        }
    }

    @inline(__always)
    private mutating func release(_ address: UInt64, tid: UInt64, time: UInt64) {
        if let block = removeLive(address) {
            forgetLargeBlock(block)
            noteGone(block, time: time)
        } else {
            noteUnknownRelease(UnknownRelease(address: address, tid: tid, time: time, viaRealloc: false))
        }
    }

    /// A block left for good (free, or realloc(p, 0)): glibc's free may raise the threshold.
    /// Inlined: as a call, it was 90 instructions a free.
    @inline(__always)
    private mutating func noteGone(_ block: LiveBlock, time: UInt64) {
        if block.pathRaw == AllocPath.mmapThreshold.rawValue {
            threshold.freedMmappedBlock(requestSize: block.size, time: time)
        }
        accountRelease(block)
        if let observer { observer(.released(block)) }
        if countingRuntimeCleanup {
            runtimeCleanup?.blocks += 1
            runtimeCleanup?.bytes &+= block.size
        }
    }

    private mutating func noteUnknownRelease(_ release: UnknownRelease) {
        counters.unknownReleases += 1
        if unknownReleaseExamples.count < Self.exampleLimit { unknownReleaseExamples.append(release) }
        if let observer { observer(.unknownRelease(release)) }
    }

    private mutating func releaseForRealloc(_ address: UInt64, tid: UInt64, time: UInt64) {
        let block = removeLive(address)
        if let block {
            forgetLargeBlock(block)
            accountRelease(block)
            if let observer { observer(.released(block)) }
        } else {
            noteUnknownRelease(UnknownRelease(address: address, tid: tid, time: time, viaRealloc: true))
        }
        // A thread has at most one realloc in flight; a release whose REALLOC never came
        // (trace damage) is simply overwritten: that block stays gone.
        let pending = PendingRelease(tid: tid, address: address, block: block, isActive: true)
        if !pendingFirst.isActive || pendingFirst.tid == tid {
            if !pendingFirst.isActive && !pendingReleases.isEmpty {
                // This thread's older release may wait in the array: the new one replaces it.
                for index in pendingReleases.indices where pendingReleases[index].tid == tid {
                    pendingReleases[index].isActive = false
                }
            }
            pendingFirst = pending
            return
        }
        var freeSlot = -1
        for index in pendingReleases.indices {
            if pendingReleases[index].isActive {
                if pendingReleases[index].tid == tid {
                    pendingReleases[index] = pending
                    return
                }
            } else if freeSlot < 0 {
                freeSlot = index
            }
        }
        if freeSlot >= 0 { pendingReleases[freeSlot] = pending } else { pendingReleases.append(pending) }
    }

    /// Takes the old block of thread `tid`'s realloc of `old` out of the in-flight list.
    /// Returns (was a release seen, the block if it was live).
    private mutating func takePendingRelease(tid: UInt64, old: UInt64) -> (seen: Bool, block: LiveBlock?) {
        if pendingFirst.isActive && pendingFirst.tid == tid && pendingFirst.address == old {
            pendingFirst.isActive = false
            return (true, pendingFirst.block)
        }
        guard !pendingReleases.isEmpty else { return (false, nil) }
        for index in pendingReleases.indices
        where pendingReleases[index].isActive && pendingReleases[index].tid == tid && pendingReleases[index].address == old {
            pendingReleases[index].isActive = false
            return (true, pendingReleases[index].block)
        }
        return (false, nil)
    }

    private mutating func finishRealloc(status: ReallocStatus, path: AllocPath, function: AllocFunction,
                               old: UInt64, new: UInt64, size: UInt64, stack: UInt32,
                               tid: UInt64, time: UInt64) {
        counters.reallocs += 1
        var oldBlock: LiveBlock?
        if old != 0 {
            let pending = takePendingRelease(tid: tid, old: old)
            if pending.seen {
                oldBlock = pending.block
            } else if status != .failed {
                // No REALLOC_RELEASE came first (the writer always sends one): release now.
                oldBlock = removeLive(old)
                if let oldBlock { forgetLargeBlock(oldBlock) }
                if let oldBlock { accountRelease(oldBlock) }
                if let oldBlock, let observer { observer(.released(oldBlock)) }
                if oldBlock == nil {
                    noteUnknownRelease(UnknownRelease(address: old, tid: tid, time: time, viaRealloc: true))
                }
            }
        }
        if !allocationCallsCountedByReader {
            allocationCalls.reallocated(status: status, new: new, size: size, stack: stack, tid: tid)
        }
        switch status {
        case .failed:
            counters.failedReallocs += 1
            if let oldBlock { allocate(oldBlock) }
        case .freed:
            // realloc(p, 0) frees through glibc's free, which may raise the threshold.
            if let oldBlock, oldBlock.pathRaw == AllocPath.mmapThreshold.rawValue {
                threshold.freedMmappedBlock(requestSize: oldBlock.size, time: time)
            }
        case .movedOrResized:
            allocate(LiveBlock(address: new, size: size, time: time, stack: stack, path: path,
                               function: function))
        }
    }

    private mutating func moveBreak(by bytes: Int64, stack: UInt32, time: UInt64) {
        counters.breakCalls += 1
        guard bytes != 0 else { return }   // brk(0) / sbrk(0) only ask where the break is
        var growth = breakGrowth[stack] ?? BreakGrowth(stack: StackRef(id: stack, isInherited: false),
                                                       netBytes: 0, calls: 0, firstTime: time, lastTime: time)
        growth.netBytes = growth.netBytes &+ bytes
        growth.calls += 1
        growth.lastTime = time
        breakGrowth[stack] = growth
    }

    private func roundToPage(_ length: UInt64) -> UInt64 {
        guard length <= UInt64.max - pageSize else { return UInt64.max & ~(pageSize - 1) }
        return (length + pageSize - 1) & ~(pageSize - 1)
    }

    // MARK: Fork

    /// Starts this (child) replay from the state of `parent` at the fork: its live blocks and
    /// mappings become inherited, their stacks re-interned by frame content into
    /// `inheritedStacks` (the child's stack ids mean something else), and the allocator's
    /// threshold state carries over. Inherited blocks get time 0: the parent's clock is not
    /// the child's.
    public mutating func inherit(from parent: Replayer, parentStacks: StackLookup) {
        var translated: [StackRef: UInt32] = [:]
        func translate(_ reference: StackRef) -> UInt32 {
            guard reference.id != 0 else { return 0 }
            if let known = translated[reference] { return known }
            let frames = reference.isInherited ? parent.inheritedStacks.frames(reference.id, limit: .max)
                                               : parentStacks.frames(reference.id, limit: .max)
            let id = inheritedStacks.intern(frames: frames)
            translated[reference] = id
            return id
        }
        parent.live.forEach { block in
            var copy = block
            copy.flags.insert(.inherited)
            copy.stack = translate(block.stackRef)
            copy.time = 0
            live.insert(copy)
            inheritedBlocks += 1
            inheritedBytes &+= block.size
        }
        var inheritedMappings = parent.mappings
        inheritedMappings.markInherited(mapStack: translate)
        for mapping in inheritedMappings.mappings {
            var copy = mapping
            copy.time = 0
            mappings.insert(copy)
        }
        threshold.inherit(from: parent.threshold)
        largeHeapBlocks = parent.largeHeapBlocks
        lowestHeapStart = parent.lowestHeapStart
        peakLiveBytes = live.totalBytes
        foldSpanLow = live.totalBytes
        foldSpanHigh = live.totalBytes
    }
}
