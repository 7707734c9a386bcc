import Dispatch
import LeakAnalysis
import LiveSet
import TraceFormat

// Loading a trace, the one way every command does it: open the file and read its header, join
// a fork child with its parent's trace, replay it, and say how reading ended. A whole-trace
// replay goes straight to the live set (`diff`, `--merge`); a tracked replay carries a
// `GrowthTracker` along for leak rates, per-site peaks and the moments of `growth` (`report`,
// `diff --live`, `growth`, `timeline`).

/// A trace opened, joined with its parent's trace when it is a fork child, then replayed.
struct LoadedTrace {
    let path: String
    let reader: TraceReader
    /// Joined with the parent's trace on opening; holds the live set once replayed.
    var replayer: Replayer
    /// Whether the parent's trace was replayed up to the fork.
    let parentReplayed: Bool
    /// Problems met joining the parent's trace.
    let joinWarnings: [String]
    /// How reading ended; set by the replay.
    private(set) var reading = ReadingOutcome(isComplete: false, stopReason: "reading did not finish")

    /// Opens `path`, reads its header and joins the parent's trace. Throws `TraceError` when the
    /// file cannot be read as a trace.
    init(path: String) throws {
        self.path = path
        reader = try TraceReader(path: path)
        replayer = Replayer(header: reader.header)
        let join = replayer.joinParent(of: reader.header, childPath: path)
        parentReplayed = join.joined
        joinWarnings = join.warnings
    }

    /// Opens and replays the whole trace straight into the live set (the fast path).
    static func replayedToEnd(_ path: String, progress: Bool) throws -> LoadedTrace {
        var trace = try LoadedTrace(path: path)
        let bar = trace.progressBar(enabled: progress)
        _ = trace.replayer.replay(trace.reader, progress: bar.update)
        bar.finish()
        trace.reading = ReadingOutcome(reader: trace.reader)
        return trace
    }

    /// A tracker for `replay(tracking:...)`, naming sites with `symbolizer`.
    func makeTracker(symbolizer: FrameSymbolizer, options: AnalysisOptions) -> GrowthTracker {
        GrowthTracker(reader: reader, replayer: replayer, symbolizer: symbolizer, options: options)
    }

    /// Replays the trace with `tracker` riding along, up to moment B of `window` or `limit`
    /// when given. Throws `GrowthError` when a moment of `window` is not in the trace.
    mutating func replay(tracking tracker: GrowthTracker, window: (from: GrowthMoment, to: GrowthMoment)? = nil,
                         limit: ReplayLimit? = nil, progress: Bool) throws {
        let bar = progressBar(enabled: progress)
        defer { bar.finish() }
        try replay(tracking: tracker, window: window, limit: limit, bar: bar)
    }

    /// The same, drawing on `bar`, which stays up for what follows (the caller finishes it).
    mutating func replay(tracking tracker: GrowthTracker, window: (from: GrowthMoment, to: GrowthMoment)? = nil,
                         limit: ReplayLimit? = nil, bar: ProgressBar) throws {
        let pass = try tracker.replay(&replayer, reader: reader, window: window, limit: limit, progress: bar.update)
        if pass.stoppedByLimit {
            reading = ReadingOutcome(isComplete: false, replayedUntilUs: replayer.lastTime)
        } else if pass.endState == nil {
            // Moment B ended the pass: the rest of the trace was not needed.
            reading = ReadingOutcome(isComplete: false, replayedUntilUs: tracker.now)
        } else {
            reading = ReadingOutcome(reader: reader)
        }
    }

    func progressBar(enabled: Bool) -> ProgressBar {
        ProgressBar(label: path, total: reader.fileSize, enabled: enabled)
    }

    /// What the report says about the trace.
    var facts: TraceFacts {
        TraceFacts(path: path, header: reader.header, outcome: reading, replay: replayer,
                   parentReplayed: parentReplayed)
    }

    /// The join warnings, then one for a trace that was cut or damaged: in the report's own
    /// words, or naming the trace where several traces share one output.
    func warnings(namingTrace: Bool) -> [String] {
        guard reading.isCut else { return joinWarnings }
        let stop = "trace incomplete: reading stopped at byte \(reading.stoppedAtOffset ?? 0) (\(reading.stopReason ?? "no END record"))"
        return joinWarnings + [namingTrace ? "\(path): \(stop); only the events before that point count"
                                           : "\(stop); leaks are those of the events before that point"]
    }
}

// MARK: - Several traces at once

/// One trace being loaded by `loadConcurrently`: written by its loading block, read by the
/// calling thread once `loaded` is signalled.
private final class LoadSlot: @unchecked Sendable {
    var result: Result<LoadedTrace, Error>?
    let loaded = DispatchSemaphore(value: 0)
}

/// Loads several traces, two at a time on the machine's cores (each replay is independent),
/// and runs `finish` on each (its analysis and symbolization) as soon as that trace is replayed,
/// on the calling thread in the order of `paths`: the first trace's symbolization overlaps the
/// replay of the next instead of waiting for every replay. `finish` calls never overlap, so they
/// may share one symbolizer, and its warnings come out in the same order as on one thread. A
/// trace is let go once finished.
///
/// Only the calling thread ever waits (for the trace it finishes next); the loading blocks never
/// wait for anything, so no size of the thread pool can deadlock.
func loadConcurrently<Finished>(_ paths: [String],
                                finish: (Int, LoadedTrace) throws -> Finished) throws -> [Finished] {
    let slots = paths.map { _ in LoadSlot() }
    for (path, slot) in zip(paths, slots) {
        DispatchQueue.global().async {
            slot.result = Result { try LoadedTrace.replayedToEnd(path, progress: false) }
            slot.loaded.signal()
        }
    }
    var finished: [Finished] = []
    var failure: Error?
    for (index, slot) in slots.enumerated() {
        // Every load is waited for, even after a failure: none may outlive this call.
        slot.loaded.wait()
        let result = slot.result
        slot.result = nil
        guard failure == nil else { continue }
        do {
            guard let result else { throw UsageError("a trace was not read") }
            finished.append(try finish(index, try result.get()))
        } catch {
            failure = error
        }
    }
    if let failure { throw failure }
    return finished
}
