// Opening a trace and streaming its records. Reading never throws for damage inside the trace:
// it stops at the last good record and says where and why in `endState`.

/// Reads a leaktrace trace file (docs/trace-format.md, version 1).
///
/// Records are streamed, never collected: memory follows the largest chunk, the stack trie and
/// the module snapshots, not the number of records. Two ways to read:
/// - `forEachRecord` calls a closure with each record as a `TraceRecord` value;
/// - `visitRecords` calls a `TraceVisitor`'s methods, specialised for the visitor type; it is the
///   fast path for ALLOC/FREE-heavy consumers (tens of millions of records a second);
/// - `visitRecordsDecodingAhead` does the same with the decoding on a second thread
///   (DecodingAhead.swift), for a visitor that cannot stop the pass.
///
/// Each pass starts from the first chunk and rebuilds `stacks` and `moduleMaps`.
public final class TraceReader {
    /// The path the reader was opened with (the name used in messages).
    public let path: String
    /// The decoded file header.
    public let header: TraceHeader
    /// Bytes in the file when it was opened; reading never goes past them.
    public let fileSize: UInt64
    /// Stack trie built while reading (filled as STACK records pass).
    public let stacks: StackTable
    /// Module snapshots seen while reading, in order. The index of the snapshot in force at a
    /// record is `moduleMaps.count - 1` when the record is delivered.
    public internal(set) var moduleMaps = ModuleMapHistory()
    /// How the last pass ended; nil before the first pass ends (or when the caller's closure or
    /// visitor threw).
    public internal(set) var endState: TraceEndState?
    /// Set when the trace ends, without END, right after an EXEC record: the process replaced
    /// its image (the writer cannot write END before an exec that may still fail), so the
    /// trace is whole rather than cut. The path the process executed.
    public internal(set) var endedByExec: String?
    /// An EXEC record that was the last record of its chunk, and where the next chunk would start.
    var trailingExec: (path: String, nextChunkOffset: UInt64)?
    /// Chunks whose records were (at least partly) delivered in the last pass.
    public internal(set) var chunksRead = 0

    let chunkReader: ChunkReader

    /// Opens and validates the file header. Throws `TraceError` for: missing file, directory, not
    /// a regular file (FIFO, device), empty file, not a leaktrace file (magic), newer format
    /// version, damaged header.
    public convenience init(path: String) throws {
        let source: FileByteSource
        do {
            source = try FileByteSource(path: path)
        } catch {
            throw TraceError("\(path): \(error.description)")
        }
        try self.init(source: source, name: path)
    }

    /// Reads a trace held in memory; `name` stands for the path in messages.
    public convenience init(bytes: [UInt8], name: String) throws {
        try self.init(source: MemoryByteSource(bytes), name: name)
    }

    init(source: ByteSource, name: String) throws {
        path = name
        fileSize = source.size
        var prefix = [UInt8](repeating: 0, count: Int(min(fileSize, UInt64(TraceFormatLimits.fixedHeaderSize))))
        if case .failure(let failure) = prefix.withUnsafeMutableBytes({ source.read(into: $0, at: 0) }) {
            throw TraceError("\(name): \(failure.description)")
        }
        let fixed: FixedHeader
        switch FixedHeader.parse(prefix, fileSize: fileSize) {
        case .success(let value): fixed = value
        case .failure(let problem): throw TraceError("\(name): \(problem.text)")
        }
        var fields = [UInt8](repeating: 0, count: fixed.fieldsSize)
        switch fields.withUnsafeMutableBytes({ source.read(into: $0, at: UInt64(TraceFormatLimits.fixedHeaderSize)) }) {
        case .failure(let failure): throw TraceError("\(name): \(failure.description)")
        case .success(let count) where count < fixed.fieldsSize:
            throw TraceError("\(name): damaged header (cut short while reading)")
        case .success: break
        }
        switch TraceHeader.parse(fields: fields, version: fixed.version) {
        case .success(let value): header = value
        case .failure(let problem): throw TraceError("\(name): \(problem.text)")
        }
        stacks = StackTable()
        chunkReader = ChunkReader(source: source,
                                  firstChunkOffset: UInt64(TraceFormatLimits.fixedHeaderSize + fixed.fieldsSize))
    }

    /// File offset of the first chunk (the end of the header).
    public var firstChunkOffset: UInt64 { chunkReader.firstChunkOffset }

    // MARK: - Reading

    /// Streams every record in file order. Damage is not thrown: reading stops at the last good
    /// record and `endState` says where and why.
    /// - Parameters:
    ///   - stopAtOffset: stop before the chunk that starts at or after this offset (used to join a
    ///     fork child with its parent); `endState` is then `.cut` at that chunk.
    ///   - progress: called after each chunk with the bytes consumed so far.
    public func forEachRecord(stopAtOffset: UInt64? = nil, progress: ((UInt64) -> Void)? = nil,
                              _ body: (TraceRecord, RecordContext) throws -> Void) rethrows {
        try withoutActuallyEscaping(body) { escapable in
            var visitor = ClosureVisitor(escapable)
            try visitRecords(&visitor, stopAtOffset: stopAtOffset, progress: progress)
        }
    }

    /// Streams every record in file order to `visitor`: the fast path. ALLOC, FREE,
    /// REALLOC_RELEASE and REALLOC reach their own methods; every other record reaches
    /// `visitRecord`. Damage and `stopAtOffset`/`progress` work as in `forEachRecord`.
    @inlinable
    public func visitRecords<V: TraceVisitor>(_ visitor: inout V, stopAtOffset: UInt64? = nil,
                                              progress: ((UInt64) -> Void)? = nil) throws(V.Failure) {
        beginPass()
        while true {
            switch nextChunk(stopAtOffset: stopAtOffset) {
            case .finished(let state):
                finishPass(state)
                return
            case .chunk(let chunk):
                var decoding = RecordDecoderState(chunk: chunk, definedStacks: UInt64(stacks.count),
                                                  version: header.version)
                var decoded: ChunkOutcome?
                repeat {
                    decoded = try Self.decodeRecords(&decoding, tables: self, into: &visitor)
                } while decoded == nil
                if finishChunk(chunk, decoded!, trailingExec: decoding.trailingExec, progress: progress) { return }
            }
        }
    }

    // MARK: - Pass bookkeeping (out of line: once per chunk)

    @usableFromInline
    func beginPass() {
        endState = nil
        endedByExec = nil
        trailingExec = nil
        chunksRead = 0
        stacks.removeAll()
        moduleMaps.removeAll()
        chunkReader.rewind()
    }

    @usableFromInline
    func finishPass(_ state: TraceEndState) {
        endState = state
        if case let .cut(offset, _) = state, let exec = trailingExec, exec.nextChunkOffset == offset,
           offset == fileSize {
            endedByExec = exec.path
        }
    }

    @usableFromInline
    func nextChunk(stopAtOffset: UInt64?) -> ChunkStep {
        let step = chunkReader.next(stopAtOffset: stopAtOffset)
        if case .chunk = step { noteChunkDelivered() }
        return step
    }

    @usableFromInline
    func noteChunkDelivered() { chunksRead += 1 }

    /// After the last record of `chunk`: notes an EXEC that was that record, and ends the pass
    /// when reading stops here (true); otherwise reports the progress.
    @usableFromInline
    func finishChunk(_ chunk: LoadedChunk, _ outcome: ChunkOutcome, trailingExec exec: String?,
                     progress: ((UInt64) -> Void)?) -> Bool {
        if let exec { trailingExec = (exec, chunk.nextOffset) }
        if let state = endOfChunk(chunk, outcome) {
            finishPass(state)
            return true
        }
        progress?(chunk.nextOffset)
        return false
    }

    /// The end state when reading stops after `chunk`, or nil to go on.
    @usableFromInline
    func endOfChunk(_ chunk: LoadedChunk, _ outcome: ChunkOutcome) -> TraceEndState? {
        switch outcome {
        case .ended(let end):
            return .complete(end)
        case .finished:
            guard let damage = chunk.damage else { return nil }
            return .cut(atOffset: fileOffset(of: chunk.recordsCount, in: chunk), reason: damage)
        case .damaged(let recordOffset, let damage):
            let offset = fileOffset(of: recordOffset, in: chunk)
            // In a chunk that is only partly there, a record cut at the end is the cut itself.
            if case .truncated = damage, let shortfall = chunk.damage {
                return .cut(atOffset: offset, reason: shortfall)
            }
            let position = chunk.recordsFileOffset == nil ? " (byte \(recordOffset) of its decompressed records)" : ""
            let reason = "chunk at offset \(chunk.offset): \(damage.description) at offset \(offset)\(position)"
            if let shortfall = chunk.damage { return .cut(atOffset: offset, reason: reason + "; " + shortfall) }
            return .cut(atOffset: offset, reason: reason)
        }
    }

    /// The file offset of a byte of a chunk's records: exact for a raw chunk, the chunk's own
    /// offset for a compressed one (its records have no place in the file).
    private func fileOffset(of recordOffset: Int, in chunk: LoadedChunk) -> UInt64 {
        guard let start = chunk.recordsFileOffset else { return chunk.offset }
        return start + UInt64(recordOffset)
    }
}
