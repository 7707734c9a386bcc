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
    mutating func allocationSites() -> [AllocationSite] {
        // Sites in the order their groups are first met (stacks in id order: a group's name and
        // call site are its first stack's). Suppressions are about leaks and do not apply to calls.
        var sites: [(callsite: Int, calls: UInt64, bytes: UInt64, temporary: UInt64)] = []
        // By group number: the index in `sites` + 1 (0: not met yet).
        var siteOfGroup: [Int] = []
        // The first module snapshot: a module loaded later is found in the snapshots after it.
        let firstSnapshot = snapshot(at: 0)
        replay.allocationCalls.forEach { stack, count in
            let callsite = namedCallsite(of: StackRef(id: stack, isInherited: false), snapshot: firstSnapshot)
            let group = callsites[callsite].group
            if group >= siteOfGroup.count {
                siteOfGroup.append(contentsOf: repeatElement(0, count: max(group + 1, siteOfGroup.count * 2) - siteOfGroup.count))
            }
            if siteOfGroup[group] == 0 {
                sites.append((callsite, 0, 0, 0))
                siteOfGroup[group] = sites.count
            }
            let index = siteOfGroup[group] - 1
            sites[index].calls &+= count.calls
            sites[index].bytes &+= count.bytes
            sites[index].temporary &+= count.temporary
        }
        // Sites that tie on calls, bytes and name (--group-by stack) keep the order they were met.
        let ordered = Self.sortedIndices(
            count: sites.count,
            before: { lhs, rhs in
                if sites[lhs].calls != sites[rhs].calls { return sites[lhs].calls > sites[rhs].calls }
                if sites[lhs].bytes != sites[rhs].bytes { return sites[lhs].bytes > sites[rhs].bytes }
                return nil
            },
            name: { name(ofCallsite: sites[$0].callsite) },
            after: { $0 < $1 })
        return ordered.prefix(options.top).enumerated().map { rank, index in
            let site = sites[index]
            return AllocationSite(rank: rank + 1, name: name(ofCallsite: site.callsite),
                                  callsite: callsites[site.callsite].callsite,
                                  calls: site.calls, bytes: site.bytes, temporary: site.temporary)
        }
    }
}
