import TraceFormat

/// What a direct mapping made by the program maps.
public enum MappingKind: String, Sendable, CaseIterable, Codable {
    case privateAnonymous = "private-anonymous"
    case sharedAnonymous = "shared-anonymous"
    case privateFile = "private-file"
    case sharedFile = "shared-file"

    /// The kind of a mapping from its mmap flags, fd and file path.
    public init(flags: UInt64, fd: Int64, path: String) {
        let mapType = flags & MapBits.sharedValidate
        let isShared = mapType == MapBits.shared || mapType == MapBits.sharedValidate
        let isAnonymous = flags & MapBits.anonymous != 0 || (fd < 0 && path.isEmpty)
        switch (isShared, isAnonymous) {
        case (false, true): self = .privateAnonymous
        case (true, true): self = .sharedAnonymous
        case (false, false): self = .privateFile
        case (true, false): self = .sharedFile
        }
    }
}

/// A range of addresses mapped by the program's own mmap/mremap calls.
public struct Mapping: Equatable, Sendable {
    public var start: UInt64
    /// One past the last byte; always > start.
    public var end: UInt64
    public var kind: MappingKind
    /// The mapped file, empty for anonymous mappings.
    public var path: String
    /// Stack of the mmap call that created the mapping.
    public var stack: UInt32
    /// Time of that call.
    public var time: UInt64
    public var flags: BlockFlags

    public init(start: UInt64, end: UInt64, kind: MappingKind, path: String, stack: UInt32,
                time: UInt64, flags: BlockFlags = BlockFlags()) {
        self.start = start; self.end = end; self.kind = kind; self.path = path
        self.stack = stack; self.time = time; self.flags = flags
    }

    public var size: UInt64 { end - start }
    public var stackRef: StackRef { StackRef(id: stack, isInherited: flags.contains(.inherited)) }
}

/// The program's direct mappings as a set of disjoint intervals, sorted by start.
///
/// Programs hold few mappings compared to heap blocks, so a sorted array with binary search
/// is both compact and fast; splitting and trimming edit it in place.
public struct MappingSet: Sendable {
    public private(set) var mappings: [Mapping] = []

    public init() {}

    public var count: Int { mappings.count }
    public var totalBytes: UInt64 { mappings.reduce(0) { $0 &+ $1.size } }

    /// Index of the first mapping whose end is above `address`.
    private func firstIndex(endingAbove address: UInt64) -> Int {
        var low = 0, high = mappings.count
        while low < high {
            let middle = (low + high) / 2
            if mappings[middle].end <= address { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The mapping containing `address`, if any.
    public func mapping(containing address: UInt64) -> Mapping? {
        let index = firstIndex(endingAbove: address)
        guard index < mappings.count, mappings[index].start <= address else { return nil }
        return mappings[index]
    }

    /// Unmaps [start, end): mappings inside go, mappings across an edge are trimmed, a mapping
    /// spanning the whole range is split in two. Returns the pieces that were removed.
    @discardableResult
    public mutating func remove(from start: UInt64, to end: UInt64) -> [Mapping] {
        guard start < end else { return [] }
        var removed: [Mapping] = []
        var index = firstIndex(endingAbove: start)
        while index < mappings.count, mappings[index].start < end {
            let current = mappings[index]
            var piece = current
            piece.start = max(current.start, start)
            piece.end = min(current.end, end)
            removed.append(piece)
            switch (current.start < start, current.end > end) {
            case (true, true):    // split: keep both sides
                var right = current
                right.start = end
                mappings[index].end = start
                mappings.insert(right, at: index + 1)
                index += 2
            case (true, false):   // trim the tail
                mappings[index].end = start
                index += 1
            case (false, true):   // trim the head
                mappings[index].start = end
                index += 1
            case (false, false):  // wholly inside
                mappings.remove(at: index)
            }
        }
        return removed
    }

    /// Maps `mapping`, replacing whatever was mapped in its range (as MAP_FIXED does).
    public mutating func insert(_ mapping: Mapping) {
        guard mapping.start < mapping.end else { return }
        remove(from: mapping.start, to: mapping.end)
        let index = firstIndex(endingAbove: mapping.start)
        mappings.insert(mapping, at: index)
    }

    /// Moves or resizes the mapping at [oldStart, oldStart+oldSize) to [newStart, newStart+newSize)
    /// as mremap does. The kind, path, creator stack and time come from the mapping that contains
    /// `oldStart`. `keepOld` leaves the old range mapped (MREMAP_DONTUNMAP, or old size 0 which
    /// duplicates a shared mapping). Returns false when no known mapping contains `oldStart`.
    @discardableResult
    public mutating func remap(oldStart: UInt64, oldSize: UInt64, newStart: UInt64, newSize: UInt64,
                               keepOld: Bool) -> Bool {
        guard let template = mapping(containing: oldStart) else { return false }
        if !keepOld && oldSize > 0 {
            remove(from: oldStart, to: Self.saturatingEnd(oldStart, oldSize))
        }
        var moved = template
        moved.start = newStart
        moved.end = Self.saturatingEnd(newStart, newSize)
        insert(moved)
        return true
    }

    /// Marks every mapping as inherited from a parent process, with stack ids translated by `map`.
    public mutating func markInherited(mapStack: (StackRef) -> UInt32) {
        for index in mappings.indices {
            mappings[index].flags.insert(.inherited)
            mappings[index].stack = mapStack(mappings[index].stackRef)
        }
    }

    static func saturatingEnd(_ start: UInt64, _ size: UInt64) -> UInt64 {
        let (sum, overflow) = start.addingReportingOverflow(size)
        return overflow ? .max : sum
    }
}
