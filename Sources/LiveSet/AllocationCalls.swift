import TraceFormat

// Allocation calls, bytes and temporary allocations per stack, the same from a trace written in
// full and from one whose short-lived blocks were folded (docs/trace-format.md, FOLD): the
// replay counts every written allocation and adds the FOLD records' counts.
//
// Temporary allocations follow heaptrack's idea (a block freed right after it was allocated,
// with no allocation in between) per thread: a block released (free, or the old block of a
// realloc) by the thread that allocated it, with no other allocation or release by that thread
// in between. heaptrack's interpreter applies the rule to its one global event stream
// (`lastAllocationPtr` in src/analyze/accumulatedtracedata.cpp is reset by every free of any
// thread), so there another thread's allocation in between makes a block not temporary; per
// thread the count does not depend on how threads interleave. Single-threaded programs get the
// same count either way. In a folded trace the writer counts them (it sees every event) and
// the replay takes its counts; otherwise the replay counts them from the events.

/// Calls, bytes and temporary allocations of one stack.
public struct AllocationCount: Equatable, Sendable {
    public var calls: UInt64 = 0
    public var bytes: UInt64 = 0
    public var temporary: UInt64 = 0
    public init(calls: UInt64 = 0, bytes: UInt64 = 0, temporary: UInt64 = 0) {
        self.calls = calls; self.bytes = bytes; self.temporary = temporary
    }
}

/// Allocation calls per stack id of the trace (blocks inherited at fork are not the child's
/// calls and are not counted).
///
/// A reference type on raw storage: it is updated for every allocation, and an array in the
/// replayer would cost a uniqueness and a bounds check per event.
public final class AllocationCalls: AllocationEventCounter {
    @exclusivity(unchecked) private var storage: UnsafeMutablePointer<AllocationCount>
    @exclusivity(unchecked) private var capacity: Int
    /// One past the highest stack id counted.
    @exclusivity(unchecked) public private(set) var stackCount = 0
    /// True when temporary allocations are counted from the events (not given by FOLD records).
    public let countsTemporariesFromEvents: Bool

    /// The latest allocation of the thread seen last (most events come from one thread in a row),
    /// and of every other thread.
    private var lastThread: UInt64 = .max
    private var lastOfThread = LatestAllocation()
    private var otherThreads: [UInt64: LatestAllocation] = [:]
    private struct LatestAllocation {
        var address: UInt64 = 0
        var stack: UInt32 = 0
        var valid = false
    }

    public init(countsTemporariesFromEvents: Bool) {
        self.countsTemporariesFromEvents = countsTemporariesFromEvents
        capacity = 1024
        storage = ZeroedArray.allocate(AllocationCount.self, capacity: capacity)
    }

    deinit { ZeroedArray.deallocate(storage, capacity: capacity) }

    /// The counts of `stack` (zero when it made no allocation).
    public subscript(stack: UInt32) -> AllocationCount {
        Int(stack) < stackCount ? storage[Int(stack)] : AllocationCount()
    }

    /// Every stack with a call or a temporary allocation, in stack id order.
    public func forEach(_ body: (UInt32, AllocationCount) -> Void) {
        for index in 0..<stackCount where storage[index].calls > 0 || storage[index].temporary > 0 {
            body(UInt32(index), storage[index])
        }
    }

    /// The totals over all stacks.
    public var total: AllocationCount {
        var sum = AllocationCount()
        forEach { _, count in
            sum.calls &+= count.calls; sum.bytes &+= count.bytes; sum.temporary &+= count.temporary
        }
        return sum
    }

    // MARK: Events (called by the replayer)

    @inline(__always)
    func allocated(stack: UInt32, size: UInt64, address: UInt64, tid: UInt64) {
        let count = slot(stack)
        count.pointee.calls &+= 1
        count.pointee.bytes &+= size
        if countsTemporariesFromEvents { setLatest(tid: tid, LatestAllocation(address: address, stack: stack, valid: true)) }
    }

    @inline(__always)
    func released(address: UInt64, tid: UInt64) {
        guard countsTemporariesFromEvents else { return }
        let latest = tid == lastThread ? lastOfThread : (otherThreads[tid] ?? LatestAllocation())
        if latest.valid && latest.address == address { slot(latest.stack).pointee.temporary &+= 1 }
        setLatest(tid: tid, LatestAllocation())
    }

    /// A REALLOC record (its old block was released by the REALLOC_RELEASE before it): a call
    /// when it made a new block; otherwise (it failed, or freed the old block) no allocation
    /// of this thread is the latest any more.
    @inline(__always)
    func reallocated(status: ReallocStatus, new: UInt64, size: UInt64, stack: UInt32, tid: UInt64) {
        if status == .movedOrResized && new != 0 {
            allocated(stack: stack, size: size, address: new, tid: tid)
        } else if countsTemporariesFromEvents {
            setLatest(tid: tid, LatestAllocation())
        }
    }

    /// A batch of a reader that decodes ahead (on its decoding thread).
    public func count(_ events: AllocationEvents) {
        events.forEach(allocated: { stack, size, address, tid in allocated(stack: stack, size: size, address: address, tid: tid) },
                       released: { address, tid in released(address: address, tid: tid) },
                       reallocated: { status, new, size, stack, tid in
                           reallocated(status: status, new: new, size: size, stack: stack, tid: tid)
                       },
                       folded: { folded($0) })
    }

    /// A FOLD record's entries.
    func folded(_ fold: FoldSummary) {
        for entry in fold.entries {
            let count = slot(entry.stack)
            count.pointee.calls &+= entry.blocks
            count.pointee.bytes &+= entry.bytes
            if !countsTemporariesFromEvents { count.pointee.temporary &+= entry.temporary }
        }
    }

    @inline(__always)
    private func setLatest(tid: UInt64, _ latest: LatestAllocation) {
        if tid == lastThread {
            lastOfThread = latest
            return
        }
        if lastThread != .max { otherThreads[lastThread] = lastOfThread }
        lastThread = tid
        lastOfThread = latest
    }

    @inline(__always)
    private func slot(_ stack: UInt32) -> UnsafeMutablePointer<AllocationCount> {
        let index = Int(stack)
        if index >= stackCount {
            if index >= capacity { grow(to: index + 1) }
            stackCount = index + 1
        }
        return storage + index
    }

    @inline(never)
    private func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        storage = ZeroedArray.grow(storage, from: capacity, to: newCapacity)
        capacity = newCapacity
    }
}
