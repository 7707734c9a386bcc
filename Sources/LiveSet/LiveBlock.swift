import TraceFormat

/// Facts about a live block that are not part of the allocation call itself.
public struct BlockFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The block was live in the parent process when it forked; its stack id is an id of
    /// `Replayer.inheritedStacks`, not of the child's own stack table.
    public static let inherited = BlockFlags(rawValue: 1 << 0)
}

/// One block the program allocated and has not yet released. (The live table stores it packed
/// in 16 bytes, or 24 when its fields do not fit, with its time in milliseconds: see
/// `LiveBlockTable`.)
public struct LiveBlock: Equatable, Sendable {
    /// Address returned by the allocation function. Never 0 for a stored block.
    public var address: UInt64
    /// Size the program asked for (not glibc's chunk size).
    public var size: UInt64
    /// Microseconds since tracing began, from the last TIME record before the allocation.
    public var time: UInt64
    /// Stack id (0 = no stack). In the child's stack table, or in `Replayer.inheritedStacks`
    /// when `flags` contains `.inherited`.
    public var stack: UInt32
    public var pathRaw: UInt8
    public var functionRaw: UInt8
    public var flags: BlockFlags

    public init(address: UInt64, size: UInt64, time: UInt64, stack: UInt32,
                path: AllocPath, function: AllocFunction, flags: BlockFlags = BlockFlags()) {
        self.address = address; self.size = size; self.time = time; self.stack = stack
        self.pathRaw = path.rawValue; self.functionRaw = function.rawValue; self.flags = flags
    }

    /// The part of the allocator that served the block.
    public var path: AllocPath { AllocPath(rawValue: pathRaw) ?? .unknown }
    /// The function that allocated the block.
    public var function: AllocFunction { AllocFunction(rawValue: functionRaw) ?? .malloc }
    public var isInherited: Bool { flags.contains(.inherited) }
    /// Where a stack id of this block is to be looked up.
    public var stackRef: StackRef { StackRef(id: stack, isInherited: isInherited) }
    /// One past the last byte of the block (saturating, so a corrupt size cannot wrap).
    public var end: UInt64 {
        let (sum, overflow) = address.addingReportingOverflow(size)
        return overflow ? .max : sum
    }
}

/// A stack id together with the table it belongs to: the traced process's own, or the
/// table of stacks inherited from a parent process at fork.
public struct StackRef: Hashable, Sendable {
    public var id: UInt32
    public var isInherited: Bool
    public init(id: UInt32, isInherited: Bool) { self.id = id; self.isInherited = isInherited }
}
