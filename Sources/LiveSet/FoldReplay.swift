import TraceFormat

// FOLD records (docs/trace-format.md): blocks the writer counted instead of writing. They
// change no live block; they add allocation calls and, through their peak, bound the peak of
// the live heap.

extension Replayer {
    /// Applies a FOLD record: its blocks' calls, bytes and temporary allocations, and the peak
    /// bounds. Since the previous FOLD record the written events' live bytes stayed between
    /// `foldSpanLow` and `foldSpanHigh`, and the folded blocks added at most `peakBytes` at any
    /// point and exactly `peakBytes` at one: the heap then held at least low + peak bytes, and
    /// never more than high + peak bytes.
    mutating func applyFold(_ summary: FoldSummary) {
        counters.foldRecords += 1
        for entry in summary.entries {
            counters.foldedBlocks &+= entry.blocks
            counters.foldedByRealloc &+= entry.releasedByRealloc
            if entry.function == .realloc || entry.function == .reallocarray { counters.foldedReallocs &+= entry.blocks }
        }
        if !allocationCallsCountedByReader { allocationCalls.folded(summary) }
        if summary.lowestHeapAddress != 0 && summary.lowestHeapAddress < lowestHeapStart {
            lowestHeapStart = summary.lowestHeapAddress
        }
        let reached = foldSpanLow &+ summary.peakBytes
        if reached > peakLiveBytes {
            peakLiveBytes = reached
            peakLiveTime = summary.lastMicroseconds
        }
        let bound = foldSpanHigh &+ summary.peakBytes
        peakLiveBytesUpperBound = max(peakLiveBytesUpperBound ?? 0, bound, peakLiveBytes)
        foldSpanLow = live.totalBytes
        foldSpanHigh = live.totalBytes
    }

    /// The upper bound, at least the proven peak (a trace can end after the last FOLD record
    /// with a higher written peak).
    public var peakLiveBytesBound: UInt64? { peakLiveBytesUpperBound.map { max($0, peakLiveBytes) } }
}
