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
        // Sites in the order their groups are first met (stacks in id order: a group's name and
        // call site are its first stack's). A group follows from the call site alone (but with
        // --group-by stack), so it is worked out once per call site frame, not once per stack.
        var sites: [AllocationSite] = []
        var siteOfKey: [GroupKey: Int] = [:]
        var siteOfCallsite = CallsiteMap<Int>()
        let byCallsite = options.groupBy != .stack
        // The first module snapshot: a module loaded later is found in the snapshots after it.
        let firstSnapshot = snapshot(at: 0)
        replay.allocationCalls.forEach { stack, count in
            // The stack is read only as far as its call site, and whole only for a new one.
            let numbered = byCallsite ? cache.numberedCallsite(ofStack: stack, in: stacks, snapshot: firstSnapshot) : nil
            let index: Int
            if let numbered, let known = siteOfCallsite[numbered.number] {
                index = known
            } else {
                // Grouped like the leaks; suppressions are about leaks and do not apply to calls.
                let addresses = frames(of: StackRef(id: stack, isInherited: false))
                let group = group(of: addresses, snapshot: firstSnapshot)
                if let known = siteOfKey[group.key] {
                    index = known
                } else {
                    index = sites.count
                    siteOfKey[group.key] = index
                    sites.append(AllocationSite(rank: 0, name: group.name, callsite: group.callsite, calls: 0,
                                                bytes: 0, temporary: 0))
                }
                if let numbered { siteOfCallsite[numbered.number] = index }
            }
            sites[index].calls &+= count.calls
            sites[index].bytes &+= count.bytes
            sites[index].temporary &+= count.temporary
        }
        // Sites that tie on calls, bytes and name (--group-by stack) keep the order they were met.
        let ordered = sites.enumerated().sorted { lhs, rhs in
            if lhs.element.calls != rhs.element.calls { return lhs.element.calls > rhs.element.calls }
            if lhs.element.bytes != rhs.element.bytes { return lhs.element.bytes > rhs.element.bytes }
            if lhs.element.name != rhs.element.name { return lhs.element.name < rhs.element.name }
            return lhs.offset < rhs.offset
        }.map(\.element)
        return ordered.prefix(options.top).enumerated().map { index, site in
            var ranked = site
            ranked.rank = index + 1
            return ranked
        }
    }
}
