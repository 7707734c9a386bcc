import TraceFormat

// Live bytes per call site kept by the replay itself, for growth rates: a couple of loads and
// one store per event, no closure call on the hot path. Which site a stack belongs to is the
// analysis's business (it needs symbols): the replay asks once per stack and path through
// `resolve`, and remembers the answer.

/// Live blocks and bytes per slot (a call site and path, numbered by whoever resolves stacks),
/// maintained by `Replayer` once `Replayer.startSiteAccounting` is called.
///
/// A reference type on raw storage: it is updated for every allocation and release, and an
/// array would cost a uniqueness check and a bounds check per update. Only the replayer that
/// started it updates it.
public final class SiteAccounting {
    /// Returns the slot of blocks with this stack and path (called once per pair).
    public typealias Resolver = (StackRef, AllocPath) -> Int

    /// Counts of one slot, kept together: one store per event.
    public struct Counts: Equatable, Sendable {
        /// Live bytes and blocks now.
        public var bytes: Int64 = 0
        public var blocks: Int = 0
        /// The most bytes the slot held at once, the blocks live then, and when.
        public var peakBytes: Int64 = 0
        public var peakBlocks: Int = 0
        public var peakTime: UInt64 = 0
    }

    private let resolve: Resolver
    /// (own stack id << 2 | path) -> slot + 1 (0: not resolved yet).
    @exclusivity(unchecked) private var ownSlots: UnsafeMutablePointer<Int32>
    @exclusivity(unchecked) private var ownSlotCapacity: Int
    /// The same for stacks inherited from a parent process (few: a dictionary).
    private var inheritedSlots: [Int: Int] = [:]
    @exclusivity(unchecked) private var countStorage: UnsafeMutablePointer<Counts>
    @exclusivity(unchecked) private var countCapacity: Int
    @exclusivity(unchecked) public private(set) var slotCount = 0

    /// The most live block bytes (all slots) since `resetIntervalPeak`.
    @exclusivity(unchecked) public private(set) var intervalPeak: UInt64 = 0
    @exclusivity(unchecked) public private(set) var liveBytes: UInt64 = 0

    /// Blocks whose time is `watchedTime` that are released are taken out of `watched`
    /// (the analysis keeps there the blocks of a clock tick it must tell apart).
    @exclusivity(unchecked) public private(set) var watchedTime: UInt64 = .max
    public private(set) var watched: Set<UInt64> = []

    public init(resolve: @escaping Resolver) {
        self.resolve = resolve
        ownSlotCapacity = 1024
        ownSlots = ZeroedArray.allocate(Int32.self, capacity: ownSlotCapacity)
        countCapacity = 64
        countStorage = .allocate(capacity: countCapacity)
    }

    deinit {
        ZeroedArray.deallocate(ownSlots, capacity: ownSlotCapacity)
        countStorage.deinitialize(count: slotCount)
        countStorage.deallocate()
    }

    /// Counts per slot (a copy).
    public var counts: [Counts] { Array(UnsafeBufferPointer(start: countStorage, count: slotCount)) }

    // MARK: Events (called by the replayer)

    @inline(__always)
    func allocated(_ block: LiveBlock, time: UInt64) {
        // The slot first: finding a new one may move `countStorage`, which `countStorage + slot(...)`
        // would have read before the call (a stale pointer: heap corruption on bash's trace).
        let index = slot(of: block)
        let counts = countStorage + index
        counts.pointee.bytes &+= Int64(truncatingIfNeeded: block.size)
        counts.pointee.blocks &+= 1
        if counts.pointee.bytes > counts.pointee.peakBytes {
            counts.pointee.peakBytes = counts.pointee.bytes
            counts.pointee.peakBlocks = counts.pointee.blocks
            counts.pointee.peakTime = time
        }
        liveBytes &+= block.size
        if liveBytes > intervalPeak { intervalPeak = liveBytes }
    }

    @inline(__always)
    func released(_ block: LiveBlock) {
        let index = slot(of: block)
        let counts = countStorage + index
        counts.pointee.bytes &-= Int64(truncatingIfNeeded: block.size)
        counts.pointee.blocks &-= 1
        liveBytes &-= block.size
        if block.time == watchedTime { forgetWatched(block.address) }
    }

    @inline(__always)
    private func slot(of block: LiveBlock) -> Int {
        let index = Int(block.stack) &<< 2 | Int(block.pathRaw & 3)
        if !block.isInherited, index < ownSlotCapacity {
            let known = ownSlots[index]
            if known > 0 { return Int(known) - 1 }
        }
        return resolveSlot(of: block, index: index)
    }

    /// The first block of a stack and path: ask which slot it counts in, and remember.
    @inline(never)
    private func resolveSlot(of block: LiveBlock, index: Int) -> Int {
        if block.isInherited, let known = inheritedSlots[index] { return known }
        let slot = max(0, resolve(block.stackRef, block.path))
        if block.isInherited {
            inheritedSlots[index] = slot
        } else {
            if index >= ownSlotCapacity {
                let capacity = max(index + 1, ownSlotCapacity * 2)
                ownSlots = ZeroedArray.grow(ownSlots, from: ownSlotCapacity, to: capacity)
                ownSlotCapacity = capacity
            }
            ownSlots[index] = Int32(truncatingIfNeeded: slot + 1)
        }
        if slot >= slotCount {
            if slot >= countCapacity {
                let capacity = max(slot + 1, countCapacity * 2)
                let grown = UnsafeMutablePointer<Counts>.allocate(capacity: capacity)
                grown.moveInitialize(from: countStorage, count: slotCount)
                countStorage.deallocate()
                countStorage = grown
                countCapacity = capacity
            }
            (countStorage + slotCount).initialize(repeating: Counts(), count: slot + 1 - slotCount)
            slotCount = slot + 1
        }
        return slot
    }

    @inline(never)
    private func forgetWatched(_ address: UInt64) { watched.remove(address) }

    // MARK: For the analysis

    /// The slot of a block whose stack and path were already resolved (every block allocated
    /// while accounting was on, and every inherited one).
    public func knownSlot(of block: LiveBlock) -> Int? {
        let index = Int(block.stack) &<< 2 | Int(block.pathRaw & 3)
        if block.isInherited { return inheritedSlots[index] }
        guard index < ownSlotCapacity, ownSlots[index] > 0 else { return nil }
        return Int(ownSlots[index]) - 1
    }

    /// Starts a new interval for `intervalPeak`.
    public func resetIntervalPeak() { intervalPeak = liveBytes }

    /// Watches released blocks of time `time`: they leave `addresses`.
    public func watch(time: UInt64, addresses: Set<UInt64>) {
        watchedTime = time
        watched = addresses
    }
}
