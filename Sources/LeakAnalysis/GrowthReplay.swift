import LiveSet
import TraceFormat

// One pass over a trace that drives the replayer and a GrowthTracker together. The replayer
// counts live bytes per site itself (`SiteAccounting`, on its own fast path); the tracker sees
// every other record through the replay hook: TIME closes time buckets and takes moments set by
// time, MARK takes moments set by mark, SAMPLE feeds the timeline.

/// Why a growth pass could not give what was asked.
public struct GrowthError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Thrown by the hook to end reading at moment B.
struct GrowthPassStop: Error {}

/// The state of one pass: which moments are still to take.
final class GrowthPass {
    let tracker: GrowthTracker
    /// Moments not taken yet (nil once taken, or when not asked for).
    var from: GrowthMoment?
    var to: GrowthMoment?
    /// Set when moment B ended the pass.
    var reachedTo = false
    /// Whether the replayer counts per site yet: it starts at the first module snapshot (or the
    /// first memory event), so that blocks inherited at fork can be named by their call sites.
    var isCounting = false

    init(tracker: GrowthTracker, window: (from: GrowthMoment, to: GrowthMoment)?) {
        self.tracker = tracker
        from = window?.from
        to = window?.to
    }

    func startCounting(_ replayer: inout Replayer) {
        guard !isCounting else { return }
        isCounting = true
        let tracker = self.tracker
        replayer.startSiteAccounting(SiteAccounting { stack, path in tracker.resolve(stack, path) })
    }

    /// The replay hook: every record but ALLOC, FREE, REALLOC_RELEASE and REALLOC.
    func see(_ record: TraceRecord, _ context: RecordContext, _ replayer: inout Replayer) throws {
        switch record {
        case let .time(microseconds):
            // Every event after this record has this time: moments set by time are taken here,
            // before anything of the later time is replayed.
            if case let .time(limit)? = from, microseconds > limit { takeFrom(&replayer) }
            if case let .time(limit)? = to, microseconds > limit { try takeTo(&replayer) }
            tracker.advance(to: microseconds, replayer: &replayer)
        case let .mark(name, source):
            tracker.mark(name: name, source: source)
            if case let .mark(wanted)? = from, wanted == name { takeFrom(&replayer) }
            if case let .mark(wanted)? = to, wanted == name { try takeTo(&replayer) }
        case .sample(let vmPages, let rssPages, _):
            tracker.sample(vmPages: vmPages, rssPages: rssPages)
        case .modules, .mmap, .munmap, .mremap, .brk, .sbrk:
            // The module snapshot is applied by the reader before the record arrives.
            try begin(&replayer)
        default:
            break
        }
    }

    /// Starts counting once the first module snapshot is known, and takes moments that are
    /// the start (only inherited blocks are live then; naming their sites needs the modules).
    func begin(_ replayer: inout Replayer) throws {
        guard !isCounting else { return }
        startCounting(&replayer)
        if case .start? = from { takeFrom(&replayer) }
        if case .start? = to { try takeTo(&replayer) }
    }

    func takeFrom(_ replayer: inout Replayer) {
        guard let moment = from else { return }
        startCounting(&replayer)
        tracker.takeFrom(label: moment.label, replayer: &replayer)
        from = nil
    }

    /// Takes B and ends the pass: nothing after B matters to `growth`.
    func takeTo(_ replayer: inout Replayer) throws {
        guard let moment = to else { return }
        // B before A: the window would be reversed; reported after the pass.
        guard from == nil else { return }
        startCounting(&replayer)
        tracker.takeTo(label: moment.label, replayer: replayer)
        to = nil
        reachedTo = true
        throw GrowthPassStop()
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
        let pass = GrowthPass(tracker: self, window: window)
        let outcome: ReplayOutcome
        if window == nil && limit == nil {
            // Nothing can end this pass early (only moment B throws): the replay's fast path.
            outcome = replayer.replay(reader, progress: progress, watcher: { record, context, replayer in
                try? pass.see(record, context, &replayer)
            })
        } else {
            outcome = replayer.replay(reader, limit: limit, progress: progress) { record, context, replayer in
                try pass.see(record, context, &replayer)
            }
        }
        // B met before the end of the trace ended the pass; B taken below, once the trace (or
        // the limit) has ended, did not.
        let endedAtTo = pass.reachedTo
        if !endedAtTo { try? pass.begin(&replayer) }
        let stoppedByLimit = outcome.stoppedByLimit && !endedAtTo
        if !endedAtTo {
            // The trace (or the limit) ended first: A and B that are `end`, or times after the
            // last record, are taken now.
            if let moment = pass.from, moment == .end || Self.isTime(moment) { pass.takeFrom(&replayer) }
            if let moment = pass.to, moment == .end || Self.isTime(moment) { try? pass.takeTo(&replayer) }
        }
        finish(replayer.stopSiteAccounting())
        if let window {
            if let missing = pass.from {
                throw GrowthError(missingMessage(missing, other: nil, reader: reader))
            }
            if let missing = pass.to {
                throw GrowthError(missingMessage(missing, other: window.from, reader: reader))
            }
        }
        let endState = endedAtTo || stoppedByLimit ? nil : outcome.endState
        return GrowthPassOutcome(endState: endState, stoppedByLimit: stoppedByLimit)
    }

    private static func isTime(_ moment: GrowthMoment) -> Bool {
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
