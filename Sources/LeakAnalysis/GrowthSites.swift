import LiveSet
import Symbolization
import TraceFormat

// Call sites as identities that survive from one run to the next, and the per-site totals that
// `diff`, `growth` and `--merge` compare.
//
// A raw address changes every run (ASLR), so a site is named by what it is: the module's file
// name, the function and file:line of the call-site frame, or the offset in the module when
// there is no line information, plus the allocation path that served the bytes (the same line
// leaking through glibc's heap and through mmap are two different problems).

// MARK: - Site identity

/// A call site and allocation path, comparable across runs of a program.
public struct SiteKey: Hashable, Comparable, Sendable, Encodable {
    /// File name of the module holding the call-site frame (no directory: the same library
    /// may be installed elsewhere on another machine).
    public var module: String?
    /// Symbolized function of the call-site frame.
    public var function: String?
    /// Source file and line of the call-site frame.
    public var file: String?
    public var line: Int?
    /// Offset of the call-site frame in its module, used only when there is no line information.
    @OptionalHexAddress public var moduleOffset: UInt64?
    /// The allocation path (or mapping kind) of the bytes.
    public var path: LeakPath

    public init(module: String? = nil, function: String? = nil, file: String? = nil, line: Int? = nil,
                moduleOffset: UInt64? = nil, path: LeakPath) {
        self.module = module; self.function = function; self.file = file; self.line = line
        self.moduleOffset = moduleOffset; self.path = path
    }

    /// The key of the call-site frame `frame` (nil: a block without a stack) on `path`.
    public init(callsite frame: SymbolizedFrame?, path: LeakPath) {
        self.init(path: path)
        guard let frame else { return }
        module = frame.module.map(SymbolizedFrame.basename)
        function = frame.function
        if let file = frame.file, let line = frame.line {
            self.file = file
            self.line = line
        } else {
            moduleOffset = frame.moduleOffset
        }
    }

    /// The key without its path: the call site alone.
    public var site: SiteKey {
        var copy = self
        copy.path = .heap
        return copy
    }

    /// Hashes the line, offset and path and the lengths of the names, not the names (they are
    /// still compared): two sites nearly always differ there, and hashing whole C++ function
    /// names cost more than the rest of naming a new site.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(line)
        hasher.combine(moduleOffset)
        hasher.combine(path)
        hasher.combine((module?.utf8.count ?? -1) &<< 40 ^ (function?.utf8.count ?? -1) &<< 20 ^ (file?.utf8.count ?? -1))
    }

    /// A stable total order (for sorting ties the same way every run).
    public static func < (lhs: SiteKey, rhs: SiteKey) -> Bool {
        (lhs.module ?? "", lhs.function ?? "", lhs.file ?? "", lhs.line ?? -1, lhs.moduleOffset ?? 0, lhs.path.index)
            < (rhs.module ?? "", rhs.function ?? "", rhs.file ?? "", rhs.line ?? -1, rhs.moduleOffset ?? 0, rhs.path.index)
    }
}

/// A site with its display name and the frame it was named after.
public struct SiteLabel: Equatable, Sendable {
    public var key: SiteKey
    /// `function (file:line)`, `function (module+0xoffset)`, `module+0xoffset` or `<no stack>`.
    public var name: String
    public var callsite: SymbolizedFrame?
}

// MARK: - Classifying stacks into sites

/// Finds the call site of a stack (the first frame that is not the allocator or a wrapper),
/// whether a suppression covers it, and interns the site. Each distinct address is symbolized
/// once (the frame cache), each distinct stack classified once.
final class SiteClassifier {
    /// One call site (without path).
    struct Site {
        var key: SiteKey
        var callsite: SymbolizedFrame?
    }

    let cache: FrameCache
    let options: AnalysisOptions
    private(set) var sites: [Site] = []
    /// Each site's display name, worked out the first time a label asks for it (most sites are
    /// never shown, and naming one builds strings).
    private var names: [String?] = []
    /// Whether a suppression covers each site (as it covers the first stack met there), worked
    /// out the first time it is asked for: it reads every frame of that stack, and a report
    /// asks it only of the sites that grow.
    private var suppressed: [Bool?] = []
    private var firstStacks: [(id: UInt32, stacks: StackLookup, snapshot: Int)?] = []
    private var indexOfSite: [SiteKey: Int32] = [:]
    /// The site of each call-site frame met: a frame of the cache has one key, so a stack
    /// whose call site was met before is named without building its key (strings, hashed).
    private var siteOfCallsite = CallsiteMap<Int32>()

    /// `ownStacks`: the trace's own stack table, whose nodes' answers the cache remembers.
    init(symbolizer: FrameSymbolizer, modules: ModuleLookup, options: AnalysisOptions, ownStacks: StackLookup? = nil) {
        cache = FrameCache(symbolizer: symbolizer, modules: modules, options: options, ownStacks: ownStacks)
        self.options = options
    }

    private func addSite(_ site: Site, suppressed: Bool?, firstStack: (id: UInt32, stacks: StackLookup, snapshot: Int)?) -> Int32 {
        let index = Int32(sites.count)
        sites.append(site)
        names.append(nil)
        self.suppressed.append(suppressed)
        firstStacks.append(firstStack)
        indexOfSite[site.key] = index
        return index
    }

    /// The site index of the stack whose frames are `addresses` (innermost first), resolved
    /// against module snapshot `snapshot`.
    func classify(_ addresses: [UInt64], snapshot: Int) -> Int32 {
        let frame = callsite(of: addresses, snapshot: snapshot)
        let key = SiteKey(callsite: frame, path: .heap)
        if let known = indexOfSite[key] { return known }
        return addSite(Site(key: key, callsite: frame),
                       suppressed: cache.suppression(of: addresses, snapshot: snapshot) != nil, firstStack: nil)
    }

    /// `classify(_:snapshot:)` of the stack `id` of `stacks`, reading only the frames up to its
    /// call site.
    func classify(stack id: UInt32, in stacks: StackLookup, snapshot: Int) -> Int32 {
        guard let number = cache.callsiteNumber(ofStack: id, in: stacks, snapshot: snapshot) else {
            return classify([], snapshot: snapshot)
        }
        if let known = siteOfCallsite[number] { return known }
        let frame = cache.frame(number)
        let key = SiteKey(callsite: frame, path: .heap)
        let index = indexOfSite[key]
            ?? addSite(Site(key: key, callsite: frame), suppressed: nil, firstStack: (id, stacks, snapshot))
        siteOfCallsite[number] = index
        return index
    }

    /// Whether a suppression covers site `index`.
    func isSuppressed(_ index: Int32) -> Bool {
        let site = Int(index)
        if let known = suppressed[site] { return known }
        let answer = firstStacks[site].map {
            cache.suppression(ofStack: $0.id, in: $0.stacks, snapshot: $0.snapshot) != nil
        } ?? false
        suppressed[site] = answer
        return answer
    }

    /// The first frame that is not part of the allocator (the innermost one if all are).
    func callsite(of addresses: [UInt64], snapshot: Int) -> SymbolizedFrame? {
        cache.callsite(of: addresses, snapshot: snapshot)
    }

    func label(site index: Int32, path: LeakPath) -> SiteLabel {
        let site = sites[Int(index)]
        var key = site.key
        key.path = path
        return SiteLabel(key: key, name: name(site: Int(index)), callsite: site.callsite)
    }

    /// `function (file:line)`, `function (module+0xoffset)`, `module+0xoffset` or `<no stack>`.
    private func name(site index: Int) -> String {
        if let name = names[index] { return name }
        let name = sites[index].callsite?.displayName ?? "<no stack>"
        names[index] = name
        return name
    }
}

// MARK: - Totals per site

/// Blocks and bytes per site (call site and path) of one trace, or of several merged.
public struct SiteTotals: Equatable, Sendable {
    /// One site's amount.
    public struct Entry: Equatable, Sendable {
        public var label: SiteLabel
        public var amount: Amount
        /// In how many traces the site has bytes (1 for a single trace).
        public var traces: Int
    }

    public private(set) var entries: [SiteKey: Entry] = [:]
    /// Everything counted, as the report's summary counts it (`leaked`).
    public var total = Amount()
    public var byPath = PathAmounts()

    public init() {}

    /// Adds `amount` of the same trace to the site `label` (several stacks can share a site).
    public mutating func add(_ label: SiteLabel, _ amount: Amount) {
        if var entry = entries[label.key] {
            entry.amount = entry.amount + amount
            entries[label.key] = entry
        } else {
            entries[label.key] = Entry(label: label, amount: amount, traces: 1)
        }
    }

    /// Adds every site and total of `other` (another trace) to these.
    public mutating func merge(_ other: SiteTotals) {
        for entry in other.entries.values {
            if var existing = entries[entry.label.key] {
                existing.amount = existing.amount + entry.amount
                existing.traces += entry.traces
                entries[entry.label.key] = existing
            } else {
                entries[entry.label.key] = entry
            }
        }
        total = total + other.total
        byPath.merge(other.byPath)
    }

    /// Entries biggest first (bytes, then blocks, then key).
    public var sorted: [Entry] {
        entries.values.sorted { lhs, rhs in
            if lhs.amount.bytes != rhs.amount.bytes { return lhs.amount.bytes > rhs.amount.bytes }
            if lhs.amount.blocks != rhs.amount.blocks { return lhs.amount.blocks > rhs.amount.blocks }
            return lhs.label.key < rhs.label.key
        }
    }
}

/// Leaked amounts per path of each stack, with the time of the first block met.
struct StackAmounts {
    private var numbering = StackNumbering()
    private var aggregates: [(byPath: PathAmounts, time: UInt64)] = []

    mutating func add(_ reference: StackRef, path: LeakPath, bytes: UInt64, time: UInt64) {
        let number = numbering.number(adding: reference)
        if number == aggregates.count { aggregates.append((PathAmounts(), time)) }
        aggregates[number].byPath.add(path, blocks: 1, bytes: bytes)
    }

    /// Each stack with its amounts, in the order first met.
    var stacks: Zip2Sequence<[StackRef], [(byPath: PathAmounts, time: UInt64)]> {
        zip(numbering.references, aggregates)
    }
}

extension LeakAnalyzer {
    /// The leak report and, from the same aggregation, the leaked amounts per site (call site
    /// identity and path, suppressed stacks left out): what `diff` and `--merge` compare.
    /// Net brk growth is counted per site whose net growth is positive.
    public func analyzeWithSites(replay: Replayer, stacks: StackLookup, modules: ModuleLookup,
                                 symbolizer: FrameSymbolizer, facts: TraceFacts,
                                 warnings: [String] = []) -> (report: LeakReport, sites: SiteTotals) {
        let report = analyze(replay: replay, stacks: stacks, modules: modules, symbolizer: symbolizer,
                             facts: facts, warnings: warnings)
        let sites = siteTotals(replay: replay, stacks: stacks, modules: modules, symbolizer: symbolizer)
        return (report, sites)
    }

    /// Leaked amounts per site of a replay (blocks, direct mappings, positive brk growth),
    /// suppressed stacks left out.
    /// With `filter`, only the blocks and mappings it keeps count, and brk growth (which has no
    /// category) does not.
    public func siteTotals(replay: Replayer, stacks: StackLookup, modules: ModuleLookup,
                           symbolizer: FrameSymbolizer, filter: ReachabilityFilter? = nil) -> SiteTotals {
        let classifier = SiteClassifier(symbolizer: symbolizer, modules: modules, options: options, ownStacks: stacks)
        // Per stack, in the order first met; the time of the first block met picks the module
        // snapshot its frames are resolved against. Stack ids are dense, so a leak-heavy trace's
        // millions of live blocks each cost an array index here, not a hashed lookup.
        var perStack = StackAmounts()
        replay.live.forEach { block in
            if let filter, !filter.keeps(block) { return }
            perStack.add(block.stackRef, path: LeakPath(block.path), bytes: block.size, time: block.time)
        }
        for mapping in replay.mappings.mappings {
            if let filter, !filter.keeps(mapping) { continue }
            perStack.add(mapping.stackRef, path: LeakPath(mapping.kind), bytes: mapping.size, time: mapping.time)
        }
        var totals = SiteTotals()
        for (reference, aggregate) in perStack.stacks {
            let site = classifier.classify(replay.frames(of: reference, in: stacks),
                                           snapshot: replay.moduleSnapshotIndex(at: aggregate.time))
            guard !classifier.isSuppressed(site) else { continue }
            for (path, amount) in aggregate.byPath.nonEmpty {
                totals.add(classifier.label(site: site, path: path), amount)
                totals.total = totals.total + amount
                totals.byPath.add(path, blocks: amount.blocks, bytes: amount.bytes)
            }
        }
        guard filter == nil else { return totals }
        totals.addBreakGrowth(replay.breakGrowth.values) { growth in
            let site = classifier.classify(replay.frames(of: growth.stack, in: stacks),
                                           snapshot: replay.moduleSnapshotIndex(at: growth.firstTime))
            return classifier.isSuppressed(site) ? nil : classifier.label(site: site, path: .breakGrowth)
        }
        return totals
    }
}

extension SiteTotals {
    /// Adds the program's own brk/sbrk growth: each stack's positive net growth to its site
    /// (`label` gives the site, nil when suppressed), and the net growth over all stacks, at
    /// least 0, to the totals, as the report's summary counts it.
    mutating func addBreakGrowth<Growths: Sequence>(_ growths: Growths, label: (BreakGrowth) -> SiteLabel?)
    where Growths.Element == BreakGrowth {
        var netBreak: Int64 = 0
        for growth in growths {
            netBreak = netBreak &+ growth.netBytes
            guard growth.netBytes > 0, let site = label(growth) else { continue }
            add(site, Amount(blocks: 0, bytes: UInt64(growth.netBytes)))
        }
        if netBreak > 0 {
            total.add(blocks: 0, bytes: UInt64(netBreak))
            byPath.add(.breakGrowth, blocks: 0, bytes: UInt64(netBreak))
        }
    }
}
