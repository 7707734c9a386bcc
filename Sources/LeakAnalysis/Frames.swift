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
/// and suppression then cost one lookup per address, however many stacks share the address,
/// and a suppression for the stacks of the trace's own table one lookup per node of the trie:
/// what a node's stack gets is remembered and serves every stack through that node.
///
/// One cache can serve a `GrowthTracker` during the replay and the report that follows it: the
/// answers depend on the address and the module loaded there, and while the replay may still
/// add module snapshots an address in no module is looked up again each time (a snapshot read
/// later can hold it).
final class FrameCache {
    private struct Entry {
        /// What the answer depends on besides the address: the file loaded there.
        var modulePath: String?
        /// Inline-expanded, innermost first; never empty.
        var frames: [SymbolizedFrame]
        /// Index in `frames` of the first frame the filter does not take for the allocator.
        var callsite: Int?
        /// Lowest index of a suppression rule matching any of `frames`.
        var suppression: Int?
    }
    private let symbolizer: FrameSymbolizer
    private let modules: ModuleLookup
    let filter: AllocatorFrameFilter
    let suppressions: Suppressions
    /// The stack table whose nodes' answers are remembered (the trace's own).
    private let ownStacks: ObjectIdentifier?
    /// True while a replay may still add module snapshots.
    var modulesMayGrow = false
    // Used by one thread, and looked up for every frame of every stack classified: the runtime
    // exclusivity check of a class property cost as much as the lookup itself.
    @exclusivity(unchecked) private var entries: [Entry] = []
    /// By (address, module bias), checked against the module's path: the answers.
    @exclusivity(unchecked) private var entryOfFileAddress = EntryTable()
    /// By (address, module snapshot): the module need not be looked up.
    @exclusivity(unchecked) private var entryOfAddress = EntryTable()
    /// Set by `entryIndex` when the answer may change once every module snapshot is known.
    @exclusivity(unchecked) private var lookupWasProvisional = false
    /// Per node of `ownStacks`: its stack's suppression.
    @exclusivity(unchecked) private var suppressionOfNode = NodeAnswers()
    /// Nodes met on a walk up a stack, with the suppression rule of each one's own frame.
    @exclusivity(unchecked) private var walked: [(node: UInt32, rule: Int32)] = []

    init(symbolizer: FrameSymbolizer, modules: ModuleLookup, options: AnalysisOptions, ownStacks: StackLookup? = nil) {
        self.symbolizer = symbolizer
        self.modules = modules
        filter = options.frameFilter
        suppressions = options.suppressions
        self.ownStacks = ownStacks.map(ObjectIdentifier.init)
    }

    /// True when the cache gives what a cache made with these would give.
    func serves(symbolizer: FrameSymbolizer, options: AnalysisOptions, stacks: StackLookup) -> Bool {
        self.symbolizer === symbolizer && ownStacks == ObjectIdentifier(stacks)
            && filter.patterns == options.frameFilter.patterns && suppressions.rules == options.suppressions.rules
    }

    private func entry(for address: UInt64, snapshot: Int) -> Entry {
        entries[entryIndex(for: address, snapshot: snapshot)]
    }

    private func entryIndex(for address: UInt64, snapshot: Int) -> Int {
        let snapshotNumber = UInt64(truncatingIfNeeded: snapshot)
        if let index = entryOfAddress.find(address, snapshotNumber) { return index }
        let module = modules.module(containing: address, snapshot: snapshot)
        // An address in no module may be in a snapshot not read yet: not remembered by address.
        let remembered = module != nil || !modulesMayGrow
        if !remembered { lookupWasProvisional = true }
        let bias = module?.bias ?? 0
        let path = module?.path
        if let index = entryOfFileAddress.find(address, bias, where: { entries[$0].modulePath == path }) {
            if remembered { entryOfAddress.insert(address, snapshotNumber, entry: index) }
            return index
        }
        var frames = symbolizer.resolve(address: address, module: module)
        if frames.isEmpty {
            frames = [SymbolizedFrame(address: address, module: path, moduleOffset: module.map { address &- $0.bias })]
        }
        let entry = Entry(modulePath: path, frames: frames,
                          callsite: frames.firstIndex { !filter.isAllocatorFrame($0) },
                          suppression: suppressions.isEmpty ? nil : suppressions.firstMatch(in: frames))
        entryOfFileAddress.insert(address, bias, entry: entries.count)
        if remembered { entryOfAddress.insert(address, snapshotNumber, entry: entries.count) }
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

    /// Names the call-site frame of a stack: one per entry of the cache (the entry's call-site
    /// frame, or its first frame when every frame is the allocator's), so the same number is the
    /// same frame. Work that follows from the call site alone is done once per number rather
    /// than once per stack (see `CallsiteMap`).
    struct CallsiteNumber: Hashable {
        var entry: Int
    }

    /// The frame `number` names.
    func frame(_ number: CallsiteNumber) -> SymbolizedFrame {
        entries[number.entry].frames[entries[number.entry].callsite ?? 0]
    }

    /// The number of `callsite(of:snapshot:)` of the stack `id` of `stacks` (nil for an empty
    /// stack), walked node by node: the call site is nearly always one of the first frames, and
    /// deep stacks (recursion: 80 frames) were built whole for it, once per stack.
    func callsiteNumber(ofStack id: UInt32, in stacks: StackLookup, snapshot: Int) -> CallsiteNumber? {
        var first: Int?
        var node = id
        while let next = stacks.node(node) {
            let index = entryIndex(for: next.ip, snapshot: snapshot)
            if entries[index].callsite != nil { return CallsiteNumber(entry: index) }
            if first == nil { first = index }
            node = next.parent
        }
        // No frame outside the allocator: the innermost one stands for the call site.
        return first.map(CallsiteNumber.init)
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

    /// `suppression(of:snapshot:)` of the stack `id` of `stacks`. For the trace's own table a
    /// node's answer is the lower of its frame's and its parent's, remembered: stacks that
    /// share their outer frames (deep recursion, one program's main loop) are looked at once.
    func suppression(ofStack id: UInt32, in stacks: StackLookup, snapshot: Int) -> Int? {
        guard !suppressions.isEmpty else { return nil }
        guard ownStacks == ObjectIdentifier(stacks) else {
            return suppression(of: stacks.frames(id, limit: .max), snapshot: snapshot)
        }
        lookupWasProvisional = false
        var depth = 0
        var rule: Int32 = -1
        var node = id
        while let next = stacks.node(node) {
            if let known = suppressionOfNode.answer(node: node, snapshot: snapshot) {
                rule = known
                break
            }
            let own = entry(for: next.ip, snapshot: snapshot).suppression.map { Int32(truncatingIfNeeded: $0) } ?? -1
            if depth < walked.count { walked[depth] = (node, own) } else { walked.append((node, own)) }
            depth += 1
            node = next.parent
        }
        let remember = !lookupWasProvisional
        for step in walked[..<depth].reversed() {
            if step.rule >= 0 && (rule < 0 || step.rule < rule) { rule = step.rule }
            if remember { suppressionOfNode.remember(rule, node: step.node, snapshot: snapshot) }
        }
        return rule >= 0 ? Int(rule) : nil
    }
}

/// One answer per node of a stack table, for one module snapshot (the first one answered for;
/// a question under another snapshot is answered afresh, not remembered): nearly every trace
/// has one snapshot.
private struct NodeAnswers {
    private var snapshot: Int?
    private var answers = PagedValues(empty: .min)

    func answer(node: UInt32, snapshot: Int) -> Int32? {
        guard snapshot == self.snapshot else { return nil }
        let answer = answers[Int(node)]
        return answer == .min ? nil : answer
    }

    mutating func remember(_ answer: Int32, node: UInt32, snapshot: Int) {
        if self.snapshot == nil { self.snapshot = snapshot }
        guard snapshot == self.snapshot else { return }
        answers[Int(node)] = answer
    }
}

/// Values by call site (a `FrameCache.CallsiteNumber`), in an array indexed by the call site's
/// entry: a dictionary hashed the number with SipHash for every stack classified.
struct CallsiteMap<Value> {
    private var values: [Value?] = []

    subscript(number: FrameCache.CallsiteNumber) -> Value? {
        get { number.entry < values.count ? values[number.entry] : nil }
        set {
            if number.entry >= values.count {
                values.append(contentsOf: repeatElement(nil, count: max(number.entry + 1, values.count * 2) - values.count))
            }
            values[number.entry] = newValue
        }
    }
}

/// Entries of the frame cache by a pair of numbers: (address, module snapshot) for the entry
/// of an address in a snapshot (found without looking the module up), and (address, module
/// bias) for the entry of an address in a loaded file (several files can share a pair: the
/// caller tells them apart). Open addressing with a multiplicative hash: looked up for the first
/// frames of every stack, where a Dictionary's SipHash cost more than the rest of the lookup.
private struct EntryTable {
    private var firsts: [UInt64]
    private var seconds: [UInt64]
    /// Entry index + 1; 0 for an empty slot.
    private var entries: [Int32]
    private var count = 0

    init() {
        firsts = Array(repeating: 0, count: 1024)
        seconds = Array(repeating: 0, count: 1024)
        entries = Array(repeating: 0, count: 1024)
    }

    private static func start(_ first: UInt64, _ second: UInt64, mask: Int) -> Int {
        let mixed = (first ^ second &* 0xC2B2_AE3D_27D4_EB4F) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> 32) & mask
    }

    /// The entry inserted for the pair (the first one `accept` takes, when several were).
    func find(_ first: UInt64, _ second: UInt64, where accept: (Int) -> Bool = { _ in true }) -> Int? {
        let mask = entries.count - 1
        var slot = Self.start(first, second, mask: mask)
        while entries[slot] != 0 {
            if firsts[slot] == first && seconds[slot] == second && accept(Int(entries[slot]) - 1) {
                return Int(entries[slot]) - 1
            }
            slot = (slot + 1) & mask
        }
        return nil
    }

    mutating func insert(_ first: UInt64, _ second: UInt64, entry: Int) {
        if (count + 1) * 2 > entries.count { grow() }
        place(first, second, entry: Int32(truncatingIfNeeded: entry + 1))
        count += 1
    }

    private mutating func place(_ first: UInt64, _ second: UInt64, entry: Int32) {
        let mask = entries.count - 1
        var slot = Self.start(first, second, mask: mask)
        while entries[slot] != 0 { slot = (slot + 1) & mask }
        firsts[slot] = first
        seconds[slot] = second
        entries[slot] = entry
    }

    private mutating func grow() {
        let old = (firsts, seconds, entries)
        let capacity = entries.count * 2
        firsts = Array(repeating: 0, count: capacity)
        seconds = Array(repeating: 0, count: capacity)
        entries = Array(repeating: 0, count: capacity)
        for slot in old.2.indices where old.2[slot] != 0 {
            place(old.0[slot], old.1[slot], entry: old.2[slot])
        }
    }
}
