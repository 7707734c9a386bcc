// Errors and reading outcomes shared by every stage that reads a trace.

/// A one-line, user-facing error about a trace file (names the file).
public struct TraceError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where a record sits: its thread, its time (µs since tracing began, from the last TIME record;
/// 0 if none yet), and the file offset of the chunk holding it.
public struct RecordContext: Sendable, Equatable {
    /// Thread id from the last THREAD record of the chunk; 0 before the first one.
    public var tid: UInt64
    /// Microseconds since tracing began, from the last TIME record of the chunk; 0 before the first one.
    public var time: UInt64
    /// File offset of the chunk header of the chunk holding the record.
    public var chunkOffset: UInt64

    @inlinable
    public init(tid: UInt64, time: UInt64, chunkOffset: UInt64) {
        self.tid = tid; self.time = time; self.chunkOffset = chunkOffset
    }
}

/// How reading ended.
public enum TraceEndState: Equatable, Sendable {
    /// The END record was seen.
    case complete(TraceEnd)
    /// The file ends early or is damaged at that byte offset; records before it were delivered.
    /// Also used when reading stopped at the offset the caller asked for (`stopAtOffset`).
    case cut(atOffset: UInt64, reason: String)

    /// True when the END record was seen.
    public var isComplete: Bool {
        if case .complete = self { return true }
        return false
    }
}
