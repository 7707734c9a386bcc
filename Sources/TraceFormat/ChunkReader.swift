// Reads the chunks of a trace one at a time into reused buffers and hands out their decompressed
// records. Damage and truncation are not errors here: they become a partial chunk (the records
// that can still be decoded) or the end of reading, with the reason.

import CZstd

/// A byte buffer that is allocated once and grown as needed, never shrunk, so memory follows the
/// largest chunk (at most 64 MiB) rather than the size of the trace.
final class ReusableBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int

    init() {
        capacity = 64 << 10
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    /// Ensures room for `count` bytes (the caller has checked `count` against the format's limits).
    /// The contents are not kept.
    func reserve(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        if count > capacity {
            base.deallocate()
            capacity = max(count, min(capacity * 2, TraceFormatLimits.maximumChunkSize))
            base = .allocate(capacity: capacity)
        }
        return base
    }
}

/// The decoded records of one chunk, valid until the next chunk is loaded.
@usableFromInline
struct LoadedChunk {
    /// File offset of the chunk header.
    @usableFromInline let offset: UInt64
    @usableFromInline let records: UnsafePointer<UInt8>
    @usableFromInline let recordsCount: Int
    /// File offset of the first record byte for a raw chunk (records map to file offsets);
    /// nil for a compressed one.
    @usableFromInline let recordsFileOffset: UInt64?
    /// File offset of the next chunk header.
    @usableFromInline let nextOffset: UInt64
    /// Set when only part of the chunk could be recovered: why. Reading ends after this chunk.
    @usableFromInline let damage: String?
}

/// What loading the next chunk produced.
@usableFromInline
enum ChunkStep {
    case chunk(LoadedChunk)
    case finished(TraceEndState)
}

/// Sequential access to the chunks of a trace that follow its header.
final class ChunkReader {
    private let source: ByteSource
    let firstChunkOffset: UInt64
    private(set) var offset: UInt64
    private let storedBuffer = ReusableBuffer()
    private let decodedBuffer = ReusableBuffer()
    private var decompressor: OpaquePointer?
    /// Stored bytes fed to the streaming decompressor per call in the first recovery pass.
    private static let recoveryInputStep = 16 << 10

    init(source: ByteSource, firstChunkOffset: UInt64) {
        self.source = source
        self.firstChunkOffset = firstChunkOffset
        self.offset = firstChunkOffset
    }

    deinit {
        if let decompressor { ZSTD_freeDCtx(decompressor) }
    }

    /// Starts again at the first chunk.
    func rewind() { offset = firstChunkOffset }

    /// Loads the chunk at the current offset and moves past it.
    /// `stopAtOffset`: a chunk starting at or after it is not loaded.
    func next(stopAtOffset: UInt64?) -> ChunkStep {
        let chunkOffset = offset
        if let stop = stopAtOffset, chunkOffset >= stop {
            return .finished(.cut(atOffset: chunkOffset, reason: "stopped at offset \(chunkOffset) as asked"))
        }
        let remaining = source.size > chunkOffset ? source.size - chunkOffset : 0
        if remaining == 0 {
            return .finished(.cut(atOffset: chunkOffset, reason: "no END record"))
        }
        let headerSize = TraceFormatLimits.chunkHeaderSize
        var header = [UInt8](repeating: 0, count: headerSize)
        let got: Int
        switch header.withUnsafeMutableBytes({ source.read(into: $0, at: chunkOffset) }) {
        case .success(let count): got = count
        case .failure(let failure): return .finished(.cut(atOffset: chunkOffset, reason: failure.description))
        }
        if got < headerSize {
            return .finished(.cut(atOffset: chunkOffset, reason:
                "chunk header at offset \(chunkOffset) is cut short (\(got) of \(headerSize) bytes); no END record"))
        }
        let step = load(header: header, at: chunkOffset)
        if case .chunk(let chunk) = step { offset = chunk.nextOffset }
        return step
    }

    // MARK: - One chunk

    private func load(header: [UInt8], at chunkOffset: UInt64) -> ChunkStep {
        func damaged(_ what: String) -> ChunkStep {
            .finished(.cut(atOffset: chunkOffset, reason: "chunk at offset \(chunkOffset): \(what)"))
        }
        guard header[0..<4].elementsEqual(TraceFormatLimits.chunkMagic) else {
            let found = header[0..<4].map { String(format2hex: $0) }.joined(separator: " ")
            return .finished(.cut(atOffset: chunkOffset,
                                  reason: "no chunk header at offset \(chunkOffset) (found \(found))"))
        }
        let codec = header[4]
        let storedSize = Self.littleEndian32(header, at: 8)
        let rawSize = Self.littleEndian32(header, at: 12)
        let limit = TraceFormatLimits.maximumChunkSize
        guard codec <= 1 else { return damaged("unknown codec \(codec)") }
        guard storedSize <= limit else { return damaged("stored-size \(storedSize) is over the 64 MiB limit") }
        guard rawSize <= limit else { return damaged("raw-size \(rawSize) is over the 64 MiB limit") }
        if codec == 0 && rawSize != storedSize {
            return damaged("raw chunk with stored-size \(storedSize) but raw-size \(rawSize)")
        }

        // Read what the file holds of the payload; never more than it has.
        let payloadOffset = chunkOffset + UInt64(TraceFormatLimits.chunkHeaderSize)
        let available = Int(min(UInt64(storedSize), source.size - min(source.size, payloadOffset)))
        let stored = storedBuffer.reserve(available)
        let present: Int
        switch source.read(into: UnsafeMutableRawBufferPointer(start: stored, count: available), at: payloadOffset) {
        case .success(let count): present = count
        case .failure(let failure): return .finished(.cut(atOffset: payloadOffset, reason: failure.description))
        }
        let nextOffset = payloadOffset + UInt64(storedSize)
        let shortfall = present < storedSize
            ? "chunk at offset \(chunkOffset) is cut short (\(present) of \(storedSize) payload bytes); no END record"
            : nil

        if codec == 0 {
            return .chunk(LoadedChunk(offset: chunkOffset, records: UnsafePointer(stored), recordsCount: present,
                                      recordsFileOffset: payloadOffset, nextOffset: nextOffset, damage: shortfall))
        }
        // raw-size is within the limit, but a small frame cannot hold that much: allocate only what
        // the bytes present could decompress to.
        let outputBound = Self.zstdOutputBound(frameSize: present)
        if shortfall == nil && rawSize > outputBound {
            return damaged("raw-size \(rawSize) is more than a \(present)-byte zstd frame can hold")
        }
        guard let decompressor = decompressorReady() else { return damaged("cannot create a zstd decompressor") }
        let capacity = min(rawSize, outputBound)
        let decoded = decodedBuffer.reserve(capacity)
        if shortfall == nil, let size = Self.decompressWholeFrame(decompressor, from: stored, count: present,
                                                                 into: decoded, expected: rawSize) {
            return .chunk(LoadedChunk(offset: chunkOffset, records: UnsafePointer(decoded), recordsCount: size,
                                      recordsFileOffset: nil, nextOffset: nextOffset, damage: nil))
        }
        let recovered = recoverFrame(decompressor, from: stored, count: present, into: decoded, capacity: capacity)
        let reason = shortfall ?? "chunk at offset \(chunkOffset): zstd frame is damaged "
            + "(\(recovered.problem)); \(recovered.size) of \(rawSize) bytes recovered"
        return .chunk(LoadedChunk(offset: chunkOffset, records: UnsafePointer(decoded), recordsCount: recovered.size,
                                  recordsFileOffset: nil, nextOffset: nextOffset, damage: reason))
    }

    private func decompressorReady() -> OpaquePointer? {
        if decompressor == nil, let context = ZSTD_createDCtx() {
            // A chunk holds at most 64 MiB, so no frame needs a larger window; a damaged frame
            // header claiming one must not make the streaming decoder allocate it.
            ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, 26)
            decompressor = context
        }
        return decompressor
    }

    // MARK: - zstd

    /// The most bytes a zstd frame of `frameSize` bytes can decompress to. After the frame header
    /// (at least 6 bytes), every block that yields output takes at least 4 bytes (a 3-byte block
    /// header and one RLE byte) and yields at most 128 KiB.
    static func zstdOutputBound(frameSize: Int) -> Int {
        guard frameSize >= 6 else { return 0 }
        return (frameSize - 6) / 4 * (128 << 10)
    }

    /// Decompresses a frame that should be intact in one call. Nil unless the payload is exactly
    /// one frame that decompresses to exactly `expected` bytes.
    private static func decompressWholeFrame(_ context: OpaquePointer, from source: UnsafeMutablePointer<UInt8>,
                                             count: Int, into destination: UnsafeMutablePointer<UInt8>,
                                             expected: Int) -> Int? {
        // A frame that declares a different size, or a payload holding more than one frame, is
        // damage: leave it to the careful path.
        let declared = ZSTD_getFrameContentSize(source, count)
        if declared != UInt64.max && declared != UInt64(expected) { return nil }
        guard ZSTD_findFrameCompressedSize(source, count) == count else { return nil }
        let produced = ZSTD_decompressDCtx(context, destination, expected, source, count)
        guard ZSTD_isError(produced) == 0, produced == expected else { return nil }
        return produced
    }

    /// Streams a cut or damaged frame through the decompressor and keeps what comes out before
    /// the input runs out or the data stops making sense.
    ///
    /// ZSTD_decompressStream reports no output position for a call that fails, so the blocks it
    /// finished in that call before meeting the damage would be lost. A first pass finds roughly
    /// where decoding fails; when it does, a second pass feeds everything before that point in one
    /// go and the rest one byte per call, so no finished block is lost.
    private func recoverFrame(_ context: OpaquePointer, from source: UnsafeMutablePointer<UInt8>, count: Int,
                              into destination: UnsafeMutablePointer<UInt8>, capacity: Int)
        -> (size: Int, problem: String) {
        let first = Self.stream(context, from: source, count: count, into: destination, capacity: capacity,
                                cleanPrefix: 0, step: Self.recoveryInputStep)
        guard let failedAt = first.failingStepStart else { return (first.size, first.problem) }
        let second = Self.stream(context, from: source, count: count, into: destination, capacity: capacity,
                                 cleanPrefix: failedAt, step: 1)
        return (second.size, second.problem)
    }

    private struct StreamOutcome {
        var size: Int
        var problem: String
        /// Where the input piece that made the decompressor fail began, if it failed.
        var failingStepStart: Int?
    }

    /// One streaming pass: `cleanPrefix` bytes in a single piece, then the rest `step` bytes at a time.
    private static func stream(_ context: OpaquePointer, from source: UnsafeMutablePointer<UInt8>, count: Int,
                               into destination: UnsafeMutablePointer<UInt8>, capacity: Int,
                               cleanPrefix: Int, step: Int) -> StreamOutcome {
        ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        var output = ZSTD_outBuffer(dst: destination, size: capacity, pos: 0)
        var consumed = 0
        while consumed < count {
            let piece = consumed == 0 && cleanPrefix > 0 ? cleanPrefix : min(step, count - consumed)
            var input = ZSTD_inBuffer(src: source + consumed, size: piece, pos: 0)
            while input.pos < input.size {
                let before = (input.pos, output.pos)
                let hint = ZSTD_decompressStream(context, &output, &input)
                if ZSTD_isError(hint) != 0 {
                    let name = String(cString: ZSTD_getErrorName(hint)).lowercased()
                    return StreamOutcome(size: output.pos, problem: name, failingStepStart: consumed)
                }
                if hint == 0 {
                    let extra = count - consumed - input.pos
                    let problem = extra > 0 ? "\(extra) bytes follow the frame"
                                            : "decompresses to \(output.pos) bytes, not \(capacity)"
                    return StreamOutcome(size: output.pos, problem: problem, failingStepStart: nil)
                }
                if before == (input.pos, output.pos) {
                    return StreamOutcome(size: output.pos, problem: "decompresses to more than \(capacity) bytes",
                                         failingStepStart: nil)
                }
            }
            consumed += input.pos
        }
        return StreamOutcome(size: output.pos, problem: "frame is cut short", failingStepStart: nil)
    }

    private static func littleEndian32(_ bytes: [UInt8], at index: Int) -> Int {
        Int(bytes[index]) | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2]) << 16 | Int(bytes[index + 3]) << 24
    }
}
