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
    /// snapshots; `facts` describes the trace for the report. `tracker`, when given, is the
    /// tracker that rode along the same replay with the same symbolizer: what it learned of
    /// frames and stacks serves the analysis too (when it was made with the same call-site and
    /// suppression rules).
    public func analyze(replay: Replayer, stacks: StackLookup, modules: ModuleLookup,
                        symbolizer: FrameSymbolizer, facts: TraceFacts, warnings: [String] = [],
                        sharing tracker: GrowthTracker? = nil) -> LeakReport {
        let shared = tracker?.classifier.cache
        let cache = shared.flatMap { $0.serves(symbolizer: symbolizer, options: options, stacks: stacks) ? $0 : nil }
            ?? FrameCache(symbolizer: symbolizer, modules: modules, options: options, ownStacks: stacks)
        var work = AnalysisRun(options: options, replay: replay, stacks: stacks, cache: cache)
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
    /// Call sites are the same when they are the same source line of the same function, or,
    /// without line information, the same place in the same module (a function without a
    /// name, or a frame without a module, is named "").
    case line(function: String, file: String, line: Int)
    case place(function: String, module: String, offset: UInt64)

    /// The key of call site `frame` under --group-by callsite.
    init(callsite frame: SymbolizedFrame) {
        if let file = frame.file, let line = frame.line {
            self = .line(function: frame.function ?? "", file: file, line: line)
        } else {
            self = .place(function: frame.function ?? "", module: frame.module ?? "",
                          offset: frame.moduleOffset ?? frame.address)
        }
    }

    /// A call site's key hashes its line or offset and the lengths of its names, not the names
    /// (they are still compared): two call sites nearly always differ there, and hashing whole
    /// C++ function names cost more than the rest of grouping a new call site.
    func hash(into hasher: inout Hasher) {
        switch self {
        case let .name(name):
            hasher.combine(0)
            hasher.combine(name)
        case let .frames(frames):
            hasher.combine(1)
            hasher.combine(frames)
        case let .line(function, file, line):
            hasher.combine(2)
            hasher.combine(line)
            hasher.combine(function.utf8.count &<< 32 | file.utf8.count)
        case let .place(function, module, offset):
            hasher.combine(3)
            hasher.combine(offset)
            hasher.combine(function.utf8.count &<< 32 | module.utf8.count)
        }
    }
}

/// A call site as a group sees it: the group it falls in, and its frame and name. One per
/// call-site frame (per stack with --group-by stack, whose groups are stacks).
struct NamedCallsite {
    var group: Int
    var callsite: SymbolizedFrame?
    /// Nil until asked for (`AnalysisRun.name(ofCallsite:)`): most call sites are never shown,
    /// and naming one builds strings.
    var name: String?
}

/// Classification of one distinct stack.
struct StackClass {
    var suppressedBy: Int?
    /// Index in `AnalysisRun.callsites`.
    var callsite: Int
}

struct AnalysisRun {
    let options: AnalysisOptions
    let replay: Replayer
    let stacks: StackLookup
    let cache: FrameCache
    let initialThreshold: UInt64
    /// The scan's categories, when the trace has a usable one.
    let reachability: ExitReachability?

    /// The stacks of leaked blocks and mappings, numbered in the order met; by number, their
    /// aggregates and, once classified, their classes.
    var leaked = StackNumbering()
    var aggregates: [StackAggregate] = []
    var classes: [StackClass] = []
    /// Call sites met (by leaked stacks, then by allocation calls), and groups by number.
    var callsites: [NamedCallsite] = []
    var callsiteOfFrame = CallsiteMap<Int>()
    var noStackCallsite: Int?
    var groupOfKey: [GroupKey: Int] = [:]
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
        var leaked = self.leaked
        var aggregates = self.aggregates
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
            let number = leaked.number(adding: block.stackRef)
            if number == aggregates.count { aggregates.append(StackAggregate()) }
            // Updated in place: copying the aggregate out and back would copy its per-path
            // array for every block.
            aggregates[number].add(
                address: block.address, size: block.size, path: path, time: block.time,
                inherited: block.isInherited, largeContext: isLarge ? .some(largeBlocks[block.address]) : nil,
                category: reachability.map { $0.category(of: block.address) })
            if path == .heap {
                liveHeap.add(blocks: 1, bytes: block.size)
                heapTop = max(heapTop ?? 0, block.end)
                Self.keepNearTop(block, in: &nearTop, limit: nearTopCount)
            }
        }
        self.leaked = leaked
        self.aggregates = aggregates
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
            let number = leaked.number(adding: mapping.stackRef)
            if number == aggregates.count { aggregates.append(StackAggregate()) }
            aggregates[number].add(
                address: mapping.start, size: mapping.size, path: LeakPath(mapping.kind),
                time: mapping.time, inherited: mapping.flags.contains(.inherited),
                category: reachability.map { $0.category(of: mapping.start) })
        }
    }

    // MARK: Classification

    func frames(of reference: StackRef) -> [UInt64] {
        replay.frames(of: reference, in: stacks)
    }

    /// The table that holds `reference`'s nodes.
    func table(of reference: StackRef) -> StackLookup {
        reference.isInherited ? replay.inheritedStacks : stacks
    }

    func snapshot(at time: UInt64) -> Int { replay.moduleSnapshotIndex(at: time) }

    /// The first frame that is not part of the allocator, resolving frames only as far as needed.
    func callsite(of addresses: [UInt64], snapshot: Int) -> SymbolizedFrame? {
        cache.callsite(of: addresses, snapshot: snapshot)
    }

    /// The group's key of a stack whose call site is `site` (nil: an empty stack) under
    /// `--group-by` (but `stack`, whose key is the stack's frames), with the group's name when
    /// the key holds it.
    func keyAndName(ofCallsite site: SymbolizedFrame?) -> (key: GroupKey, name: String?) {
        guard let site else { return (.name("<no stack>"), "<no stack>") }
        switch options.groupBy {
        case .callsite, .stack:
            return (GroupKey(callsite: site), nil)
        case .function:
            let name = site.function ?? site.moduleAndOffset
            return (.name(name), name)
        case .file:
            let name = site.file ?? site.module ?? "<unknown file>"
            return (.name(name), name)
        case .module:
            let name = site.module ?? "<unknown module>"
            return (.name(name), name)
        }
    }

    /// The name of the group call site `index` stands for, worked out the first time it is asked for.
    mutating func name(ofCallsite index: Int) -> String {
        if let name = callsites[index].name { return name }
        let name = callsites[index].callsite?.displayName ?? "<no stack>"
        callsites[index].name = name
        return name
    }

    /// Adds a call site in the group of `key` (a new group when the key is new).
    private mutating func addCallsite(key: GroupKey, name: String?, callsite: SymbolizedFrame?) -> Int {
        let group: Int
        if let known = groupOfKey[key] {
            group = known
        } else {
            group = groupOfKey.count
            groupOfKey[key] = group
        }
        callsites.append(NamedCallsite(group: group, callsite: callsite, name: name))
        return callsites.count - 1
    }

    /// The index in `callsites` of the stack `reference`'s call site, resolved against module
    /// snapshot `snapshot`. A group follows from the call-site frame alone (but with
    /// --group-by stack), and naming it builds strings: it is worked out once per call-site
    /// frame, not once per stack, and only the frames up to the call site are read.
    mutating func namedCallsite(of reference: StackRef, snapshot: Int) -> Int {
        guard options.groupBy != .stack else {
            let addresses = frames(of: reference)
            let site = callsite(of: addresses, snapshot: snapshot)
            return addCallsite(key: .frames(addresses), name: site == nil ? "<no stack>" : nil, callsite: site)
        }
        guard let number = cache.callsiteNumber(ofStack: reference.id, in: table(of: reference), snapshot: snapshot) else {
            if let known = noStackCallsite { return known }
            let named = keyAndName(ofCallsite: nil)
            let index = addCallsite(key: named.key, name: named.name, callsite: nil)
            noStackCallsite = index
            return index
        }
        if let known = callsiteOfFrame[number] { return known }
        let frame = cache.frame(number)
        let named = keyAndName(ofCallsite: frame)
        let index = addCallsite(key: named.key, name: named.name, callsite: frame)
        callsiteOfFrame[number] = index
        return index
    }

    mutating func classifyStacks() {
        classes.reserveCapacity(leaked.count)
        for (reference, aggregate) in zip(leaked.references, aggregates) {
            let snapshot = snapshot(at: aggregate.firstTime)
            let callsite = namedCallsite(of: reference, snapshot: snapshot)
            let suppressedBy = cache.suppression(ofStack: reference.id, in: table(of: reference), snapshot: snapshot)
            classes.append(StackClass(suppressedBy: suppressedBy, callsite: callsite))
        }
    }

    // MARK: Groups

    mutating func buildGroups() -> (shown: [LeakGroup], total: Int) {
        // By group number: the group's aggregate, and the stack (number) of its biggest block.
        var merged: [(aggregate: StackAggregate, biggest: Int)?] = Array(repeating: nil, count: groupOfKey.count)
        var mergedCount = 0
        for number in aggregates.indices where classes[number].suppressedBy == nil {
            let group = callsites[classes[number].callsite].group
            if merged[group] == nil {
                merged[group] = (aggregates[number], number)
                mergedCount += 1
                continue
            }
            if merged[group]!.aggregate.yieldsBiggest(to: aggregates[number]) { merged[group]!.biggest = number }
            merged[group]!.aggregate.merge(aggregates[number])
        }
        let groups = merged.compactMap { $0 }
        let byReachability = reachability != nil
        // Sorted by index on keys taken out first: moving the groups themselves (each with its
        // aggregate), or copying them out to compare, cost more than the comparisons. The order
        // is total (the last key, the biggest stack, is unique to its group).
        let severities = groups.map { $0.aggregate.reachability.severity }
        let bytes = groups.map(\.aggregate.bytes), blocks = groups.map(\.aggregate.blocks)
        let biggestStacks = groups.map { leaked.references[$0.biggest] }
        let callsiteOfGroup = groups.map { classes[$0.biggest].callsite }
        let ordered = Self.sortedIndices(
            count: groups.count,
            before: { lhs, rhs in
                if byReachability, severities[lhs] != severities[rhs] { return severities[lhs] < severities[rhs] }
                if bytes[lhs] != bytes[rhs] { return bytes[lhs] > bytes[rhs] }
                if blocks[lhs] != blocks[rhs] { return blocks[lhs] > blocks[rhs] }
                return nil
            },
            name: { name(ofCallsite: callsiteOfGroup[$0]) },
            after: { lhs, rhs in
                // Groups of one name (--group-by stack: stacks through one call site) in the
                // trace's order of their biggest stack.
                if biggestStacks[lhs].isInherited != biggestStacks[rhs].isInherited { return biggestStacks[lhs].isInherited }
                return biggestStacks[lhs].id < biggestStacks[rhs].id
            })
        var shown: [LeakGroup] = []
        for index in ordered where groups[index].aggregate.bytes >= options.minBytes {
            guard shown.count < options.top else { break }
            let aggregate = groups[index].aggregate
            let biggest = aggregate.biggest
            let callsite = callsites[callsiteOfGroup[index]].callsite
            let stack = cache.frames(forStack: frames(of: biggestStacks[index]), snapshot: snapshot(at: biggest.time))
            shown.append(LeakGroup(
                rank: shown.count + 1, name: name(ofCallsite: callsiteOfGroup[index]), callsite: callsite,
                blocks: aggregate.blocks, bytes: aggregate.bytes, smallest: aggregate.smallest,
                largest: aggregate.largest, byPath: aggregate.byPath, inherited: aggregate.inherited,
                firstAllocationUs: aggregate.firstTime, lastAllocationUs: aggregate.lastTime,
                thresholdNote: aggregate.largestFromHeap.map { thresholdNote(size: $0.size, context: $0.context, count: aggregate.largeFromHeap.blocks) },
                reachability: byReachability ? aggregate.reachability : nil,
                biggest: PlacedBlock(address: biggest.address, size: biggest.size, path: biggest.path,
                                     timeUs: biggest.time, inherited: biggest.inherited,
                                     callsite: callsite, stack: stack)))
        }
        return (shown, mergedCount)
    }

    /// The indices 0..<count sorted by `before` (true or false when two items differ by the keys
    /// that come before the name, nil when they tie), then by name, then by `after`. `name` is
    /// asked only of items that tie with another under `before`: naming builds strings, and
    /// most items differ by their amounts.
    @inline(__always)
    static func sortedIndices(count: Int, before: (Int, Int) -> Bool?, name: (Int) -> String,
                              after: (Int, Int) -> Bool) -> [Int] {
        // Items that tie under `before` are neighbours once sorted by it alone.
        let byAmounts = (0..<count).sorted { before($0, $1) ?? false }
        var names = [String](repeating: "", count: count)
        var named = [Bool](repeating: false, count: count)
        for position in byAmounts.indices.dropFirst() {
            let lhs = byAmounts[position - 1], rhs = byAmounts[position]
            guard before(lhs, rhs) == nil else { continue }
            for item in [lhs, rhs] where !named[item] {
                names[item] = name(item)
                named[item] = true
            }
        }
        return byAmounts.sorted { lhs, rhs in
            if let order = before(lhs, rhs) { return order }
            if names[lhs] != names[rhs] { return names[lhs] < names[rhs] }
            return after(lhs, rhs)
        }
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
        for (aggregate, stackClass) in zip(aggregates, classes) {
            if let rule = stackClass.suppressedBy {
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

    func stackClass(of reference: StackRef) -> StackClass? {
        leaked.number(of: reference).map { classes[$0] }
    }

    func placedMappings() -> [PlacedMapping] {
        let shown = replay.mappings.mappings
            .filter { stackClass(of: $0.stackRef)?.suppressedBy == nil }
            .sorted { $0.size != $1.size ? $0.size > $1.size : $0.start < $1.start }
            .prefix(options.mappingLimit)
        return shown.map { mapping in
            PlacedMapping(start: mapping.start, size: mapping.size, kind: LeakPath(mapping.kind),
                          file: mapping.path.isEmpty ? nil : mapping.path, timeUs: mapping.time,
                          inherited: mapping.flags.contains(.inherited),
                          callsite: stackClass(of: mapping.stackRef).flatMap { callsites[$0.callsite].callsite },
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
        for (number, reference) in leaked.references.enumerated() where classes[number].suppressedBy == nil {
            let aggregate = aggregates[number]
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
