import LiveSet
import Symbolization
import TraceFormat

/// How leaked blocks are grouped.
public enum GroupBy: String, CaseIterable, Sendable {
    /// The first frame that is not the allocator or an allocation wrapper.
    case callsite
    /// The whole stack, by frame content.
    case stack
    /// The function of the call site.
    case function
    /// The source file of the call site (its module when there is no debug info).
    case file
    /// The module of the call site.
    case module
}

/// What the analysis should do.
public struct AnalysisOptions: Sendable {
    public var groupBy: GroupBy = .callsite
    public var frameFilter = AllocatorFrameFilter()
    public var suppressions = Suppressions()
    /// Groups to keep (--top).
    public var top = 20
    /// Groups smaller than this are left out of the list (still counted in the summary).
    public var minBytes: UInt64 = 0
    /// Heap blocks nearest the top to name in the heap-hole section.
    public var nearTopCount = 5
    /// Collect every leaked stack (for the folded format).
    public var collectStacks = false
    /// Direct mappings to list.
    public var mappingLimit = 50
    public init() {}
}

/// Turns the state left by replay into a `LeakReport`: groups by call site (or stack,
/// function, file, module), totals by path, suppressions, heap hole and threshold notes.
///
/// Work is proportional to the live blocks plus the distinct stacks they came from; only
/// frames needed for grouping, suppressions or display are symbolized, each address once.
public struct LeakAnalyzer {
    public var options: AnalysisOptions

    public init(options: AnalysisOptions = AnalysisOptions()) { self.options = options }

    /// Analyzes `replay`. `stacks` is the traced process's stack table, `modules` its module
    /// snapshots; `facts` describes the trace for the report.
    public func analyze(replay: Replayer, stacks: StackLookup, modules: ModuleLookup,
                        symbolizer: FrameSymbolizer, facts: TraceFacts, warnings: [String] = []) -> LeakReport {
        var work = AnalysisRun(options: options, replay: replay, stacks: stacks,
                               cache: FrameCache(symbolizer: symbolizer, modules: modules, options: options))
        work.aggregateBlocks()
        work.aggregateMappings()
        work.classifyStacks()
        let groups = work.buildGroups()
        let summary = work.buildSummary(groupCount: groups.total, outcome: facts.outcome)
        var report = LeakReport(trace: work.symbolizingDeath(facts), summary: summary, groups: groups.shown,
                                groupBy: options.groupBy.rawValue, mappings: work.placedMappings(),
                                breakGrowth: work.breakGrowthSites(),
                                stacks: options.collectStacks ? work.leakStacks() : [],
                                warnings: warnings + symbolizer.symbolizationWarnings)
        report.allocationSites = work.allocationSites()
        return report
    }
}

// MARK: - One analysis

/// Leaked blocks sharing one stack, before grouping.
struct StackAggregate {
    var blocks = 0
    var bytes: UInt64 = 0
    var smallest: UInt64 = .max
    var largest: UInt64 = 0
    var byPath = PathAmounts()
    var inherited = Amount()
    var firstTime: UInt64 = .max
    var lastTime: UInt64 = 0
    var biggest: (address: UInt64, size: UInt64, path: LeakPath, time: UInt64, inherited: Bool) = (0, 0, .unknown, 0, false)
    /// The biggest block of at least the initial threshold served from the heap or a thread arena.
    var largeFromHeap = Amount()
    var largestFromHeap: (size: UInt64, context: ThresholdContext?)?
    /// By reachability category (left empty when the trace has no usable scan).
    var reachability = ReachabilityAmounts()

    /// Adds one block. `largeContext` is non-nil for a heap block of at least the initial
    /// threshold (its inner value: the threshold state at its allocation, when known).
    /// `category` is non-nil when the trace has a usable scan (its inner value: the block's
    /// category, nil when the scan did not classify it).
    mutating func add(address: UInt64, size: UInt64, path: LeakPath, time: UInt64, inherited isInherited: Bool,
                      largeContext: ThresholdContext?? = nil, category: Reachability?? = nil) {
        if let category { reachability.add(category, bytes: size) }
        if let context = largeContext {
            largeFromHeap.add(blocks: 1, bytes: size)
            if size > (largestFromHeap?.size ?? 0) { largestFromHeap = (size, context) }
        }
        blocks += 1
        bytes &+= size
        smallest = min(smallest, size)
        if size > largest || blocks == 1 {
            largest = max(largest, size)
            biggest = (address, size, path, time, isInherited)
        }
        byPath.add(path, blocks: 1, bytes: size)
        if isInherited { inherited.add(blocks: 1, bytes: size) }
        firstTime = min(firstTime, time)
        lastTime = max(lastTime, time)
    }

    /// Whether `other`'s biggest block is shown instead of this one's: the larger, then the
    /// earlier, then the lower address, so that the choice never depends on the order in which
    /// stacks are met (a dictionary's, which changes from run to run).
    func yieldsBiggest(to other: StackAggregate) -> Bool {
        if other.largest != largest { return other.largest > largest }
        if other.biggest.time != biggest.time { return other.biggest.time < biggest.time }
        return other.biggest.address < biggest.address
    }

    mutating func merge(_ other: StackAggregate) {
        blocks += other.blocks
        bytes &+= other.bytes
        smallest = min(smallest, other.smallest)
        if yieldsBiggest(to: other) { largest = other.largest; biggest = other.biggest }
        byPath.merge(other.byPath)
        inherited = inherited + other.inherited
        firstTime = min(firstTime, other.firstTime)
        lastTime = max(lastTime, other.lastTime)
        largeFromHeap = largeFromHeap + other.largeFromHeap
        if let theirs = other.largestFromHeap, theirs.size > (largestFromHeap?.size ?? 0) {
            largestFromHeap = theirs
        }
        reachability.merge(other.reachability)
    }
}

/// What a group is keyed on.
enum GroupKey: Hashable {
    case name(String)
    case frames([UInt64])
}

/// Classification of one distinct stack.
struct StackClass {
    var suppressedBy: Int?
    var key: GroupKey
    var name: String
    var callsite: SymbolizedFrame?
}

struct AnalysisRun {
    let options: AnalysisOptions
    let replay: Replayer
    let stacks: StackLookup
    let cache: FrameCache
    let initialThreshold: UInt64
    /// The scan's categories, when the trace has a usable one.
    let reachability: ExitReachability?

    var perStack: [StackRef: StackAggregate] = [:]
    var classes: [StackRef: StackClass] = [:]
    var liveHeap = Amount()
    var heapTop: UInt64?
    /// Highest live heap blocks, sorted by address descending, at most nearTopCount.
    var nearTop: [LiveBlock] = []

    init(options: AnalysisOptions, replay: Replayer, stacks: StackLookup, cache: FrameCache) {
        self.options = options
        self.replay = replay
        self.stacks = stacks
        self.cache = cache
        initialThreshold = replay.threshold.initial
        reachability = replay.knownReachability
    }

    // MARK: Aggregation

    mutating func aggregateBlocks() {
        let large = MmapThresholdTracker.normalizedRequest
        var perStack = self.perStack
        var liveHeap = self.liveHeap
        var heapTop = self.heapTop
        var nearTop = self.nearTop
        let nearTopCount = options.nearTopCount
        let initialThreshold = self.initialThreshold
        let largeBlocks = replay.largeHeapBlocks
        let reachability = self.reachability
        replay.live.forEach { block in
            let path = LeakPath(block.path)
            let isLarge = (path == .heap || path == .threadArena) && large(block.size) >= initialThreshold
            // Updated in place through the default subscript: copying the aggregate out and
            // back would copy its per-path array for every block.
            perStack[block.stackRef, default: StackAggregate()].add(
                address: block.address, size: block.size, path: path, time: block.time,
                inherited: block.isInherited, largeContext: isLarge ? .some(largeBlocks[block.address]) : nil,
                category: reachability.map { $0.category(of: block.address) })
            if path == .heap {
                liveHeap.add(blocks: 1, bytes: block.size)
                heapTop = max(heapTop ?? 0, block.end)
                Self.keepNearTop(block, in: &nearTop, limit: nearTopCount)
            }
        }
        self.perStack = perStack
        self.liveHeap = liveHeap
        self.heapTop = heapTop
        self.nearTop = nearTop
    }

    /// Keeps the `limit` highest-addressed blocks, highest first.
    static func keepNearTop(_ block: LiveBlock, in list: inout [LiveBlock], limit: Int) {
        guard limit > 0 else { return }
        if list.count == limit, let lowest = list.last, lowest.address >= block.address { return }
        let position = list.firstIndex { $0.address < block.address } ?? list.count
        list.insert(block, at: position)
        if list.count > limit { list.removeLast() }
    }

    mutating func aggregateMappings() {
        for mapping in replay.mappings.mappings {
            perStack[mapping.stackRef, default: StackAggregate()].add(
                address: mapping.start, size: mapping.size, path: LeakPath(mapping.kind),
                time: mapping.time, inherited: mapping.flags.contains(.inherited),
                category: reachability.map { $0.category(of: mapping.start) })
        }
    }

    // MARK: Classification

    func frames(of reference: StackRef) -> [UInt64] {
        replay.frames(of: reference, in: stacks)
    }

    func snapshot(at time: UInt64) -> Int { replay.moduleSnapshotIndex(at: time) }

    /// The first frame that is not part of the allocator, resolving frames only as far as needed.
    func callsite(of addresses: [UInt64], snapshot: Int) -> SymbolizedFrame? {
        cache.callsite(of: addresses, snapshot: snapshot)
    }

    /// The group a stack belongs to under `--group-by`, and its call site.
    func group(of addresses: [UInt64], snapshot: Int) -> (key: GroupKey, name: String, callsite: SymbolizedFrame?) {
        let site = callsite(of: addresses, snapshot: snapshot)
        let key: GroupKey
        let name: String
        switch options.groupBy {
        case .callsite:
            name = site?.displayName ?? "<no stack>"
            key = .name(site.map(Self.callsiteIdentity) ?? name)
        case .stack:
            name = site?.displayName ?? "<no stack>"
            key = .frames(addresses)
        case .function:
            name = site.map { $0.function ?? $0.moduleAndOffset } ?? "<no stack>"
            key = .name(name)
        case .file:
            name = site.map { $0.file ?? $0.module ?? "<unknown file>" } ?? "<no stack>"
            key = .name(name)
        case .module:
            name = site.map { $0.module ?? "<unknown module>" } ?? "<no stack>"
            key = .name(name)
        }
        return (key, name, site)
    }

    /// Call sites are the same when they are the same source line of the same function, or,
    /// without line information, the same place in the same module.
    static func callsiteIdentity(_ frame: SymbolizedFrame) -> String {
        if let file = frame.file, let line = frame.line {
            return "\(frame.function ?? "")\u{1}\(file)\u{1}\(line)"
        }
        return "\(frame.function ?? "")\u{1}\(frame.module ?? "")\u{1}\(frame.moduleOffset ?? frame.address)"
    }

    mutating func classifyStacks() {
        // A group follows from the call-site frame alone (but with --group-by stack), and naming
        // it builds strings: it is worked out once per call-site frame, not once per stack.
        var groupOfCallsite = CallsiteMap<(key: GroupKey, name: String, callsite: SymbolizedFrame?)>()
        let byCallsite = options.groupBy != .stack
        for (reference, aggregate) in perStack {
            let addresses = frames(of: reference)
            let snapshot = snapshot(at: aggregate.firstTime)
            let group: (key: GroupKey, name: String, callsite: SymbolizedFrame?)
            if byCallsite, let number = cache.numberedCallsite(of: addresses, snapshot: snapshot)?.number {
                if let known = groupOfCallsite[number] {
                    group = known
                } else {
                    group = self.group(of: addresses, snapshot: snapshot)
                    groupOfCallsite[number] = group
                }
            } else {
                group = self.group(of: addresses, snapshot: snapshot)
            }
            classes[reference] = StackClass(suppressedBy: cache.suppression(of: addresses, snapshot: snapshot),
                                            key: group.key, name: group.name, callsite: group.callsite)
        }
    }

    // MARK: Groups

    mutating func buildGroups() -> (shown: [LeakGroup], total: Int) {
        var merged: [GroupKey: (aggregate: StackAggregate, biggestStack: StackRef, name: String, callsite: SymbolizedFrame?)] = [:]
        for (reference, aggregate) in perStack {
            guard let stackClass = classes[reference], stackClass.suppressedBy == nil else { continue }
            if var existing = merged[stackClass.key] {
                if existing.aggregate.yieldsBiggest(to: aggregate) {
                    existing.biggestStack = reference
                    existing.name = stackClass.name
                    existing.callsite = stackClass.callsite
                }
                existing.aggregate.merge(aggregate)
                merged[stackClass.key] = existing
            } else {
                merged[stackClass.key] = (aggregate, reference, stackClass.name, stackClass.callsite)
            }
        }
        let byReachability = reachability != nil
        // Sorted by index on keys taken out first: moving the groups themselves (each with its
        // aggregate), or copying them out to compare, cost more than the comparisons. The order
        // is total (the last key, the biggest stack, is unique to its group).
        let groups = Array(merged.values)
        let severities = groups.map { $0.aggregate.reachability.severity }
        let bytes = groups.map(\.aggregate.bytes), blocks = groups.map(\.aggregate.blocks)
        let names = groups.map(\.name), biggestStacks = groups.map(\.biggestStack)
        let ordered = groups.indices.sorted { lhs, rhs in
            if byReachability, severities[lhs] != severities[rhs] { return severities[lhs] < severities[rhs] }
            if bytes[lhs] != bytes[rhs] { return bytes[lhs] > bytes[rhs] }
            if blocks[lhs] != blocks[rhs] { return blocks[lhs] > blocks[rhs] }
            if names[lhs] != names[rhs] { return names[lhs] < names[rhs] }
            // Groups of one name (--group-by stack: stacks through one call site) in the trace's
            // order of their biggest stack, not the dictionary's, which differs from run to run.
            if biggestStacks[lhs].isInherited != biggestStacks[rhs].isInherited { return biggestStacks[lhs].isInherited }
            return biggestStacks[lhs].id < biggestStacks[rhs].id
        }.lazy.map { groups[$0] }
        var shown: [LeakGroup] = []
        for entry in ordered where entry.aggregate.bytes >= options.minBytes {
            guard shown.count < options.top else { break }
            let aggregate = entry.aggregate
            let biggest = aggregate.biggest
            let stack = cache.frames(forStack: frames(of: entry.biggestStack), snapshot: snapshot(at: biggest.time))
            shown.append(LeakGroup(
                rank: shown.count + 1, name: entry.name, callsite: entry.callsite,
                blocks: aggregate.blocks, bytes: aggregate.bytes, smallest: aggregate.smallest,
                largest: aggregate.largest, byPath: aggregate.byPath, inherited: aggregate.inherited,
                firstAllocationUs: aggregate.firstTime, lastAllocationUs: aggregate.lastTime,
                thresholdNote: aggregate.largestFromHeap.map { thresholdNote(size: $0.size, context: $0.context, count: aggregate.largeFromHeap.blocks) },
                reachability: byReachability ? aggregate.reachability : nil,
                biggest: PlacedBlock(address: biggest.address, size: biggest.size, path: biggest.path,
                                     timeUs: biggest.time, inherited: biggest.inherited,
                                     callsite: entry.callsite, stack: stack)))
        }
        return (shown, merged.count)
    }

    /// Why a block of `size` bytes that reached the initial threshold came from the heap,
    /// from the threshold state captured when it was allocated.
    func thresholdNote(size: UInt64, context: ThresholdContext?, count: Int) -> String {
        let request = MmapThresholdTracker.normalizedRequest(size)
        let subject = count == 1 ? "this \(size)-byte block"
            : "\(count) blocks of at least \(formatBytes(initialThreshold)) (largest \(size) bytes)"
        guard let context else {
            return "\(subject) came from the heap (the threshold in force at its allocation is not known)"
        }
        if context.mmapDisabled {
            return "\(subject) came from the heap: mmapped chunks were disabled by mallopt(M_MMAP_MAX, 0)"
        }
        if request < context.threshold {
            switch context.lastChange?.reason {
            case let .freedMmappedBlock(requestSize, _)?:
                return "\(subject) came from the heap: the mmap threshold was raised to \(context.threshold) bytes at \(formatTime(context.lastChange?.time ?? 0)) by freeing a \(requestSize)-byte mmapped block"
            case .mallopt?:
                return "\(subject) came from the heap: mallopt(M_MMAP_THRESHOLD) had set the mmap threshold to \(context.threshold) bytes at \(formatTime(context.lastChange?.time ?? 0))"
            case nil:
                return "\(subject) came from the heap: once rounded it is below the initial mmap threshold of \(context.threshold) bytes"
            }
        }
        return "\(subject) came from the heap although it reached the mmap threshold of \(context.threshold) bytes: glibc reused free heap memory (it tries mmap only when no free chunk is big enough)"
    }

    // MARK: Summary

    func buildSummary(groupCount: Int, outcome: ReadingOutcome) -> LeakSummary {
        var leaked = Amount()
        var byPath = PathAmounts()
        var inherited = Amount()
        var suppressed = Amount()
        var uses = options.suppressions.rules.map {
            SuppressionUse(pattern: $0.pattern.text, origin: $0.origin, matched: Amount())
        }
        var largeFromHeap = Amount()
        var byCategory = ReachabilityAmounts()
        for (reference, aggregate) in perStack {
            if let rule = classes[reference]?.suppressedBy {
                suppressed.add(blocks: aggregate.blocks, bytes: aggregate.bytes)
                uses[rule].matched.add(blocks: aggregate.blocks, bytes: aggregate.bytes)
                continue
            }
            leaked.add(blocks: aggregate.blocks, bytes: aggregate.bytes)
            byPath.merge(aggregate.byPath)
            inherited = inherited + aggregate.inherited
            largeFromHeap = largeFromHeap + aggregate.largeFromHeap
            byCategory.merge(aggregate.reachability)
        }
        let growth = breakGrowthTotal()
        if growth > 0 {
            byPath.add(.breakGrowth, blocks: 0, bytes: growth)
            leaked.add(blocks: 0, bytes: growth)
        }
        let tracker = replay.threshold
        return LeakSummary(
            leaked: leaked, byPath: byPath, inherited: inherited, suppressed: suppressed,
            suppressions: uses, peakLiveBytes: replay.peakLiveBytes, peakLiveUs: replay.peakLiveTime,
            peakLiveBytesBound: replay.peakLiveBytesBound, allocations: allocationTotals(),
            heapHole: heapHole(),
            mmapThreshold: ThresholdHistory(initial: tracker.initial, final: tracker.current,
                                            dynamic: tracker.isDynamic, fixedBecause: tracker.fixedBecause,
                                            moves: tracker.history.map(ThresholdMove.init),
                                            movesNotKept: tracker.droppedChanges,
                                            largeBlocksFromHeap: largeFromHeap),
            unknownFrees: replay.counters.unknownReleases,
            unknownFreeExamples: replay.unknownReleaseExamples.map {
                UnknownFreeExample(address: $0.address, tid: $0.tid, timeUs: $0.time, viaRealloc: $0.viaRealloc)
            },
            duplicateAllocations: replay.counters.duplicateAllocs,
            groups: groupCount,
            reachability: reachability.map { ReachabilitySummary(amounts: byCategory, scan: ReachabilityScan($0)) },
            reachabilityUnknown: replay.reachabilityUnknownReason(outcome: outcome),
            releasedByRuntimeCleanup: replay.runtimeCleanup.map { Amount(blocks: $0.blocks, bytes: $0.bytes) })
    }

    /// Net growth of the program break over all call sites, at least 0.
    func breakGrowthTotal() -> UInt64 {
        let net = replay.breakGrowth.values.reduce(Int64(0)) { $0 &+ $1.netBytes }
        return net > 0 ? UInt64(net) : 0
    }

    func heapHole() -> HeapHole {
        var pinned: UInt64 = 0
        if let start = replay.lowestHeapAddress, let top = heapTop, top > start {
            let span = top - start
            pinned = span > liveHeap.bytes ? span - liveHeap.bytes : 0
        }
        let placed = nearTop.map { block -> PlacedBlock in
            let addresses = frames(of: block.stackRef)
            let snapshot = snapshot(at: block.time)
            return PlacedBlock(address: block.address, size: block.size, path: LeakPath(block.path),
                               timeUs: block.time, inherited: block.isInherited,
                               callsite: callsite(of: addresses, snapshot: snapshot), stack: [])
        }
        return HeapHole(heapStart: replay.lowestHeapAddress, top: heapTop, liveHeap: liveHeap,
                        pinnedBytes: pinned, nearTop: placed)
    }

    // MARK: Mappings, brk growth, stacks

    func placedMappings() -> [PlacedMapping] {
        let shown = replay.mappings.mappings
            .filter { classes[$0.stackRef]?.suppressedBy == nil }
            .sorted { $0.size != $1.size ? $0.size > $1.size : $0.start < $1.start }
            .prefix(options.mappingLimit)
        return shown.map { mapping in
            PlacedMapping(start: mapping.start, size: mapping.size, kind: LeakPath(mapping.kind),
                          file: mapping.path.isEmpty ? nil : mapping.path, timeUs: mapping.time,
                          inherited: mapping.flags.contains(.inherited),
                          callsite: classes[mapping.stackRef]?.callsite,
                          reachability: reachability.map { $0.category(of: mapping.start)?.jsonName ?? "unclassified" })
        }
    }

    func breakGrowthSites() -> [BreakGrowthSite] {
        replay.breakGrowth.values
            .sorted { $0.netBytes != $1.netBytes ? $0.netBytes > $1.netBytes : $0.stack.id < $1.stack.id }
            .map { growth in
                let addresses = frames(of: growth.stack)
                let snapshot = snapshot(at: growth.firstTime)
                return BreakGrowthSite(netBytes: growth.netBytes, calls: growth.calls,
                                       callsite: callsite(of: addresses, snapshot: snapshot),
                                       stack: cache.frames(forStack: addresses, snapshot: snapshot))
            }
    }

    /// Every leaked, unsuppressed stack with its bytes; equal stacks (parent and child) merged.
    func leakStacks() -> [LeakStack] {
        var merged: [[UInt64]: (bytes: UInt64, blocks: Int, time: UInt64)] = [:]
        for (reference, aggregate) in perStack where classes[reference]?.suppressedBy == nil {
            let addresses = frames(of: reference)
            let previous = merged[addresses] ?? (0, 0, aggregate.firstTime)
            merged[addresses] = (previous.bytes &+ aggregate.bytes, previous.blocks + aggregate.blocks,
                                 min(previous.time, aggregate.firstTime))
        }
        return merged.map { addresses, total in
            LeakStack(frames: cache.frames(forStack: addresses, snapshot: snapshot(at: total.time)),
                      bytes: total.bytes, blocks: total.blocks)
        }.sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.frames.map(\.address).lexicographicallyPrecedes($1.frames.map(\.address)) }
    }
}
