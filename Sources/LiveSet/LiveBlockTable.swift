// An open-addressing hash table of live blocks keyed by address.
//
// Replay does one insert or one remove for nearly every event of the trace, so this table is
// the analyzer's hot path, and at the end of a leaky program's trace it holds every leaked
// block. A Swift Dictionary would hash through protocol witnesses and keep copy-on-write checks
// on every mutation; this table keeps its entries inline in one buffer, uses linear probing
// with a multiplicative hash (allocator addresses are 16-byte aligned, so their low bits carry
// no information and must be mixed up), and deletes by shifting later entries back instead of
// leaving tombstones, so lookups never slow down as blocks come and go.
//
// An entry takes 16 bytes while every block's fields fit them (`NarrowBlock`) and 24 bytes from
// the first block that does not (`WideBlock`): at CPython's peak of over a million live blocks
// the table is most of the analyzer's memory (32 MiB instead of 48), and the fields of nearly
// every trace fit. A block is never cut to fit.

import CLiveTable
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Stored blocks

/// How a table slot holds a live block. All-zero bytes are an empty slot (address 0).
protocol StoredBlock {
    /// The block in this layout; nil when one of its fields does not fit (the size always
    /// does: a size too big for the slot is kept in the table's side map).
    init?(_ block: LiveBlock)
    static var empty: Self { get }
    var address: UInt64 { get }
    /// True when the slot holds the side map's marker instead of the size.
    var isHuge: Bool { get }
    /// The full block; `hugeSize` is the size from the side map when `isHuge`.
    func unpacked(hugeSize: UInt64) -> LiveBlock
}

/// A live block in 16 bytes, when it fits: an address below 2^48 (every x86-64 and arm64
/// user-space address without a pointer tag), a stack id below 2^24, a time below 2^25 ms
/// (9.3 hours), and the function, path and flags known today. Sizes of 16 MiB - 1 and more
/// are kept in the side map: each such block is at least 16 MiB of the program's memory, so
/// there are few.
struct NarrowBlock: StoredBlock {
    /// The address (bits 0-47) and the stack id's low 16 bits (48-63).
    var low: UInt64
    /// The size (bits 0-23), the stack id's high 8 bits (24-31), the time in milliseconds
    /// (32-56), the function (57-60), the path (61-62) and `BlockFlags.inherited` (63).
    var high: UInt64

    static let addressMask: UInt64 = 1 << 48 - 1
    /// Marks a size kept in the side map.
    static let hugeSizeMarker: UInt64 = 1 << 24 - 1

    static let empty = NarrowBlock(low: 0, high: 0)

    private init(low: UInt64, high: UInt64) { self.low = low; self.high = high }

    @inline(__always)
    init?(_ block: LiveBlock) {
        let milliseconds = block.time / 1000
        // One test for every field: the bits each would lose, or'ed together.
        let lost = block.address >> 48 | UInt64(block.stack >> 24) | milliseconds >> 25
            | UInt64(block.functionRaw >> 4) | UInt64(block.pathRaw >> 2) | UInt64(block.flags.rawValue >> 1)
        guard lost == 0 else { return nil }
        low = block.address | UInt64(block.stack & 0xFFFF) << 48
        high = min(block.size, Self.hugeSizeMarker) | UInt64(block.stack >> 16) << 24 | milliseconds << 32
            | UInt64(block.functionRaw) << 57 | UInt64(block.pathRaw) << 61 | UInt64(block.flags.rawValue) << 63
    }

    var address: UInt64 {
        @inline(__always) get { low & Self.addressMask }
    }

    var isHuge: Bool {
        @inline(__always) get { high & Self.hugeSizeMarker == Self.hugeSizeMarker }
    }

    @inline(__always)
    func unpacked(hugeSize: UInt64) -> LiveBlock {
        let stack = UInt32(truncatingIfNeeded: low >> 48) | UInt32(truncatingIfNeeded: high >> 24 & 0xFF) << 16
        var block = LiveBlock(address: address, size: isHuge ? hugeSize : high & Self.hugeSizeMarker,
                              time: (high >> 32 & (1 << 25 - 1)) * 1000, stack: stack, path: .unknown,
                              function: .malloc, flags: BlockFlags(rawValue: UInt8(truncatingIfNeeded: high >> 63)))
        block.pathRaw = UInt8(truncatingIfNeeded: high >> 61 & 3)
        block.functionRaw = UInt8(truncatingIfNeeded: high >> 57 & 0xF)
        return block
    }
}

/// A live block in 24 bytes: any block. Times in milliseconds (the trace's clock is coarse: a
/// few milliseconds per tick), sizes in 32 bits; the rare size of 4 GiB or more is kept in the
/// side map.
struct WideBlock: StoredBlock {
    var address: UInt64
    var size: UInt32
    var milliseconds: UInt32
    var stack: UInt32
    var pathRaw: UInt8
    var functionRaw: UInt8
    var flags: BlockFlags

    /// Marks a size kept in the side map.
    static let hugeSizeMarker = UInt32.max

    static let empty = WideBlock(address: 0, size: 0, milliseconds: 0, stack: 0, pathRaw: 0, functionRaw: 0,
                                 flags: [])

    private init(address: UInt64, size: UInt32, milliseconds: UInt32, stack: UInt32, pathRaw: UInt8,
                 functionRaw: UInt8, flags: BlockFlags) {
        self.address = address; self.size = size; self.milliseconds = milliseconds; self.stack = stack
        self.pathRaw = pathRaw; self.functionRaw = functionRaw; self.flags = flags
    }

    @inline(__always)
    init(_ block: LiveBlock) {
        address = block.address
        size = block.size < UInt64(Self.hugeSizeMarker) ? UInt32(truncatingIfNeeded: block.size) : Self.hugeSizeMarker
        milliseconds = UInt32(clamping: block.time / 1000)
        stack = block.stack
        pathRaw = block.pathRaw
        functionRaw = block.functionRaw
        flags = block.flags
    }

    var isHuge: Bool {
        @inline(__always) get { size == Self.hugeSizeMarker }
    }

    @inline(__always)
    func unpacked(hugeSize: UInt64) -> LiveBlock {
        var block = LiveBlock(address: address, size: isHuge ? hugeSize : UInt64(size),
                              time: UInt64(milliseconds) * 1000, stack: stack, path: .unknown, function: .malloc,
                              flags: flags)
        block.pathRaw = pathRaw
        block.functionRaw = functionRaw
        return block
    }
}

// MARK: - The table

/// The set of live blocks, keyed by address.
///
/// A value type with copy-on-write storage. Replay keeps it in a local (the visitor) for a
/// whole pass, so every access is checked for exclusivity at compile time: a class with
/// mutable stored properties would pay a runtime access check on every event.
///
/// Block times come back rounded down to the millisecond.
public struct LiveBlockTable {
    /// The blocks while every one fits 16 bytes.
    private var narrow: SlotTable<NarrowBlock>
    /// The blocks from the first one that does not (`narrow` is then empty and small), for the
    /// rest of the table's life.
    private var wide: SlotTable<WideBlock>?

    public init(minimumCapacity: Int = 1 << 12) {
        narrow = SlotTable(minimumCapacity: minimumCapacity)
    }

    /// A table with 24-byte slots from the start (for the tests that compare both layouts).
    init(minimumCapacity: Int, wideSlots: Bool) {
        narrow = SlotTable(minimumCapacity: wideSlots ? 16 : minimumCapacity)
        if wideSlots { wide = SlotTable(minimumCapacity: minimumCapacity) }
    }

    /// Number of live blocks stored.
    public var count: Int { wide?.count ?? narrow.count }
    /// Sum of the sizes of the stored blocks (kept here, not per layout: the replay reads it
    /// after every event).
    public private(set) var totalBytes: UInt64 = 0
    /// Bytes held by the table's buffer (for memory accounting in reports and tests).
    public var bufferBytes: Int { wide?.bufferBytes ?? narrow.bufferBytes }
    /// True once a block did not fit 16 bytes and the table moved to 24-byte slots.
    var isWide: Bool { wide != nil }

    /// A mapped table of at least this many bytes grows in place; a smaller one grows by
    /// copying (for the tests that compare both ways: 0 always in place, `.max` never).
    var inPlaceGrowthFromBytes: Int {
        get { wide?.inPlaceGrowthFromBytes ?? narrow.inPlaceGrowthFromBytes }
        set {
            narrow.inPlaceGrowthFromBytes = newValue
            wide?.inPlaceGrowthFromBytes = newValue
        }
    }

    /// Starts loading the slot where a lookup of `address` begins, without waiting for it: a
    /// table of millions of blocks misses the cache on nearly every event, and the replay
    /// issues this some events ahead of the insert or remove (see `WholeTraceVisitor`).
    @inline(__always)
    func prefetch(_ address: UInt64) {
        if let wide { wide.prefetch(address) } else { narrow.prefetch(address) }
    }

    /// The live block at `address`, if any.
    @inline(__always)
    public func block(at address: UInt64) -> LiveBlock? {
        if let wide { return wide.block(at: address) }
        return narrow.block(at: address)
    }

    /// Stores `block`, replacing a block at the same address. Returns the replaced block.
    /// A block at address 0 is not stored (0 marks an empty slot; the allocator never returns it).
    @discardableResult @inline(__always)
    public mutating func insert(_ block: LiveBlock) -> LiveBlock? {
        makeStorageUnique()
        return insertAssumingUnique(block)
    }

    /// Makes the storage unique now, for a pass that then uses the `AssumingUnique` variants.
    mutating func makeStorageUnique() {
        narrow.makeUnique()
        wide?.makeUnique()
    }

    /// `insert` without the uniqueness check (a runtime call per event): only for a replay pass
    /// that made the storage unique and that no other code can see the table during.
    @discardableResult @inline(__always)
    mutating func insertAssumingUnique(_ block: LiveBlock) -> LiveBlock? {
        guard block.address != 0 else { return nil }
        let replaced: LiveBlock?
        if wide == nil, let packed = NarrowBlock(block) {
            replaced = narrow.insert(packed, block)
        } else {
            replaced = insertWide(block)
        }
        totalBytes = totalBytes &- (replaced?.size ?? 0) &+ block.size
        return replaced
    }

    private mutating func insertWide(_ block: LiveBlock) -> LiveBlock? {
        if wide == nil { widen() }
        return wide!.insert(WideBlock(block), block)
    }

    /// Moves every block to a table of 24-byte slots of the same capacity, each to the slot of
    /// the same index: the layout, and so the order `forEach` visits blocks in, stays the one
    /// a table that was always wide would have.
    private mutating func widen() {
        wide = narrow.converted(to: WideBlock.self)
    }

    /// Removes and returns the block at `address`, or nil when no such block is live.
    @discardableResult @inline(__always)
    public mutating func remove(_ address: UInt64) -> LiveBlock? {
        makeStorageUnique()
        return removeAssumingUnique(address)
    }

    /// `remove` without the uniqueness check: see `insertAssumingUnique`.
    @discardableResult @inline(__always)
    mutating func removeAssumingUnique(_ address: UInt64) -> LiveBlock? {
        let removed = wide == nil ? narrow.remove(address) : wide!.remove(address)
        if let removed { totalBytes &-= removed.size }
        return removed
    }

    /// At the end of a replay: when the table holds few blocks for its size (a program that
    /// freed most of what it allocated), gives the pages without a block back to the system, so
    /// the analysis that follows does not carry the replay's peak (CPython's trace: 32 MiB of
    /// slots for 557 blocks). Slots, lookups and `forEach`'s order are unchanged.
    mutating func releaseEmptyPages() {
        if wide == nil { narrow.releaseEmptyPages() } else { wide!.releaseEmptyPages() }
    }

    /// Calls `body` for every live block, in no particular order.
    public func forEach(_ body: (LiveBlock) throws -> Void) rethrows {
        if let wide {
            try wide.forEachSlot { _, block in try body(block) }
        } else {
            try narrow.forEachSlot { _, block in try body(block) }
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
        if wide == nil { narrow.removeAll() } else { wide!.removeAll() }
        totalBytes = 0
    }
}

// MARK: - Slots of one layout

/// The hash table itself, for one slot layout.
struct SlotTable<Slot: StoredBlock> {
    /// The slot buffer. Its fields are constants: only the slots' contents change.
    final class Storage {
        let slots: UnsafeMutablePointer<Slot>
        let capacity: Int

        init(capacity: Int) {
            self.capacity = capacity
            let bytes = capacity * MemoryLayout<Slot>.stride
            if bytes >= LiveTableMemory.hugePageBytes,
               let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
               mapped != MAP_FAILED {
                _ = madvise(mapped, bytes, MADV_HUGEPAGE)
                // Fresh anonymous pages read as zero, and zero bytes are an empty slot: writing
                // them would only fault every page in at once.
                slots = mapped.bindMemory(to: Slot.self, capacity: capacity)
                mappedBytes = bytes
            } else {
                slots = .allocate(capacity: capacity)
                slots.initialize(repeating: .empty, count: capacity)
                mappedBytes = 0
            }
        }

        /// Takes over a mapping of `capacity` slots.
        fileprivate init(adopting slots: UnsafeMutablePointer<Slot>, capacity: Int, mappedBytes: Int) {
            self.slots = slots
            self.capacity = capacity
            self.mappedBytes = mappedBytes
        }

        /// The size of the mapping, or 0 when the slots came from the allocator.
        private let mappedBytes: Int
        /// False once `remapped` handed the mapping to a new storage.
        private var ownsSlots = true

        func copy() -> Storage {
            let copy = Storage(capacity: capacity)
            copy.slots.update(from: slots, count: capacity)
            return copy
        }

        /// The same slots in a mapping grown to `newCapacity` (mremap: the pages move, nothing is
        /// copied, the new slots are empty), which this storage no longer owns; nil when the slots
        /// are not mapped or the mapping cannot grow (this storage is then unchanged).
        func remapped(toCapacity newCapacity: Int) -> Storage? {
            let bytes = newCapacity * MemoryLayout<Slot>.stride
            guard let moved = remapped(toBytes: bytes) else { return nil }
            return Storage(adopting: moved.bindMemory(to: Slot.self, capacity: newCapacity),
                           capacity: newCapacity, mappedBytes: bytes)
        }

        /// The mapping grown to `bytes` (the slots keep their bytes), which this storage no
        /// longer owns; nil when the slots are not mapped or the mapping cannot grow.
        fileprivate func remapped(toBytes bytes: Int) -> UnsafeMutableRawPointer? {
            guard mappedBytes > 0, let moved = lt_mremap_grow(slots, mappedBytes, bytes) else { return nil }
            _ = madvise(moved, bytes, MADV_HUGEPAGE)
            ownsSlots = false
            return moved
        }

        /// Gives the pages that hold no block back to the system (they read as empty slots
        /// again when next touched); the slots and their order stay as they are. Returns the
        /// bytes given back. Only for mapped slots: allocator memory is left alone.
        func releaseEmptyPages() -> Int {
            guard mappedBytes > 0 else { return 0 }
            let page = max(4096, sysconf(Int32(_SC_PAGESIZE)))
            let stride = MemoryLayout<Slot>.stride
            let base = UnsafeMutableRawPointer(slots)
            var released = 0
            var runStart = -1   // first page of the run of empty pages being collected
            var pageStart = 0
            while pageStart < mappedBytes {
                // The slots that overlap this page; the page may go when all of them are empty.
                let first = pageStart / stride
                let last = min(capacity - 1, (pageStart + page - 1) / stride)
                var empty = true
                for index in first...last where slots[index].address != 0 {
                    empty = false
                    break
                }
                if empty {
                    if runStart < 0 { runStart = pageStart }
                } else if runStart >= 0 {
                    released += Self.release(base + runStart, pageStart - runStart)
                    runStart = -1
                }
                pageStart += page
            }
            if runStart >= 0 { released += Self.release(base + runStart, mappedBytes - runStart) }
            return released
        }

        private static func release(_ start: UnsafeMutableRawPointer, _ bytes: Int) -> Int {
            madvise(start, bytes, MADV_DONTNEED) == 0 ? bytes : 0
        }

        deinit {
            guard ownsSlots else { return }
            if mappedBytes > 0 { munmap(slots, mappedBytes) } else { slots.deallocate() }
        }
    }

    private var storage: Storage
    /// Sizes too big for a slot, by address (their slots hold the layout's marker).
    private var hugeSizes: [UInt64: UInt64] = [:]
    /// 64 - log2(capacity): the multiplicative hash keeps the top bits of the product.
    private var shift: UInt64
    private(set) var count: Int = 0
    /// The count at which the table grows (the load limit for the current capacity), kept
    /// rather than computed per insert.
    private var growthCount: Int
    var inPlaceGrowthFromBytes = LiveTableMemory.inPlaceGrowthBytes

    fileprivate init(storage: Storage, hugeSizes: [UInt64: UInt64], shift: UInt64, count: Int, growthCount: Int,
                     inPlaceGrowthFromBytes: Int) {
        self.storage = storage; self.hugeSizes = hugeSizes; self.shift = shift; self.count = count
        self.growthCount = growthCount; self.inPlaceGrowthFromBytes = inPlaceGrowthFromBytes
    }

    init(minimumCapacity: Int) {
        var size = 16
        while size < minimumCapacity && size < (1 << 40) { size <<= 1 }
        shift = UInt64(64 - size.trailingZeroBitCount)
        storage = Storage(capacity: size)
        growthCount = Self.growthCount(capacity: size)
    }

    /// Grow when the table is this full (in 1/16ths). Linear probing stays fast up to 75 %
    /// (about 8 slots, a few adjacent cache lines, for a miss); a lower limit would double the
    /// memory of a leak-heavy trace's millions of live blocks for little speed.
    private static func growthCount(capacity: Int) -> Int { capacity / 16 * 12 }

    var capacity: Int { storage.capacity }
    private var slots: UnsafeMutablePointer<Slot> { storage.slots }
    var bufferBytes: Int { capacity * MemoryLayout<Slot>.stride }

    @inline(__always)
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    @inline(__always)
    private func home(_ address: UInt64) -> Int {
        Int(truncatingIfNeeded: (address &* 0x9E37_79B9_7F4A_7C15) &>> shift)
    }

    @inline(__always)
    private func unpack(_ slot: Slot) -> LiveBlock {
        slot.unpacked(hugeSize: slot.isHuge ? hugeSizes[slot.address] ?? 0 : 0)
    }

    // MARK: Lookup, insert, remove

    /// The slot where a lookup of `address` begins, and the line after it: a probe run or a
    /// removal's backward shift goes on into the next slots (and 24-byte slots straddle lines).
    @inline(__always)
    func prefetch(_ address: UInt64) {
        let slot = UnsafeRawPointer(slots + home(address))
        lt_prefetch_for_write(slot)
        lt_prefetch_for_write(slot + 64)
    }

    @inline(__always)
    func block(at address: UInt64) -> LiveBlock? {
        guard address != 0 else { return nil }
        let slot = probe(address)
        return slot.found ? unpack(slots[slot.index]) : nil
    }

    /// The slot holding `address` (nonzero), or the empty slot that ends its probe run, where it
    /// would be stored.
    @inline(__always)
    private func probe(_ address: UInt64) -> (index: Int, found: Bool) {
        let slots = self.slots
        let mask = capacity - 1
        var index = home(address)
        while true {
            let candidate = slots[index].address
            if candidate == address { return (index, true) }
            if candidate == 0 { return (index, false) }
            index = (index + 1) & mask
        }
    }

    /// Stores `packed` (`block`, whose address is not 0, in this layout), replacing a block at
    /// the same address. Returns the replaced block. The storage must be unique.
    @inline(__always)
    mutating func insert(_ packed: Slot, _ block: LiveBlock) -> LiveBlock? {
        assert(isKnownUniquelyReferenced(&storage) && block.address != 0)
        if count >= growthCount { grow() }
        let slots = self.slots
        let slot = probe(block.address)
        let old = slot.found ? unpack(slots[slot.index]) : nil
        if old != nil {
            if slots[slot.index].isHuge { hugeSizes.removeValue(forKey: block.address) }
        } else {
            count += 1
        }
        slots[slot.index] = packed
        if packed.isHuge { hugeSizes[block.address] = block.size }
        return old
    }

    /// The same blocks in slots of layout `Other` (every block must fit it), each in the slot
    /// of the same index, so the layout and `forEach`'s order are those of a table of `Other`
    /// slots from the start; this table is left empty. A mapped buffer is grown in place
    /// (mremap) and rewritten from the last slot down: slot i of a wider layout begins at or
    /// after the end of slot i of this one, so no slot is overwritten before it is read, and
    /// the two buffers are never held at once (CPython's table at its peak: 32 + 48 MiB by
    /// copying, 48 MiB in place).
    mutating func converted<Other: StoredBlock>(to _: Other.Type) -> SlotTable<Other> {
        let capacity = self.capacity
        let stride = MemoryLayout<Slot>.stride
        let otherStride = MemoryLayout<Other>.stride
        var otherHugeSizes: [UInt64: UInt64] = [:]
        func convert(_ block: LiveBlock) -> Other {
            guard let other = Other(block) else { preconditionFailure("a block that does not fit the wider slots") }
            if other.isHuge { otherHugeSizes[block.address] = block.size }
            return other
        }
        let otherStorage: SlotTable<Other>.Storage
        if otherStride >= stride, let bytes = storage.remapped(toBytes: capacity * otherStride) {
            var index = capacity
            while index > 0 {
                index -= 1
                let slot = bytes.load(fromByteOffset: index * stride, as: Slot.self)
                let other = slot.address != 0 ? convert(unpack(slot)) : Other.empty
                bytes.storeBytes(of: other, toByteOffset: index * otherStride, as: Other.self)
            }
            otherStorage = SlotTable<Other>.Storage(adopting: bytes.bindMemory(to: Other.self, capacity: capacity),
                                                    capacity: capacity, mappedBytes: capacity * otherStride)
        } else {
            otherStorage = SlotTable<Other>.Storage(capacity: capacity)
            forEachSlot { index, block in otherStorage.slots[index] = convert(block) }
        }
        let converted = SlotTable<Other>(storage: otherStorage, hugeSizes: otherHugeSizes, shift: shift, count: count,
                                         growthCount: growthCount, inPlaceGrowthFromBytes: inPlaceGrowthFromBytes)
        self = SlotTable(minimumCapacity: 16)
        return converted
    }

    /// Removes and returns the block at `address`. The storage must be unique.
    @inline(__always)
    mutating func remove(_ address: UInt64) -> LiveBlock? {
        assert(isKnownUniquelyReferenced(&storage))
        guard address != 0 else { return nil }
        let slot = probe(address)
        guard slot.found else { return nil }
        let slots = self.slots
        let mask = capacity - 1
        let index = slot.index
        let removed = unpack(slots[index])
        if slots[index].isHuge { hugeSizes.removeValue(forKey: address) }
        count -= 1
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
        slots[hole] = .empty
        return removed
    }

    private mutating func grow() {
        let old = storage
        let oldCapacity = old.capacity
        let newCapacity = oldCapacity * 2
        // In place when the slots are mapped: the old and the new buffer are never both held
        // (CPython's trace: a 24 MiB table of 24-byte slots grew into 48 MiB, 72 MiB at once by
        // copying).
        if bufferBytes >= inPlaceGrowthFromBytes, let grown = old.remapped(toCapacity: newCapacity) {
            storage = grown
            shift -= 1
            growthCount = Self.growthCount(capacity: newCapacity)
            rehashInPlace(oldCapacity: oldCapacity)
            return
        }
        storage = Storage(capacity: newCapacity)
        shift -= 1
        growthCount = Self.growthCount(capacity: storage.capacity)
        let slots = self.slots
        let mask = capacity - 1
        for position in 0..<old.capacity where old.slots[position].address != 0 {
            var index = home(old.slots[position].address)
            while slots[index].address != 0 { index = (index + 1) & mask }
            slots[index] = old.slots[position]
        }
    }

    /// After the slots doubled in place (the blocks still where the half-size table had them,
    /// the new half empty): moves every block to the slot the copying growth above would give
    /// it (old slots in order, each block to the first slot from its home not yet taken), so
    /// the table's layout, and the order `forEach` visits blocks in, do not depend on how it
    /// grew. First the slots are worked out with a bitmap of those taken, then each block is
    /// moved once. On the side: a bit per slot, and half a byte per old slot for the distance
    /// of its block's new slot from its new home (runs are short at 75 % load; a distance of 14
    /// or more goes to a dictionary), instead of a second table. The half bytes are held until
    /// the last block has moved, when the new half of the slots has been written: at CPython's
    /// last growth they were the report's peak (a byte per old slot, 1 MiB; 4-byte slot numbers,
    /// 4 MiB).
    private mutating func rehashInPlace(oldCapacity: Int) {
        let slots = self.slots
        let mask = capacity - 1
        let wasEmpty: UInt8 = 0xF
        let far: UInt8 = 0xE
        // Old slot i's half byte is bits 4 * (i & 1) ..< 4 * (i & 1) + 4 of byte i / 2.
        let states = UnsafeMutablePointer<UInt8>.allocate(capacity: (oldCapacity + 1) / 2)
        defer { states.deallocate() }
        func state(_ position: Int) -> UInt8 { states[position &>> 1] &>> UInt8((position & 1) &<< 2) & 0xF }
        var farDestinations: [Int: Int] = [:]
        let takenWords = (capacity + 63) / 64
        let taken = UnsafeMutablePointer<UInt64>.allocate(capacity: takenWords)
        taken.initialize(repeating: 0, count: takenWords)
        /// Takes the new slot of the block at `position` and returns its state.
        func place(_ position: Int) -> UInt8 {
            let address = slots[position].address
            guard address != 0 else { return wasEmpty }
            let start = home(address)
            var index = start
            while taken[index &>> 6] & (1 &<< UInt64(index & 63)) != 0 { index = (index + 1) & mask }
            taken[index &>> 6] |= 1 &<< UInt64(index & 63)
            let distance = (index - start) & mask
            guard distance >= Int(far) else { return UInt8(truncatingIfNeeded: distance) }
            farDestinations[position] = index
            return far
        }
        for pair in 0..<oldCapacity / 2 {
            let even = place(2 &* pair)
            states[pair] = even | place(2 &* pair &+ 1) &<< 4
        }
        taken.deallocate()
        /// The new slot of the block that was at `position`, whose state is `distance`.
        func destination(_ position: Int, _ address: UInt64, _ distance: UInt8) -> Int {
            distance == far ? farDestinations[position]! : (home(address) + Int(distance)) & mask
        }
        // Nearly every block moves up (its new home is about twice its old one): from the top
        // down, its slot-to-be has already been left by the block that was there, so both
        // sides are walked in order, which the cache follows. A block's slot-to-be is free when
        // it is empty: a block that has reached its new slot holds no other block's.
        var blocked: [Int] = []
        func move(_ position: Int, _ distance: UInt8) {
            guard distance != wasEmpty else { return }
            let destination = destination(position, slots[position].address, distance)
            if destination == position { return }
            if destination >= oldCapacity || slots[destination].address == 0 {
                slots[destination] = slots[position]
                slots[position] = .empty
            } else {
                blocked.append(position)
            }
        }
        var pair = oldCapacity / 2
        while pair > 0 {
            pair -= 1
            let pairStates = states[pair]
            move(2 &* pair &+ 1, pairStates &>> 4)
            move(2 &* pair, pairStates & 0xF)
        }
        // The few left (clusters that wrap around the end), lowest first, follow the
        // permutation's chains: each starts by lifting a block out of its slot and ends at an
        // empty slot (perhaps the chain's own start). A slot in the chain's way holds a block
        // still to move; a block moved here has its state set to `wasEmpty`.
        for start in blocked.reversed() where state(start) != wasEmpty {
            var carried = slots[start]
            slots[start] = .empty
            var from = start
            while true {
                let destination = destination(from, carried.address, state(from))
                states[from &>> 1] |= wasEmpty &<< UInt8((from & 1) &<< 2)
                if destination < oldCapacity && slots[destination].address != 0 {
                    let next = slots[destination]
                    slots[destination] = carried
                    carried = next
                    from = destination
                } else {
                    slots[destination] = carried
                    break
                }
            }
        }
    }

    /// Gives the pages without a block back to the system when the table holds few blocks for
    /// its size; see `LiveBlockTable.releaseEmptyPages`.
    mutating func releaseEmptyPages() {
        guard count * MemoryLayout<Slot>.stride * 8 < bufferBytes,
              isKnownUniquelyReferenced(&storage) else { return }
        _ = storage.releaseEmptyPages()
    }

    // MARK: Iteration

    /// Calls `body` with the index and the block of every slot that holds one, in slot order.
    func forEachSlot(_ body: (Int, LiveBlock) throws -> Void) rethrows {
        let slots = self.slots
        for index in 0..<capacity where slots[index].address != 0 {
            try body(index, unpack(slots[index]))
        }
    }

    mutating func removeAll() {
        makeUnique()
        for index in 0..<capacity { slots[index] = .empty }
        hugeSizes.removeAll()
        count = 0
    }
}

/// How the live table's memory is obtained.
enum LiveTableMemory {
    /// A table this big is mapped on its own and asks for transparent huge pages: replay
    /// touches one random slot per event, and with 4 KiB pages a table of millions of
    /// blocks misses the TLB on nearly every one (CPython's 36-million-call trace: 3.1 s
    /// of CPU with 4 KiB pages, 2.1 s with huge pages).
    static let hugePageBytes = 2 << 20
    /// A table this big grows in place (the old and the new slots are never both held); a
    /// smaller one grows by copying into a new mapping, in fewer instructions, holding at most
    /// this many bytes twice, below the table's next size. Perl's trace: 562 M instructions to
    /// 549 M with the same peak; at 16 MiB, 530 M, but a peak 8 MiB higher (41.6 MiB).
    static let inPlaceGrowthBytes = 8 << 20
}
