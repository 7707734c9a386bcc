import LiveSet
import TraceFormat

// Following live bytes per call site through a replay: the data behind leak rates, the
// timeline and `growth --from A --to B`, gathered in the same single pass that builds the live
// set.
//
// Memory is bounded by the distinct stacks (one site index each), the distinct sites, and a
// fixed number of time buckets per site: when the buckets fill up, their width doubles and
// neighbours merge, so a trace of an hour costs what a trace of a second does.

// MARK: - Moments

/// A moment of a trace that `growth` compares: its start, its end, a time, or a mark.
public enum GrowthMoment: Equatable, Sendable {
    /// Before the first record (only blocks inherited from a parent are live).
    case start
    /// After the last record replayed.
    case end
    /// After every record up to this time (µs since tracing began).
    case time(UInt64)
    /// At the first MARK record with this name (from `leaktrace_mark()` or the mark signal).
    case mark(String)

    /// How the report names it: `start`, `end`, `1.500s`, `mark warm`.
    public var label: String {
        switch self {
        case .start: return "start"
        case .end: return "end"
        case let .time(microseconds): return formatTime(microseconds)
        case let .mark(name): return "mark \(name)"
        }
    }
}

/// A MARK record met during the replay.
public struct MarkSeen: Equatable, Sendable, Encodable {
    public var name: String
    public var timeUs: UInt64
    /// `program` (leaktrace_mark) or `signal` (LEAKTRACE_MARK_SIGNAL).
    public var source: String
}

/// Where a moment fell in the replay.
public struct MomentPoint: Equatable, Sendable, Encodable {
    /// What was asked for (`start`, `end`, `1.500s`, `mark warm`).
    public var label: String
    /// The trace time it was taken at (µs since tracing began).
    public var timeUs: UInt64
}

// MARK: - Timeline

/// One bucket of the timeline: memory at its end (and the highest live heap inside it).
public struct TimelinePoint: Equatable, Sendable, Encodable {
    /// End of the bucket (the last point ends at the last event replayed).
    public var endUs: UInt64
    /// Bytes of live blocks (every allocator path) at the end of the bucket.
    public var liveHeapBytes: UInt64
    /// The most live block bytes at any moment in the bucket.
    public var peakLiveHeapBytes: UInt64
    /// Bytes of the program's own direct mappings at the end of the bucket.
    public var mappedBytes: UInt64
    /// Resident and virtual size from the last memory sample at or before the end (absent
    /// before the first sample).
    public var rssBytes: UInt64?
    public var vmBytes: UInt64?
}

/// Memory over the time of a trace, in equal buckets.
public struct Timeline: Equatable, Sendable, Encodable {
    /// Width of each bucket, µs.
    public var bucketUs: UInt64
    public var points: [TimelinePoint]
}

// MARK: - The tracker

/// Follows live bytes per site (call site and allocation path) through a replay.
///
/// The replayer does the counting (`SiteAccounting`: one array update per event); the tracker
/// names each new stack's site once, samples the counts into time buckets as TIME records
/// pass, and takes the moments of `growth`. Drive it with `GrowthTracker.replay(...)`.
public final class GrowthTracker {
    // Classification: stack -> site index, computed the first time a stack and path allocate.
    let classifier: SiteClassifier
    private let ownStacks: StackLookup
    private let inheritedStacks: StackTrie
    private let reader: TraceReader
    private var ownStackSite: [Int32] = []
    private var inheritedStackSite: [UInt32: Int32] = [:]
    /// site * 4 + allocation path -> slot, -1 when that pair has not been seen.
    private var slotOfSitePath: [Int32] = []

    // Per slot (a site and path that has had live bytes); the counts are the replayer's.
    private(set) var slotSite: [Int32] = []
    private(set) var slotPath: [LeakPath] = []
    /// Live bytes of every slot at the end of each closed bucket: slot * bucketLimit + bucket.
    private var series: [Int64] = []
    /// The replayer's counts when the pass ended.
    private(set) var final: SiteAccounting?

    // Buckets.
    public let bucketLimit: Int
    public private(set) var bucketWidth: UInt64
    private var closedBuckets = 0
    private var closedPoints: [TimelinePoint] = []
    /// The widest bucket: beyond it (a damaged time of centuries) times are clamped.
    private static let maximumBucketWidth: UInt64 = 1 << 52

    // Whole-process figures.
    private var lastSample: (vm: UInt64, rss: UInt64)?
    private let pageSize: UInt64
    /// The time of the last TIME record (µs).
    public private(set) var now: UInt64 = 0
    /// MARK records met (the first `markLimit`).
    public private(set) var marks: [MarkSeen] = []
    public static let markLimit = 1000

    // The window of `growth --from A --to B`.
    private var windowStart: UInt64?
    public private(set) var from: MomentPoint?
    public private(set) var to: MomentPoint?
    public private(set) var atFrom: SiteTotals?
    public private(set) var atTo: SiteTotals?
    public private(set) var newSinceFrom: SiteTotals?
    private var fromValues: [Int64] = []
    /// `growth --category`: count at A and B only the blocks live at exit in those categories.
    public var reachabilityFilter: ReachabilityFilter?

    /// - Parameters:
    ///   - reader: the trace to be replayed (its stack table and module maps are read as the
    ///     pass builds them, to name each stack's call site the first time it allocates).
    ///   - replayer: the replayer about to run (after `joinParent`), for its inherited stacks.
    ///   - bucketLimit: time buckets kept per site (even, at least 8).
    ///   - initialBucketUs: width of the first buckets; doubles whenever they fill up.
    public init(reader: TraceReader, replayer: Replayer, symbolizer: FrameSymbolizer,
                options: AnalysisOptions = AnalysisOptions(), bucketLimit: Int = 64,
                initialBucketUs: UInt64 = 10_000) {
        self.reader = reader
        ownStacks = reader.stacks
        inheritedStacks = replayer.inheritedStacks
        pageSize = replayer.pageSize
        classifier = SiteClassifier(symbolizer: symbolizer, modules: LiveModuleLookup(reader: reader),
                                    options: options, ownStacks: reader.stacks)
        classifier.cache.modulesMayGrow = true
        self.bucketLimit = max(8, bucketLimit + bucketLimit % 2)
        bucketWidth = max(1, min(initialBucketUs, Self.maximumBucketWidth))
    }

    // MARK: Naming sites (the replayer's resolver)

    /// The slot of blocks of `stack` served by `path`: called by the replayer once per pair.
    func resolve(_ stack: StackRef, _ path: AllocPath) -> Int {
        let site = stack.isInherited ? inheritedSite(stack.id) : ownSite(stack.id)
        let pair = Int(site) * 4 + Int(path.rawValue & 3)
        let slot = slotOfSitePath[pair]
        return slot >= 0 ? Int(slot) : makeSlot(pair: pair, site: site, path: LeakPath(path))
    }

    private func ownSite(_ stack: UInt32) -> Int32 {
        let id = Int(stack)
        if id < ownStackSite.count, ownStackSite[id] >= 0 { return ownStackSite[id] }
        if id >= ownStackSite.count {
            ownStackSite.append(contentsOf: repeatElement(-1, count: max(id + 1 - ownStackSite.count, ownStackSite.count)))
        }
        let site = classifier.classify(stack: stack, in: ownStacks, snapshot: currentSnapshot)
        growSitePairs()
        ownStackSite[id] = site
        return site
    }

    private func inheritedSite(_ stack: UInt32) -> Int32 {
        if let known = inheritedStackSite[stack] { return known }
        let site = classifier.classify(stack: stack, in: inheritedStacks, snapshot: currentSnapshot)
        growSitePairs()
        inheritedStackSite[stack] = site
        return site
    }

    /// Module snapshot in force now (the newest the reader has met).
    private var currentSnapshot: Int { max(0, reader.moduleMaps.count - 1) }

    private func growSitePairs() {
        let needed = classifier.sites.count * 4
        if slotOfSitePath.count < needed {
            slotOfSitePath.append(contentsOf: repeatElement(-1, count: needed - slotOfSitePath.count))
        }
    }

    private func makeSlot(pair: Int, site: Int32, path: LeakPath) -> Int {
        let slot = slotSite.count
        slotOfSitePath[pair] = Int32(slot)
        slotSite.append(site)
        slotPath.append(path)
        series.append(contentsOf: repeatElement(0, count: bucketLimit))
        return slot
    }

    // MARK: Time and samples

    /// A TIME record: closes the buckets that ended before `time`, sampling `replayer`'s counts.
    func advance(to time: UInt64, replayer: inout Replayer) {
        guard time > now else { return }
        now = time
        let limit = UInt64(bucketLimit) * Self.maximumBucketWidth - 1
        let clamped = min(time, limit)
        guard clamped >= UInt64(closedBuckets + 1) * bucketWidth, let accounting = replayer.siteAccounting else { return }
        let mapped = replayer.mappings.totalBytes
        while clamped >= UInt64(closedBuckets + 1) * bucketWidth {
            closeBucket(accounting, mappedBytes: mapped)
        }
        accounting.resetIntervalPeak()
    }

    /// A SAMPLE record.
    func sample(vmPages: UInt64, rssPages: UInt64) {
        lastSample = (vmPages.multipliedReportingOverflow(by: pageSize).partialValue,
                      rssPages.multipliedReportingOverflow(by: pageSize).partialValue)
    }

    /// A MARK record. The tracer's own mark before the runtimes' cleanup at exit is left out:
    /// it is not the program's, and the report's summary counts what the cleanup freed.
    func mark(name: String, source: UInt64) {
        guard source != MarkSource.runtimeCleanup, marks.count < Self.markLimit else { return }
        marks.append(MarkSeen(name: name, timeUs: now, source: source == 1 ? "signal" : "program"))
    }

    private func closeBucket(_ accounting: SiteAccounting, mappedBytes: UInt64) {
        let bucket = closedBuckets
        let counts = accounting.counts
        for slot in 0..<min(counts.count, slotSite.count) { series[slot * bucketLimit + bucket] = counts[slot].bytes }
        closedPoints.append(point(endUs: UInt64(bucket + 1) * bucketWidth, accounting: accounting, mappedBytes: mappedBytes))
        closedBuckets += 1
        if closedBuckets == bucketLimit { compact() }
    }

    private func point(endUs: UInt64, accounting: SiteAccounting?, mappedBytes: UInt64) -> TimelinePoint {
        TimelinePoint(endUs: endUs, liveHeapBytes: accounting?.liveBytes ?? 0,
                      peakLiveHeapBytes: accounting?.intervalPeak ?? 0,
                      mappedBytes: mappedBytes, rssBytes: lastSample?.rss, vmBytes: lastSample?.vm)
    }

    /// Halves the number of closed buckets by merging neighbours; the width doubles.
    private func compact() {
        let half = bucketLimit / 2
        for slot in slotSite.indices {
            let base = slot * bucketLimit
            for index in 0..<half { series[base + index] = series[base + 2 * index + 1] }
        }
        var merged: [TimelinePoint] = []
        merged.reserveCapacity(bucketLimit)
        for index in 0..<half {
            var later = closedPoints[2 * index + 1]
            later.peakLiveHeapBytes = max(later.peakLiveHeapBytes, closedPoints[2 * index].peakLiveHeapBytes)
            merged.append(later)
        }
        closedPoints = merged
        closedBuckets = half
        bucketWidth = min(bucketWidth * 2, Self.maximumBucketWidth)
    }

    // MARK: Results

    /// The timeline: the closed buckets and the one in progress when the pass ended.
    public func timeline(mappedBytes: UInt64) -> Timeline {
        var points = closedPoints
        if points.isEmpty || now > UInt64(closedBuckets) * bucketWidth || final?.liveBytes != points.last?.liveHeapBytes {
            points.append(point(endUs: max(now, UInt64(closedBuckets) * bucketWidth), accounting: final,
                                mappedBytes: mappedBytes))
        }
        return Timeline(bucketUs: bucketWidth, points: points)
    }

    /// Live blocks per site in `accounting` (suppressed sites left out), plus the direct
    /// mappings and the brk growth of `replayer`: what the report counts as leaked, had the
    /// trace ended here.
    func currentTotals(_ accounting: SiteAccounting, replayer: Replayer) -> SiteTotals {
        if let reachabilityFilter { return filteredTotals(accounting, replayer: replayer, filter: reachabilityFilter) }
        var totals = SiteTotals()
        for (slot, counts) in accounting.counts.prefix(slotSite.count).enumerated()
        where counts.blocks > 0 || counts.bytes != 0 {
            let amount = Amount(blocks: max(0, counts.blocks), bytes: UInt64(max(0, counts.bytes)))
            addToTotals(&totals, site: slotSite[slot], path: slotPath[slot], amount: amount)
        }
        for mapping in replayer.mappings.mappings {
            addToTotals(&totals, site: siteOfMapping(mapping), path: LeakPath(mapping.kind),
                        amount: Amount(blocks: 1, bytes: mapping.size))
        }
        totals.addBreakGrowth(replayer.breakGrowth.values) { growth in
            let site = growth.stack.isInherited ? inheritedSite(growth.stack.id) : ownSite(growth.stack.id)
            return classifier.isSuppressed(site) ? nil : classifier.label(site: site, path: .breakGrowth)
        }
        return totals
    }

    /// `currentTotals` of the blocks and mappings `filter` keeps (the per-site counts cover
    /// every block, so the live table is walked); brk growth has no category and is left out.
    private func filteredTotals(_ accounting: SiteAccounting, replayer: Replayer,
                                filter: ReachabilityFilter) -> SiteTotals {
        var perSlot: [Int: Amount] = [:]
        replayer.live.forEach { block in
            guard filter.keeps(block), let slot = accounting.knownSlot(of: block) else { return }
            perSlot[slot, default: Amount()].add(blocks: 1, bytes: block.size)
        }
        var totals = SiteTotals()
        for (slot, amount) in perSlot where slot < slotSite.count {
            addToTotals(&totals, site: slotSite[slot], path: slotPath[slot], amount: amount)
        }
        for mapping in replayer.mappings.mappings where filter.keeps(mapping) {
            addToTotals(&totals, site: siteOfMapping(mapping), path: LeakPath(mapping.kind),
                        amount: Amount(blocks: 1, bytes: mapping.size))
        }
        return totals
    }

    private func siteOfMapping(_ mapping: Mapping) -> Int32 {
        mapping.flags.contains(.inherited) ? inheritedSite(mapping.stack) : ownSite(mapping.stack)
    }

    private func addToTotals(_ totals: inout SiteTotals, site: Int32, path: LeakPath, amount: Amount) {
        guard !classifier.isSuppressed(site) else { return }
        totals.add(classifier.label(site: site, path: path), amount)
        totals.total = totals.total + amount
        totals.byPath.add(path, blocks: amount.blocks, bytes: amount.bytes)
    }

    /// Per-site peaks: the most bytes each site held live at once, with the blocks live then
    /// (what `diff --live` compares).
    public func peakTotals() -> SiteTotals {
        var totals = SiteTotals()
        guard let final else { return totals }
        for (slot, counts) in final.counts.prefix(slotSite.count).enumerated() where counts.peakBytes > 0 {
            addToTotals(&totals, site: slotSite[slot], path: slotPath[slot],
                        amount: Amount(blocks: counts.peakBlocks, bytes: UInt64(counts.peakBytes)))
        }
        return totals
    }

    // MARK: The growth window

    /// Takes moment A: live bytes per site now, and the blocks of this clock tick that are
    /// already live (so that `newSinceFrom` can tell them from later ones with the same time).
    func takeFrom(label: String, replayer: inout Replayer) {
        guard let accounting = replayer.siteAccounting else { return }
        from = MomentPoint(label: label, timeUs: now)
        atFrom = currentTotals(accounting, replayer: replayer)
        fromValues = accounting.counts.map(\.bytes)
        // The live table keeps block times in whole milliseconds: compare at that precision.
        let tick = Self.tableTime(now)
        var sameTick: Set<UInt64> = []
        replayer.live.forEach { block in
            if block.time == tick { sameTick.insert(block.address) }
        }
        accounting.watch(time: tick, addresses: sameTick)
        windowStart = now
    }

    /// A time as the live table gives block times back (rounded down to the millisecond).
    static func tableTime(_ microseconds: UInt64) -> UInt64 { microseconds / 1000 * 1000 }

    /// Takes moment B: live bytes per site now, and of those what was allocated after A.
    func takeTo(label: String, replayer: Replayer) {
        guard let accounting = replayer.siteAccounting, let start = windowStart else { return }
        to = MomentPoint(label: label, timeUs: now)
        atTo = currentTotals(accounting, replayer: replayer)
        var perSlot: [Int: Amount] = [:]
        let tick = Self.tableTime(start)
        let ambiguous = accounting.watched
        replayer.live.forEach { block in
            guard !block.isInherited, block.time > tick || (block.time == tick && !ambiguous.contains(block.address)),
                  reachabilityFilter?.keeps(block) ?? true, let slot = accounting.knownSlot(of: block) else { return }
            perSlot[slot, default: Amount()].add(blocks: 1, bytes: block.size)
        }
        var fresh = SiteTotals()
        for (slot, amount) in perSlot where slot < slotSite.count {
            addToTotals(&fresh, site: slotSite[slot], path: slotPath[slot], amount: amount)
        }
        for mapping in replayer.mappings.mappings
        where !mapping.flags.contains(.inherited) && mapping.time > start && reachabilityFilter?.keeps(mapping) ?? true {
            addToTotals(&fresh, site: siteOfMapping(mapping), path: LeakPath(mapping.kind),
                        amount: Amount(blocks: 1, bytes: mapping.size))
        }
        newSinceFrom = fresh
    }

    /// Keeps the replayer's counts as the pass ends.
    func finish(_ accounting: SiteAccounting?) {
        final = accounting
        classifier.cache.modulesMayGrow = false
    }

    // MARK: Rates

    /// Least-squares leak rate of every site with live bytes in the window (moment A, or the
    /// start, to the end of the pass), steepest first.
    public func rates() -> [SiteRate] {
        rates(of: fits { _ in true })
    }

    /// `rates().topGrowers(count)`, naming only the sites that grow.
    public func topGrowers(_ count: Int) -> [SiteRate] {
        Array(rates(of: fits { $0.isGrower }).prefix(count))
    }

    /// The fit of every unsuppressed slot with live bytes in the window that `wanted` keeps,
    /// in slot order (whether a site is suppressed is asked last: it reads a whole stack).
    private func fits(where wanted: (SiteFit) -> Bool) -> [(slot: Int, fit: SiteFit)] {
        guard let final else { return [] }
        let start = windowStart ?? 0
        var result: [(slot: Int, fit: SiteFit)] = []
        var points: [(time: UInt64, bytes: Int64)] = []
        for (slot, counts) in final.counts.prefix(slotSite.count).enumerated() {
            seriesPoints(slot: slot, from: start, current: counts.bytes, into: &points)
            let inWindowPeak = counts.peakTime >= start ? counts.peakBytes : 0
            guard let fit = SiteFit(points: points[...], exactPeak: inWindowPeak), wanted(fit),
                  !classifier.isSuppressed(slotSite[slot]) else { continue }
            result.append((slot, fit))
        }
        return result
    }

    /// `fits` named, steepest first.
    private func rates(of fits: [(slot: Int, fit: SiteFit)]) -> [SiteRate] {
        let rates = fits.map { SiteRate(label: classifier.label(site: slotSite[$0.slot], path: slotPath[$0.slot]), fit: $0.fit) }
        // Sorted by index on keys taken out first: moving the rates themselves cost more than
        // comparing them. Keys are unique (one rate per site and path), so the order is total.
        let slopes = rates.map(\.bytesPerSecond), keys = rates.map(\.key)
        return rates.indices.sorted { lhs, rhs in
            if slopes[lhs] != slopes[rhs] { return slopes[lhs] > slopes[rhs] }
            return keys[lhs] < keys[rhs]
        }.map { rates[$0] }
    }

    /// The points of one slot's series in the window, into `points`: its value at A (0 at the
    /// start), the closed buckets that end after A, and its value at the end of the pass.
    private func seriesPoints(slot: Int, from start: UInt64, current: Int64,
                              into points: inout [(time: UInt64, bytes: Int64)]) {
        points.removeAll(keepingCapacity: true)
        let startValue: Int64 = windowStart == nil ? 0 : (slot < fromValues.count ? fromValues[slot] : 0)
        points.append((start, startValue))
        for bucket in 0..<closedBuckets {
            let end = UInt64(bucket + 1) * bucketWidth
            guard end > start, end < now else { continue }
            points.append((end, series[slot * bucketLimit + bucket]))
        }
        if now > start { points.append((now, current)) }
    }
}

/// Module lookups against the reader's module maps as they stand during the pass.
private final class LiveModuleLookup: ModuleLookup {
    let reader: TraceReader
    init(reader: TraceReader) { self.reader = reader }
    func module(containing address: UInt64, snapshot index: Int) -> Module? {
        reader.moduleMaps.module(containing: address, snapshot: index)
    }
}
