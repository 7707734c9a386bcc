import LiveSet
import TraceFormat

// One pass over a trace that drives the replayer and a GrowthTracker together: the tracker sees
// every allocation and release (the replayer counts live bytes per site for it), every TIME, SAMPLE and MARK
// record, and takes the `growth` moments A and B as the pass reaches them.

/// Why a growth pass could not give what was asked.
public struct GrowthError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Thrown inside the visitor to end reading early (moment B reached, or the replay limit).
struct GrowthPassStop: Error {}

/// Feeds records to the replayer and the tracker.
struct GrowthVisitor: TraceVisitor {
    typealias Failure = GrowthPassStop
    var replayer: Replayer
    let tracker: GrowthTracker
    let stopAfterTime: UInt64
    let stopAtMark: String?
    var from: GrowthMoment?
    var to: GrowthMoment?
    /// Set when the limit (not moment B) ended the pass.
    var stoppedByLimit = false
    /// Whether the replayer counts per site yet: it starts at the first module snapshot (or the
    /// first event), so that blocks inherited at fork can be named by their call sites.
    var isCounting = false

    mutating func startCounting() {
        isCounting = true
        let tracker = self.tracker
        replayer.startSiteAccounting(SiteAccounting { stack, path in tracker.resolve(stack, path) })
    }

    @inline(__always)
    mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                             stack: UInt32, context: RecordContext) throws(GrowthPassStop) {
        if !isCounting { startCounting() }
        replayer.recordAlloc(function: function, path: path, address: address, size: size, stack: stack,
                             time: context.time)
    }

    @inline(__always)
    mutating func visitFree(address: UInt64, context: RecordContext) throws(GrowthPassStop) {
        if !isCounting { startCounting() }
        replayer.recordFree(address: address, tid: context.tid, time: context.time)
    }

    mutating func visitReallocRelease(address: UInt64, context: RecordContext) throws(GrowthPassStop) {
        if !isCounting { startCounting() }
        replayer.recordReallocRelease(address: address, tid: context.tid, time: context.time)
    }

    mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                               new: UInt64, size: UInt64, stack: UInt32,
                               context: RecordContext) throws(GrowthPassStop) {
        if !isCounting { startCounting() }
        replayer.recordRealloc(status: status, path: path, isReallocarray: isReallocarray, old: old, new: new,
                               size: size, stack: stack, tid: context.tid, time: context.time)
    }

    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) throws(GrowthPassStop) {
        switch record {
        case let .time(microseconds):
            // Every event after this record has this time: moments and limits set by time are
            // taken here, before anything of the later time is replayed.
            if microseconds > stopAfterTime {
                stoppedByLimit = true
                throw GrowthPassStop()
            }
            try takeMoments(timeAbove: microseconds)
            tracker.advance(to: microseconds, replayer: &replayer)
        case let .mark(name, source):
            if name == stopAtMark {
                stoppedByLimit = true
                throw GrowthPassStop()
            }
            tracker.mark(name: name, source: source)
            try takeMoments(mark: name)
        case .sample(let vmPages, let rssPages, _):
            tracker.sample(vmPages: vmPages, rssPages: rssPages)
        case .modules:
            replayer.applyOther(record, time: context.time)
            if !isCounting { startCounting() }
            return
        default:
            break
        }
        if !isCounting, record.isEvent { startCounting() }
        replayer.applyOther(record, time: context.time)
    }

    /// Takes A and B if they are times earlier than `time` (the next records are later).
    mutating func takeMoments(timeAbove time: UInt64) throws(GrowthPassStop) {
        if case let .time(limit)? = from, time > limit { takeFrom() }
        if case let .time(limit)? = to, time > limit { try takeTo() }
    }

    /// Takes A and B if they are the mark `name` (its first occurrence).
    mutating func takeMoments(mark name: String) throws(GrowthPassStop) {
        if case let .mark(wanted)? = from, wanted == name { takeFrom() }
        if case let .mark(wanted)? = to, wanted == name { try takeTo() }
    }

    mutating func takeFrom() {
        guard let moment = from else { return }
        if !isCounting { startCounting() }
        tracker.takeFrom(label: moment.label, replayer: &replayer)
        from = nil
    }

    /// Takes B and ends the pass: nothing after B matters to `growth`.
    mutating func takeTo() throws(GrowthPassStop) {
        guard let moment = to else { return }
        // B before A: the window is empty or reversed; say so instead of guessing.
        guard from == nil else { return }
        if !isCounting { startCounting() }
        tracker.takeTo(label: moment.label, replayer: replayer)
        to = nil
        throw GrowthPassStop()
    }
}

extension TraceRecord {
    /// Records whose replay changes memory (the mapping and brk records).
    var isEvent: Bool {
        switch self {
        case .mmap, .munmap, .mremap, .brk, .sbrk: return true
        default: return false
        }
    }
}

/// How a growth pass ended.
public struct GrowthPassOutcome: Equatable, Sendable {
    /// How reading ended (nil when moment B or the limit ended the pass first).
    public var endState: TraceEndState?
    /// True when the replay limit (`--at`) ended the pass.
    public var stoppedByLimit: Bool
}

extension GrowthTracker {
    /// Replays `reader`'s trace into `replayer` (already joined with its parent) and this
    /// tracker in one pass.
    ///
    /// - Parameters:
    ///   - window: moments A and B for `growth`; nil to follow the whole trace (rates and the
    ///     timeline only). Reading stops at B.
    ///   - limit: stop early at a time or mark, as the report's `--at`.
    /// - Throws: `GrowthError` when a mark of the window is not in the trace, or B comes before A.
    public func replay(_ replayer: inout Replayer, reader: TraceReader,
                       window: (from: GrowthMoment, to: GrowthMoment)? = nil, limit: ReplayLimit? = nil,
                       progress: ((UInt64) -> Void)? = nil) throws -> GrowthPassOutcome {
        var stopAfterTime = UInt64.max
        var stopAtMark: String?
        switch limit {
        case let .time(time)?: stopAfterTime = time
        case let .mark(name)?: stopAtMark = name
        case nil: break
        }
        // Move the replayer into the visitor so its live table stays uniquely referenced.
        var moved = Replayer(header: TraceHeader(), expectedLiveBlocks: 16)
        swap(&moved, &replayer)
        var visitor = GrowthVisitor(replayer: moved, tracker: self, stopAfterTime: stopAfterTime,
                                    stopAtMark: stopAtMark, from: window?.from, to: window?.to)
        moved = Replayer(header: TraceHeader(), expectedLiveBlocks: 16)
        if case .start? = window?.from { visitor.takeFrom() }
        var stoppedEarly = false
        do {
            if case .start? = window?.to { try visitor.takeTo() }
            try reader.visitRecords(&visitor, stopAtOffset: nil, progress: progress)
        } catch {
            stoppedEarly = true
        }
        if !visitor.isCounting { visitor.startCounting() }
        if !stoppedEarly || visitor.stoppedByLimit {
            // The trace (or the limit) ended first: A and B that are `end`, or times after the
            // last record, are taken now.
            if let moment = visitor.from, moment == .end || isTime(moment) { visitor.takeFrom() }
            if let moment = visitor.to, moment == .end || isTime(moment) { try? visitor.takeTo() }
        }
        swap(&replayer, &visitor.replayer)
        finish(replayer.stopSiteAccounting())
        if let window {
            if let missing = visitor.from {
                throw GrowthError(missingMessage(missing, other: nil, reader: reader))
            }
            if let missing = visitor.to {
                throw GrowthError(missingMessage(missing, other: window.from, reader: reader))
            }
        }
        let endState = stoppedEarly ? nil : reader.endState
        return GrowthPassOutcome(endState: endState, stoppedByLimit: visitor.stoppedByLimit)
    }

    private func isTime(_ moment: GrowthMoment) -> Bool {
        if case .time = moment { return true }
        return false
    }

    private func missingMessage(_ moment: GrowthMoment, other: GrowthMoment?, reader: TraceReader) -> String {
        if case let .mark(name) = moment, !marks.contains(where: { $0.name == name }) {
            let known = Array(Set(marks.map(\.name))).sorted()
            let list = known.isEmpty ? "the trace has no marks" : "marks in the trace: " + known.prefix(20).joined(separator: ", ")
            return "\(reader.path): no mark named '\(name)' (\(list))"
        }
        if let other {
            return "\(reader.path): \(moment.label) comes before \(other.label): --to must be later than --from"
        }
        return "\(reader.path): \(moment.label) was not reached"
    }

    /// The timeline of the pass (up to B, or the end).
    public func timeline(of replayer: Replayer) -> Timeline {
        timeline(mappedBytes: replayer.mappings.totalBytes)
    }
}
