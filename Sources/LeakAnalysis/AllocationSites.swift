import LiveSet
import TraceFormat

// Allocation calls per call site: every allocation of the trace, freed or not, with its bytes
// and temporary allocations (LiveSet/AllocationCalls.swift), grouped like the leak groups. The
// counts come from the replay, so a folded trace and a full one of the same run give the same.

extension AnalysisRun {
    /// The totals over all stacks.
    func allocationTotals() -> AllocationTotals {
        let total = replay.allocationCalls.total
        return AllocationTotals(calls: total.calls, bytes: total.bytes, temporary: total.temporary)
    }

    /// The `options.top` groups with the most allocation calls (then bytes, then name).
    func allocationSites() -> [AllocationSite] {
        var merged: [GroupKey: AllocationSite] = [:]
        // The first module snapshot: a module loaded later is found in the snapshots after it.
        let firstSnapshot = snapshot(at: 0)
        replay.allocationCalls.forEach { stack, count in
            // Grouped like the leaks; suppressions are about leaks and do not apply to calls.
            let group = group(of: frames(of: StackRef(id: stack, isInherited: false)), snapshot: firstSnapshot)
            var site = merged[group.key]
                ?? AllocationSite(rank: 0, name: group.name, callsite: group.callsite, calls: 0, bytes: 0, temporary: 0)
            site.calls &+= count.calls
            site.bytes &+= count.bytes
            site.temporary &+= count.temporary
            merged[group.key] = site
        }
        let ordered = merged.values.sorted { lhs, rhs in
            if lhs.calls != rhs.calls { return lhs.calls > rhs.calls }
            if lhs.bytes != rhs.bytes { return lhs.bytes > rhs.bytes }
            return lhs.name < rhs.name
        }
        return ordered.prefix(options.top).enumerated().map { index, site in
            var ranked = site
            ranked.rank = index + 1
            return ranked
        }
    }
}
