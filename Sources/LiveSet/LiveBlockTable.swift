// An open-addressing hash table of live blocks keyed by address.
//
// Replay does one insert or one remove for nearly every event of the trace, so this table is
// the analyzer's hot path. A Swift Dictionary would hash through protocol witnesses and keep
// copy-on-write checks on every mutation; this table keeps 32-byte entries inline in one
// buffer, uses linear probing with a multiplicative hash (allocator addresses are 16-byte
// aligned, so their low bits carry no information and must be mixed up), and deletes by
// shifting later entries back instead of leaving tombstones, so lookups never slow down as
// blocks come and go.

/// The set of live blocks, keyed by address.
///
/// A value type with copy-on-write storage. Replay keeps it in a local (the visitor) for a
/// whole pass, so every access is checked for exclusivity at compile time: a class with
/// mutable stored properties would pay a runtime access check on every event.
public struct LiveBlockTable {
    /// The slot buffer. Its fields are constants: only the slots' contents change.
    final class Storage {
        let slots: UnsafeMutablePointer<LiveBlock>
        let capacity: Int

        init(capacity: Int) {
            self.capacity = capacity
            slots = .allocate(capacity: capacity)
            slots.initialize(repeating: LiveBlock(address: 0, size: 0, time: 0, stack: 0,
                                                  path: .unknown, function: .malloc), count: capacity)
        }

        func copy() -> Storage {
            let copy = Storage(capacity: capacity)
            copy.slots.update(from: slots, count: capacity)
            return copy
        }

        deinit { slots.deallocate() }
    }

    private var storage: Storage
    /// 64 - log2(capacity): the multiplicative hash keeps the top bits of the product.
    private var shift: UInt64
    /// Number of live blocks stored.
    public private(set) var count: Int = 0
    /// Sum of the sizes of the stored blocks.
    public private(set) var totalBytes: UInt64 = 0

    /// Grow when the table is this full (in 1/16ths): linear probing stays fast below ~75 %.
    private static let maxLoadSixteenths = 11

    public init(minimumCapacity: Int = 1 << 12) {
        var size = 16
        while size < minimumCapacity && size < (1 << 40) { size <<= 1 }
        shift = UInt64(64 - size.trailingZeroBitCount)
        storage = Storage(capacity: size)
    }

    private var capacity: Int { storage.capacity }
    private var slots: UnsafeMutablePointer<LiveBlock> { storage.slots }

    /// Bytes held by the table's buffer (for memory accounting in reports and tests).
    public var bufferBytes: Int { capacity * MemoryLayout<LiveBlock>.stride }

    @inline(__always)
    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    @inline(__always)
    private func home(_ address: UInt64) -> Int {
        Int(truncatingIfNeeded: (address &* 0x9E37_79B9_7F4A_7C15) &>> shift)
    }

    // MARK: - Lookup, insert, remove

    /// The live block at `address`, if any.
    @inline(__always)
    public func block(at address: UInt64) -> LiveBlock? {
        guard address != 0 else { return nil }
        let slots = self.slots
        let mask = capacity - 1
        var index = home(address)
        while true {
            let candidate = slots[index].address
            if candidate == address { return slots[index] }
            if candidate == 0 { return nil }
            index = (index + 1) & mask
        }
    }

    /// Stores `block`, replacing a block at the same address. Returns the replaced block.
    /// A block at address 0 is not stored (0 marks an empty slot; the allocator never returns it).
    @discardableResult @inline(__always)
    public mutating func insert(_ block: LiveBlock) -> LiveBlock? {
        guard block.address != 0 else { return nil }
        makeUnique()
        if (count + 1) * 16 > capacity * Self.maxLoadSixteenths { grow() }
        let slots = self.slots
        let mask = capacity - 1
        var index = home(block.address)
        while true {
            let candidate = slots[index].address
            if candidate == block.address {
                let old = slots[index]
                slots[index] = block
                totalBytes = totalBytes &- old.size &+ block.size
                return old
            }
            if candidate == 0 {
                slots[index] = block
                count += 1
                totalBytes &+= block.size
                return nil
            }
            index = (index + 1) & mask
        }
    }

    /// Removes and returns the block at `address`, or nil when no such block is live.
    @discardableResult @inline(__always)
    public mutating func remove(_ address: UInt64) -> LiveBlock? {
        guard address != 0 else { return nil }
        makeUnique()
        let slots = self.slots
        let mask = capacity - 1
        var index = home(address)
        while true {
            let candidate = slots[index].address
            if candidate == address { break }
            if candidate == 0 { return nil }
            index = (index + 1) & mask
        }
        let removed = slots[index]
        count -= 1
        totalBytes &-= removed.size
        // Backward-shift deletion: pull later members of the probe run into the hole when
        // their home slot does not lie cyclically between the hole and their current slot.
        var hole = index
        var next = index
        while true {
            next = (next + 1) & mask
            let address = slots[next].address
            if address == 0 { break }
            let wanted = home(address)
            let staysPut = hole <= next ? (hole < wanted && wanted <= next)
                                        : (hole < wanted || wanted <= next)
            if staysPut { continue }
            slots[hole] = slots[next]
            hole = next
        }
        slots[hole].address = 0
        return removed
    }

    private mutating func grow() {
        let old = storage
        storage = Storage(capacity: old.capacity * 2)
        shift -= 1
        let slots = self.slots
        let mask = capacity - 1
        for position in 0..<old.capacity where old.slots[position].address != 0 {
            var index = home(old.slots[position].address)
            while slots[index].address != 0 { index = (index + 1) & mask }
            slots[index] = old.slots[position]
        }
    }

    // MARK: - Iteration

    /// Calls `body` for every live block, in no particular order.
    public func forEach(_ body: (LiveBlock) throws -> Void) rethrows {
        for index in 0..<capacity where slots[index].address != 0 {
            try body(slots[index])
        }
    }

    /// Every live block, in no particular order (allocates an array: for tests and small sets).
    public var allBlocks: [LiveBlock] {
        var blocks: [LiveBlock] = []
        blocks.reserveCapacity(count)
        forEach { blocks.append($0) }
        return blocks
    }

    /// Removes every block.
    public mutating func removeAll() {
        makeUnique()
        for index in 0..<capacity { slots[index].address = 0 }
        count = 0
        totalBytes = 0
    }
}
