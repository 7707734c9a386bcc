import TraceFormat

// Live bytes per call site kept by the replay itself, for growth rates: one array index and
// one add per event, no closure call on the hot path. Which site a stack belongs to is the
// analysis's business (it needs symbols): the replay asks once per stack and path through
// `resolve`, and remembers the answer.

/// Live blocks and bytes per slot (a call site and path, numbered by whoever resolves stacks),
/// maintained by `Replayer` when `Replayer.siteAccounting` is set.
public struct SiteAccounting {
    /// Returns the slot of blocks with this stack and path (called once per pair).
    public typealias Resolver = (StackRef, AllocPath) -> Int

    private let resolve: Resolver
    /// (stack id << 2 | path) -> slot + 1 (0: not resolved yet), own and inherited stacks.
    private var ownSlots: [Int32] = []
    private var inheritedSlots: [Int32] = []

    /// Counts of one slot, kept together: one array write per event.
    public struct Counts: Equatable, Sendable {
        /// Live bytes and blocks now.
        public var bytes: Int64 = 0
        public var blocks: Int = 0
        /// The most bytes the slot held at once, the blocks live then, and when.
        public var peakBytes: Int64 = 0
        public var peakBlocks: Int = 0
        public var peakTime: UInt64 = 0
    }

    /// Counts per slot.
    public private(set) var counts: [Counts] = []
    /// The most live block bytes (all slots) since `resetIntervalPeak`.
    public private(set) var intervalPeak: UInt64 = 0
    public private(set) var liveBytes: UInt64 = 0

    /// Blocks whose time is `watchedTime` that are released are taken out of `watched`
    /// (the analysis keeps there the blocks of a clock tick it must tell apart).
    public private(set) var watchedTime: UInt64 = .max
    public private(set) var watched: Set<UInt64> = []

    public init(resolve: @escaping Resolver) { self.resolve = resolve }

    // MARK: Events (called by the replayer)

    @inline(__always)
    mutating func allocated(_ block: LiveBlock, time: UInt64) {
        let slot = self.slot(of: block)
        var slotCounts = counts[slot]
        slotCounts.bytes &+= Int64(truncatingIfNeeded: block.size)
        slotCounts.blocks &+= 1
        if slotCounts.bytes > slotCounts.peakBytes {
            slotCounts.peakBytes = slotCounts.bytes
            slotCounts.peakBlocks = slotCounts.blocks
            slotCounts.peakTime = time
        }
        counts[slot] = slotCounts
        liveBytes &+= block.size
        if liveBytes > intervalPeak { intervalPeak = liveBytes }
    }

    @inline(__always)
    mutating func released(_ block: LiveBlock) {
        let slot = self.slot(of: block)
        var slotCounts = counts[slot]
        slotCounts.bytes &-= Int64(truncatingIfNeeded: block.size)
        slotCounts.blocks &-= 1
        counts[slot] = slotCounts
        liveBytes &-= block.size
        if block.time == watchedTime { watched.remove(block.address) }
    }

    @inline(__always)
    private mutating func slot(of block: LiveBlock) -> Int {
        let index = Int(block.stack) &<< 2 | Int(block.pathRaw & 3)
        if block.isInherited {
            if index < inheritedSlots.count, inheritedSlots[index] > 0 { return Int(inheritedSlots[index]) - 1 }
        } else if index < ownSlots.count, ownSlots[index] > 0 {
            return Int(ownSlots[index]) - 1
        }
        return resolveSlot(of: block, index: index)
    }

    private mutating func resolveSlot(of block: LiveBlock, index: Int) -> Int {
        let slot = max(0, resolve(block.stackRef, block.path))
        if block.isInherited {
            if index >= inheritedSlots.count { inheritedSlots += repeatElement(0, count: max(index + 1 - inheritedSlots.count, inheritedSlots.count)) }
            inheritedSlots[index] = Int32(truncatingIfNeeded: slot + 1)
        } else {
            if index >= ownSlots.count { ownSlots += repeatElement(0, count: max(index + 1 - ownSlots.count, ownSlots.count)) }
            ownSlots[index] = Int32(truncatingIfNeeded: slot + 1)
        }
        if slot >= counts.count { counts += repeatElement(Counts(), count: slot + 1 - counts.count) }
        return slot
    }

    // MARK: For the analysis

    /// The slot of a block whose stack and path were already resolved (every block allocated
    /// while accounting was on, and every inherited one).
    public func knownSlot(of block: LiveBlock) -> Int? {
        let index = Int(block.stack) &<< 2 | Int(block.pathRaw & 3)
        let slots = block.isInherited ? inheritedSlots : ownSlots
        guard index < slots.count, slots[index] > 0 else { return nil }
        return Int(slots[index]) - 1
    }

    /// Starts a new interval for `intervalPeak`.
    public mutating func resetIntervalPeak() { intervalPeak = liveBytes }

    /// Watches released blocks of time `time`: they leave `addresses`.
    public mutating func watch(time: UInt64, addresses: Set<UInt64>) {
        watchedTime = time
        watched = addresses
    }
}
