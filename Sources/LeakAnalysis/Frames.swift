import LiveSet
import Symbolization
import TraceFormat

/// Resolves a captured address to its (inline-expanded) frames. The symbolization stage
/// provides the real one; tests provide tables.
public protocol FrameSymbolizer: AnyObject {
    /// Frames for `address` in `module`, innermost (most inlined) first, physical function
    /// last; never empty.
    func resolve(address: UInt64, module: Module?) -> [SymbolizedFrame]
    /// One line per problem met (a binary that changed since the trace, ...).
    var symbolizationWarnings: [String] { get }
    /// Keeps what was learned for later runs, where the symbolizer can; called once, at the end.
    func finish()
}

/// Finds the loaded module containing an address, given the MODULES snapshot in force.
public protocol ModuleLookup {
    func module(containing address: UInt64, snapshot index: Int) -> Module?
}

/// A symbolizer that knows nothing: every frame is `module+offset`. Used with --no-symbolize
/// and when symbolization is not possible.
public final class OffsetOnlySymbolizer: FrameSymbolizer {
    public init() {}
    public func resolve(address: UInt64, module: Module?) -> [SymbolizedFrame] {
        [SymbolizedFrame(address: address, module: module?.path,
                       moduleOffset: module.map { address &- $0.bias })]
    }
    public var symbolizationWarnings: [String] { [] }
    public func finish() {}
}

/// Resolves each distinct (address, module) once and remembers the answer, with what the
/// analysis asks of every stack it appears in: which of its frames is the first outside the
/// allocator, and the first suppression that matches one of its frames. A stack's call site
/// and suppression then cost one lookup per address, however many stacks share the address.
final class FrameCache {
    /// What an answer depends on: the address and the file loaded there.
    private struct Key: Hashable {
        var address: UInt64
        var modulePath: String?
        var bias: UInt64

        /// The path is left out of the hash (it is still compared): an address and a bias
        /// nearly always name one file, and hashing the path cost more than the rest of a
        /// lookup, once per address and module snapshot.
        func hash(into hasher: inout Hasher) {
            hasher.combine(address)
            hasher.combine(bias)
        }
    }
    private struct Entry {
        /// Inline-expanded, innermost first; never empty.
        var frames: [SymbolizedFrame]
        /// Index in `frames` of the first frame the filter does not take for the allocator.
        var callsite: Int?
        /// Lowest index of a suppression rule matching any of `frames`.
        var suppression: Int?
    }
    private let symbolizer: FrameSymbolizer
    private let modules: ModuleLookup
    private let filter: AllocatorFrameFilter
    private let suppressions: Suppressions
    // Used by one thread, and looked up for every frame of every stack classified: the runtime
    // exclusivity check of a class property cost as much as the lookup itself.
    @exclusivity(unchecked) private var entries: [Entry] = []
    @exclusivity(unchecked) private var entryOfKey: [Key: Int] = [:]
    @exclusivity(unchecked) private var entryOfAddress = AddressTable()

    init(symbolizer: FrameSymbolizer, modules: ModuleLookup, options: AnalysisOptions) {
        self.symbolizer = symbolizer
        self.modules = modules
        filter = options.frameFilter
        suppressions = options.suppressions
    }

    private func entry(for address: UInt64, snapshot: Int) -> Entry {
        entries[entryIndex(for: address, snapshot: snapshot)]
    }

    private func entryIndex(for address: UInt64, snapshot: Int) -> Int {
        if let index = entryOfAddress.find(address: address, snapshot: snapshot) { return index }
        let module = modules.module(containing: address, snapshot: snapshot)
        let key = Key(address: address, modulePath: module?.path, bias: module?.bias ?? 0)
        if let index = entryOfKey[key] {
            entryOfAddress.insert(address: address, snapshot: snapshot, entry: index)
            return index
        }
        var frames = symbolizer.resolve(address: address, module: module)
        if frames.isEmpty {
            frames = [SymbolizedFrame(address: address, module: module?.path,
                                      moduleOffset: module.map { address &- $0.bias })]
        }
        let entry = Entry(frames: frames,
                          callsite: frames.firstIndex { !filter.isAllocatorFrame(function: $0.function) },
                          suppression: suppressions.isEmpty ? nil : suppressions.firstMatch(in: frames))
        entryOfKey[key] = entries.count
        entryOfAddress.insert(address: address, snapshot: snapshot, entry: entries.count)
        entries.append(entry)
        return entries.count - 1
    }

    /// Inline-expanded frames for one captured address.
    func frames(for address: UInt64, snapshot: Int) -> [SymbolizedFrame] {
        entry(for: address, snapshot: snapshot).frames
    }

    /// Inline-expanded frames for a whole stack (innermost first).
    func frames(forStack addresses: [UInt64], snapshot: Int) -> [SymbolizedFrame] {
        addresses.flatMap { frames(for: $0, snapshot: snapshot) }
    }

    /// The call site of a stack: its first frame that the allocator frame filter does not take
    /// for the allocator or a wrapper, resolving frames only as far as needed (the innermost
    /// frame when every frame looks like the allocator; nil for an empty stack).
    func callsite(of addresses: [UInt64], snapshot: Int) -> SymbolizedFrame? {
        for address in addresses {
            let entry = entry(for: address, snapshot: snapshot)
            if let index = entry.callsite { return entry.frames[index] }
        }
        return addresses.first.flatMap { frames(for: $0, snapshot: snapshot).first }
    }

    /// Names a frame the cache holds: the same name, the same frame. A call site's number is
    /// one per entry (the entry's call-site frame, or its first frame when every frame is the
    /// allocator's, and then it has no call-site frame), so `entry` alone tells call sites
    /// apart: see `CallsiteMap`.
    struct FrameNumber: Hashable {
        var entry: Int
        var frame: Int
    }

    /// `callsite(of:snapshot:)` with the frame's number, for work that follows from the call
    /// site alone (done once per number rather than once per stack).
    func numberedCallsite(of addresses: [UInt64], snapshot: Int) -> (frame: SymbolizedFrame, number: FrameNumber)? {
        for address in addresses {
            let index = entryIndex(for: address, snapshot: snapshot)
            if let frame = entries[index].callsite {
                return (entries[index].frames[frame], FrameNumber(entry: index, frame: frame))
            }
        }
        guard let first = addresses.first else { return nil }
        let index = entryIndex(for: first, snapshot: snapshot)
        return (entries[index].frames[0], FrameNumber(entry: index, frame: 0))
    }

    /// `numberedCallsite(of:snapshot:)` of the stack `id` of `stacks`, walked node by node: the
    /// call site is nearly always one of the first frames, and deep stacks (recursion: 80
    /// frames) were built whole for it, once per stack.
    func numberedCallsite(ofStack id: UInt32, in stacks: StackLookup,
                          snapshot: Int) -> (frame: SymbolizedFrame, number: FrameNumber)? {
        var first: Int?
        var node = id
        while let next = stacks.node(node) {
            let index = entryIndex(for: next.ip, snapshot: snapshot)
            if first == nil { first = index }
            if let frame = entries[index].callsite {
                return (entries[index].frames[frame], FrameNumber(entry: index, frame: frame))
            }
            node = next.parent
        }
        guard let first else { return nil }
        return (entries[first].frames[0], FrameNumber(entry: first, frame: 0))
    }

    /// The index of the first suppression rule (in the rules' order) that matches a frame of
    /// the stack, or nil: what `Suppressions.firstMatch` says of the stack's frames.
    func suppression(of addresses: [UInt64], snapshot: Int) -> Int? {
        guard !suppressions.isEmpty else { return nil }
        var lowest: Int?
        for address in addresses {
            if let rule = entry(for: address, snapshot: snapshot).suppression, rule < (lowest ?? .max) {
                lowest = rule
            }
        }
        return lowest
    }
}

/// Values by call site (a number from `FrameCache.numberedCallsite`), in an array indexed by the
/// call site's entry: a dictionary hashed the number with SipHash for every stack classified.
struct CallsiteMap<Value> {
    private var values: [Value?] = []

    subscript(number: FrameCache.FrameNumber) -> Value? {
        get { number.entry < values.count ? values[number.entry] : nil }
        set {
            if number.entry >= values.count {
                values.append(contentsOf: repeatElement(nil, count: max(number.entry + 1, values.count * 2) - values.count))
            }
            values[number.entry] = newValue
        }
    }
}

/// The frame cache's entry of each address in each module snapshot (the same address in the
/// same snapshot has the same answer: found without looking the module up or hashing its path).
/// Open addressing with a multiplicative hash: looked up for the first frames of every stack,
/// where a Dictionary's SipHash cost more than the rest of the lookup (7% of a report of cc1).
private struct AddressTable {
    private var addresses: [UInt64]
    private var snapshots: [Int]
    /// Entry index + 1; 0 for an empty slot.
    private var entries: [Int32]
    private var count = 0

    init() {
        addresses = Array(repeating: 0, count: 1024)
        snapshots = Array(repeating: 0, count: 1024)
        entries = Array(repeating: 0, count: 1024)
    }

    private static func start(address: UInt64, snapshot: Int, mask: Int) -> Int {
        let mixed = (address ^ UInt64(truncatingIfNeeded: snapshot) &* 0xC2B2_AE3D_27D4_EB4F) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> 32) & mask
    }

    func find(address: UInt64, snapshot: Int) -> Int? {
        let mask = entries.count - 1
        var slot = Self.start(address: address, snapshot: snapshot, mask: mask)
        while entries[slot] != 0 {
            if addresses[slot] == address && snapshots[slot] == snapshot { return Int(entries[slot]) - 1 }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// Adds an address that `find` did not find.
    mutating func insert(address: UInt64, snapshot: Int, entry: Int) {
        if (count + 1) * 2 > entries.count { grow() }
        place(address: address, snapshot: snapshot, entry: Int32(truncatingIfNeeded: entry + 1))
        count += 1
    }

    private mutating func place(address: UInt64, snapshot: Int, entry: Int32) {
        let mask = entries.count - 1
        var slot = Self.start(address: address, snapshot: snapshot, mask: mask)
        while entries[slot] != 0 { slot = (slot + 1) & mask }
        addresses[slot] = address
        snapshots[slot] = snapshot
        entries[slot] = entry
    }

    private mutating func grow() {
        let old = (addresses, snapshots, entries)
        let capacity = entries.count * 2
        addresses = Array(repeating: 0, count: capacity)
        snapshots = Array(repeating: 0, count: capacity)
        entries = Array(repeating: 0, count: capacity)
        for slot in old.2.indices where old.2[slot] != 0 {
            place(address: old.0[slot], snapshot: old.1[slot], entry: old.2[slot])
        }
    }
}
