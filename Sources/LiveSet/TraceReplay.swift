import TraceFormat

// Driving a Replayer from a trace file: the reader's visitor fast path (specialised here, in the
// module that owns the replayer, so ALLOC and FREE go straight into the live table), the `--at`
// limit, and joining a fork child with the part of its parent's trace before the fork.

extension StackTable: StackLookup {
    public func node(_ id: UInt32) -> StackNode? {
        isDefined(id) ? StackNode(ip: ip(id), parent: parent(id)) : nil
    }
}

/// Where to stop replaying before the end of the trace.
public enum ReplayLimit: Equatable, Sendable {
    /// Stop before the first record whose time (µs since tracing began) is past this.
    case time(UInt64)
    /// Stop at the first MARK record with this name.
    case mark(String)
}

/// How a replay of a trace ended.
public struct ReplayOutcome: Equatable, Sendable {
    /// How reading ended; nil when the replay limit stopped it first.
    public var endState: TraceEndState?
    /// True when `ReplayLimit` stopped the replay (the time replayed up to is `Replayer.lastTime`).
    public var stoppedByLimit: Bool
}

/// Thrown inside the visitor to end reading at the replay limit.
public struct ReplayLimitReached: Error {}

/// Called with every record other than ALLOC, FREE, REALLOC_RELEASE and REALLOC (TIME, MARK,
/// SAMPLE, MODULES, ...) before the replayer applies it, with the replayer itself: how the
/// growth analysis follows time without a call per allocation. Throwing ends the replay
/// (reported as stopped by the limit).
public typealias ReplayHook = (TraceRecord, RecordContext, inout Replayer) throws -> Void

/// Like `ReplayHook`, for a pass that nothing stops: the replay then runs on its fast path.
/// It must not keep a copy of the replayer's live table (the pass changes it in place), and it
/// is not called with STACK records (nothing the replay holds changes with them).
public typealias ReplayWatcher = (TraceRecord, RecordContext, inout Replayer) -> Void

/// Feeds a trace's records to a Replayer.
struct ReplayVisitor: TraceVisitor {
    typealias Failure = ReplayLimitReached
    var replayer: Replayer
    let stopAfterTime: UInt64
    let stopAtMark: String?
    let hook: ReplayHook?

    @inline(__always)
    func checkLimit(_ context: RecordContext) throws(ReplayLimitReached) {
        if context.time > stopAfterTime { throw ReplayLimitReached() }
    }

    @inline(__always)
    mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                             stack: UInt32, context: RecordContext) throws(ReplayLimitReached) {
        try checkLimit(context)
        replayer.recordAlloc(function: function, path: path, address: address, size: size, stack: stack,
                             time: context.time, tid: context.tid)
    }

    @inline(__always)
    mutating func visitFree(address: UInt64, context: RecordContext) throws(ReplayLimitReached) {
        try checkLimit(context)
        replayer.recordFree(address: address, tid: context.tid, time: context.time)
    }

    mutating func visitReallocRelease(address: UInt64, context: RecordContext) throws(ReplayLimitReached) {
        try checkLimit(context)
        replayer.recordReallocRelease(address: address, tid: context.tid, time: context.time)
    }

    mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                               new: UInt64, size: UInt64, stack: UInt32,
                               context: RecordContext) throws(ReplayLimitReached) {
        try checkLimit(context)
        replayer.recordRealloc(status: status, path: path, isReallocarray: isReallocarray, old: old, new: new,
                               size: size, stack: stack, tid: context.tid, time: context.time)
    }

    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) throws(ReplayLimitReached) {
        try checkLimit(context)
        if let stopAtMark, case let .mark(name, _) = record, name == stopAtMark { throw ReplayLimitReached() }
        if let hook {
            do { try hook(record, context, &replayer) } catch { throw ReplayLimitReached() }
        }
        replayer.applyOther(record, time: context.time)
    }
}

/// Feeds a whole trace to a Replayer: no limit and no hook, so nothing can stop the pass and
/// the visitor cannot throw. With `Failure == Never` the compiler specialises the delivery loop
/// for this type with the allocation methods inlined into it; a visitor that can throw a typed
/// error is called through its witness table for every record instead (about a third of the
/// replay's instructions on an allocation-heavy trace).
///
/// The reader decodes ahead (`visitRecordsDecodingAhead`: on the second core when the trace is
/// big enough), counts the allocation calls as it decodes, and names each allocation event's
/// address some records before delivering it: the live-table slot where the event's insert or
/// remove will begin is prefetched then, so the cache miss that a table of millions
/// of blocks takes on nearly every event (about 80% of the replay's time on CPython's trace,
/// spent waiting on the probe's first load) overlaps the work of the events in between.
struct WholeTraceVisitor: TraceVisitor {
    var replayer: Replayer
    let watcher: ReplayWatcher?

    init(replayer: Replayer, watcher: ReplayWatcher?) {
        self.replayer = replayer
        self.watcher = watcher
    }

    @inline(__always)
    func willVisit(address: UInt64) { replayer.live.prefetch(address) }

    @inline(__always)
    mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                             stack: UInt32, context: RecordContext) {
        replayer.recordAlloc(function: function, path: path, address: address, size: size, stack: stack,
                             time: context.time, tid: context.tid)
    }

    @inline(__always)
    mutating func visitFree(address: UInt64, context: RecordContext) {
        replayer.recordFree(address: address, tid: context.tid, time: context.time)
    }

    @inline(__always)
    mutating func visitReallocRelease(address: UInt64, context: RecordContext) {
        replayer.recordReallocRelease(address: address, tid: context.tid, time: context.time)
    }

    @inline(__always)
    mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                               new: UInt64, size: UInt64, stack: UInt32, context: RecordContext) {
        replayer.recordRealloc(status: status, path: path, isReallocarray: isReallocarray, old: old, new: new,
                               size: size, stack: stack, tid: context.tid, time: context.time)
    }

    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) {
        if let watcher { watcher(record, context, &replayer) }
        replayer.applyOther(record, time: context.time)
    }

    /// A STACK record changes nothing the replayer holds (the reader's stack table has the node
    /// already), so it does not reach the watcher: on recurse's trace, two records in three are
    /// STACK records.
    @inline(__always)
    mutating func visitStack(id: UInt32, parent: UInt32, ip: UInt64, context: RecordContext) {}
}

extension Replayer {
    /// Replays `reader`'s trace from its first record.
    /// - Parameters:
    ///   - stopAtOffset: stop before the chunk at or after this offset (a parent's fork point).
    ///   - limit: stop early at a time or a mark (`--at`).
    ///   - progress: called now and then with the bytes consumed.
    ///   - hook: sees every record but the four allocation records, before it is applied.
    ///   - watcher: the same for a pass that nothing stops (no limit, no hook): the fast path.
    ///   - decodingThread: where the fast path decodes (`TraceReader.visitRecordsDecodingAhead`).
    public mutating func replay(_ reader: TraceReader, stopAtOffset: UInt64? = nil, limit: ReplayLimit? = nil,
                                progress: ((UInt64) -> Void)? = nil, hook: ReplayHook? = nil,
                                watcher: ReplayWatcher? = nil,
                                decodingThread: DecodingThread = .byDefault) -> ReplayOutcome {
        var stopAfterTime = UInt64.max
        var stopAtMark: String?
        switch limit {
        case let .time(time)?: stopAfterTime = time
        case let .mark(name)?: stopAtMark = name
        case nil: break
        }
        // Move the state into the visitor (leaving an empty replayer behind) so that the live
        // table's storage stays uniquely referenced and is never copied during the pass.
        var moved = Replayer(header: TraceHeader(), expectedLiveBlocks: 16)
        swap(&self, &moved)
        if limit == nil, hook == nil {
            var visitor = WholeTraceVisitor(replayer: moved, watcher: watcher)
            moved = Replayer(header: TraceHeader(), expectedLiveBlocks: 16)
            // Only now is the visitor's replayer the one reference to its live table.
            visitor.replayer.beginExclusivePass()
            visitor.replayer.allocationCallsCountedByReader = true
            reader.visitRecordsDecodingAhead(&visitor, stopAtOffset: stopAtOffset, progress: progress,
                                             counter: visitor.replayer.allocationCalls, thread: decodingThread)
            visitor.replayer.allocationCallsCountedByReader = false
            visitor.replayer.endExclusivePass()
            visitor.replayer.releaseEmptyTablePages()
            swap(&self, &visitor.replayer)
            return ReplayOutcome(endState: reader.endState, stoppedByLimit: false)
        }
        var visitor = ReplayVisitor(replayer: moved, stopAfterTime: stopAfterTime, stopAtMark: stopAtMark, hook: hook)
        moved = Replayer(header: TraceHeader(), expectedLiveBlocks: 16)
        var stoppedByLimit = false
        do {
            try reader.visitRecords(&visitor, stopAtOffset: stopAtOffset, progress: progress)
        } catch {
            stoppedByLimit = true
        }
        visitor.replayer.releaseEmptyTablePages()
        swap(&self, &visitor.replayer)
        return ReplayOutcome(endState: stoppedByLimit ? nil : reader.endState, stoppedByLimit: stoppedByLimit)
    }

    /// For a fork child's trace: replays the parent's trace up to the fork (and its own parent
    /// before it, and so on) and starts this replay from the blocks and mappings live there.
    /// Returns one line per problem (a parent trace that cannot be read, a damaged parent);
    /// the child's own replay goes on regardless. Returns whether a parent was joined.
    public mutating func joinParent(of header: TraceHeader, childPath: String,
                           maximumDepth: Int = 16) -> (joined: Bool, warnings: [String]) {
        var warnings: [String] = []
        var visited: Set<String> = [childPath]
        let joined = joinParent(of: header, visited: &visited, depthLeft: maximumDepth, warnings: &warnings)
        return (joined, warnings)
    }

    private mutating func joinParent(of header: TraceHeader, visited: inout Set<String>, depthLeft: Int,
                            warnings: inout [String]) -> Bool {
        guard let parentPath = header.parentTrace, !parentPath.isEmpty else { return false }
        guard let forkOffset = header.parentForkOffset else {
            warnings.append("parent trace \(parentPath) is named without a fork offset: inherited blocks are not known")
            return false
        }
        guard depthLeft > 0, !visited.contains(parentPath) else {
            warnings.append("parent trace \(parentPath) leads to a loop or too long a chain of forks: not followed")
            return false
        }
        visited.insert(parentPath)
        let parentReader: TraceReader
        do {
            parentReader = try TraceReader(path: parentPath)
        } catch {
            warnings.append("parent trace cannot be read (\(error)): blocks inherited at fork are not known")
            return false
        }
        var parent = Replayer(header: parentReader.header)
        _ = parent.joinParent(of: parentReader.header, visited: &visited, depthLeft: depthLeft - 1,
                              warnings: &warnings)
        let outcome = parent.replay(parentReader, stopAtOffset: forkOffset)
        if case let .cut(offset, reason)? = outcome.endState, offset < forkOffset {
            warnings.append("parent trace \(parentPath) stops at offset \(offset) before the fork point \(forkOffset) (\(reason)): inherited blocks may be missing")
        }
        inherit(from: parent, parentStacks: parentReader.stacks)
        return true
    }
}
