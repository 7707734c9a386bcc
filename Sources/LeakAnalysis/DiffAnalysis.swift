import Symbolization

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

// MARK: - Old and new amounts

/// An amount in an old and a new state (two traces, or two moments of one trace) and the
/// difference: what every total, path row and site row of `diff` and `growth` holds.
public protocol AmountChange {
    var old: Amount { get }
    var new: Amount { get }
}

extension AmountChange {
    /// New bytes minus old bytes.
    public var deltaBytes: Int64 { Int64(clamping: new.bytes) &- Int64(clamping: old.bytes) }
    /// New blocks minus old blocks.
    public var deltaBlocks: Int { new.blocks - old.blocks }

    /// Writes both amounts under `oldKey` and `newKey` (`old`/`new` in a diff, `atFrom`/`atTo`
    /// in a growth report), then `deltaBytes` and `deltaBlocks`: the JSON every such row shares
    /// (docs/report-json.md).
    public func encodeChange<Key: CodingKey>(into container: inout KeyedEncodingContainer<Key>, old oldKey: Key,
                                             new newKey: Key, deltaBytes deltaBytesKey: Key,
                                             deltaBlocks deltaBlocksKey: Key) throws {
        try container.encode(old, forKey: oldKey)
        try container.encode(new, forKey: newKey)
        try container.encode(deltaBytes, forKey: deltaBytesKey)
        try container.encode(deltaBlocks, forKey: deltaBlocksKey)
    }
}

/// Two totals and their difference.
public struct TotalChange: AmountChange, Equatable, Sendable, Encodable {
    public var old: Amount
    public var new: Amount

    public init(old: Amount, new: Amount) { self.old = old; self.new = new }

    /// True when the growth is more than `limit` bytes (`--fail-on-growth`); false without one.
    public func exceeds(_ limit: UInt64?) -> Bool {
        guard let limit else { return false }
        return deltaBytes > Int64(clamping: limit)
    }

    enum CodingKeys: String, CodingKey { case old, new, deltaBytes, deltaBlocks }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try encodeChange(into: &container, old: .old, new: .new, deltaBytes: .deltaBytes, deltaBlocks: .deltaBlocks)
    }
}

/// One site in both traces.
public struct SiteDelta: AmountChange, Equatable, Sendable, Encodable {
    public var key: SiteKey
    public var name: String
    public var callsite: SymbolizedFrame?
    public var old: Amount
    public var new: Amount
    public var change: SiteChange

    enum CodingKeys: String, CodingKey { case key, name, callsite, old, new, change, deltaBytes, deltaBlocks }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(callsite, forKey: .callsite)
        try encodeChange(into: &container, old: .old, new: .new, deltaBytes: .deltaBytes, deltaBlocks: .deltaBlocks)
        try container.encode(change, forKey: .change)
    }
}

/// Old and new amounts of one path.
public struct PathDelta: AmountChange, Equatable, Sendable, Encodable {
    public var path: LeakPath
    public var old: Amount
    public var new: Amount

    enum CodingKeys: String, CodingKey { case path, old, new, deltaBytes, deltaBlocks }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try encodeChange(into: &container, old: .old, new: .new, deltaBytes: .deltaBytes, deltaBlocks: .deltaBlocks)
    }
}

// MARK: - Two traces compared

/// The comparison of two traces' per-site totals.
public struct TraceDiff: Equatable, Sendable {
    /// Every site present in either trace, biggest growth first (then biggest shrink last).
    public var sites: [SiteDelta]
    /// Totals per path, in the fixed path order, paths empty in both left out.
    public var paths: [PathDelta]
    /// Everything counted in each trace.
    public var total: TotalChange

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
        total = TotalChange(old: old.total, new: new.total)
    }

    /// Sites that appeared, grew, shrank or vanished (not those that stayed the same).
    public var changed: [SiteDelta] { sites.filter { $0.change != .same } }
}
