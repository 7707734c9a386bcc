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
        replay.allocationCalls.forEach { stack, count in
            let stackClass = classify(StackRef(id: stack, isInherited: false), time: 0)
            var site = merged[stackClass.key]
                ?? AllocationSite(rank: 0, name: stackClass.name, callsite: stackClass.callsite, calls: 0, bytes: 0,
                                  temporary: 0)
            site.calls &+= count.calls
            site.bytes &+= count.bytes
            site.temporary &+= count.temporary
            merged[stackClass.key] = site
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
