import TraceFormat

// Questions asked of a replay once it has run: a block's frames, the module snapshot of a time.

extension Replayer {
    /// Frames of a block's or mapping's stack, innermost first, from the right table.
    public func frames(of reference: StackRef, in stacks: StackLookup, limit: Int = .max) -> [UInt64] {
        reference.isInherited ? inheritedStacks.frames(reference.id, limit: limit)
                              : stacks.frames(reference.id, limit: limit)
    }

    /// Index of the newest MODULES snapshot taken at or before `time` (0 if none was yet).
    public func moduleSnapshotIndex(at time: UInt64) -> Int {
        var low = 0, high = moduleSnapshotTimes.count
        while low < high {
            let middle = (low + high) / 2
            if moduleSnapshotTimes[middle] <= time { low = middle + 1 } else { high = middle }
        }
        return max(0, low - 1)
    }
}
