// Comparing two traces site by site: what `leakreport diff OLD NEW` reports.

/// How a site changed from the old trace to the new one.
public enum SiteChange: String, Sendable, Encodable {
    /// Only in the new trace.
    case appeared
    /// Only in the old trace.
    case vanished
    case grew
    case shrank
    case same
}

/// One site in both traces.
public struct SiteDelta: Equatable, Sendable, Encodable {
    public var key: SiteKey
    public var name: String
    public var callsite: ResolvedFrame?
    public var old: Amount
    public var new: Amount
    public var change: SiteChange

    /// New bytes minus old bytes.
    public var deltaBytes: Int64 { Int64(clamping: new.bytes) &- Int64(clamping: old.bytes) }
    public var deltaBlocks: Int { new.blocks - old.blocks }

    enum CodingKeys: String, CodingKey { case key, name, callsite, old, new, change, deltaBytes, deltaBlocks }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(callsite, forKey: .callsite)
        try container.encode(old, forKey: .old)
        try container.encode(new, forKey: .new)
        try container.encode(change, forKey: .change)
        try container.encode(deltaBytes, forKey: .deltaBytes)
        try container.encode(deltaBlocks, forKey: .deltaBlocks)
    }
}

/// Old and new amounts of one path.
public struct PathDelta: Equatable, Sendable, Encodable {
    public var path: LeakPath
    public var old: Amount
    public var new: Amount
    public var deltaBytes: Int64 { Int64(clamping: new.bytes) &- Int64(clamping: old.bytes) }
    public var deltaBlocks: Int { new.blocks - old.blocks }

    enum CodingKeys: String, CodingKey { case path, old, new, deltaBytes, deltaBlocks }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(old, forKey: .old)
        try container.encode(new, forKey: .new)
        try container.encode(deltaBytes, forKey: .deltaBytes)
        try container.encode(deltaBlocks, forKey: .deltaBlocks)
    }
}

/// The comparison of two traces' per-site totals.
public struct TraceDiff: Equatable, Sendable {
    /// Every site present in either trace, biggest growth first (then biggest shrink last).
    public var sites: [SiteDelta]
    /// Totals per path, in the fixed path order, paths empty in both left out.
    public var paths: [PathDelta]
    public var oldTotal: Amount
    public var newTotal: Amount

    public var deltaBytes: Int64 { Int64(clamping: newTotal.bytes) &- Int64(clamping: oldTotal.bytes) }
    public var deltaBlocks: Int { newTotal.blocks - oldTotal.blocks }

    /// Matches the sites of `old` and `new` by key (never by address).
    public init(old: SiteTotals, new: SiteTotals) {
        var deltas: [SiteKey: SiteDelta] = [:]
        for entry in old.entries.values {
            deltas[entry.label.key] = SiteDelta(key: entry.label.key, name: entry.label.name,
                                                callsite: entry.label.callsite, old: entry.amount,
                                                new: Amount(), change: .vanished)
        }
        for entry in new.entries.values {
            if var delta = deltas[entry.label.key] {
                delta.new = entry.amount
                // The new run's frame: its addresses are the ones a user can look up now.
                delta.callsite = entry.label.callsite
                delta.change = delta.deltaBytes > 0 ? .grew : delta.deltaBytes < 0 ? .shrank
                    : delta.deltaBlocks > 0 ? .grew : delta.deltaBlocks < 0 ? .shrank : .same
                deltas[entry.label.key] = delta
            } else {
                deltas[entry.label.key] = SiteDelta(key: entry.label.key, name: entry.label.name,
                                                    callsite: entry.label.callsite, old: Amount(),
                                                    new: entry.amount, change: .appeared)
            }
        }
        sites = deltas.values.sorted { lhs, rhs in
            if lhs.deltaBytes != rhs.deltaBytes { return lhs.deltaBytes > rhs.deltaBytes }
            if lhs.deltaBlocks != rhs.deltaBlocks { return lhs.deltaBlocks > rhs.deltaBlocks }
            return lhs.key < rhs.key
        }
        paths = LeakPath.allCases.compactMap { path in
            let before = old.byPath[path], after = new.byPath[path]
            guard before.bytes > 0 || before.blocks > 0 || after.bytes > 0 || after.blocks > 0 else { return nil }
            return PathDelta(path: path, old: before, new: after)
        }
        oldTotal = old.total
        newTotal = new.total
    }

    /// Sites that appeared, grew, shrank or vanished (not those that stayed the same).
    public var changed: [SiteDelta] { sites.filter { $0.change != .same } }
}
