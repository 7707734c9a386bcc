// A test-side encoder of leaktrace traces, written from docs/trace-format.md on its own (it shares
// no code with the reader), so that reading what it writes checks the reader against the spec.
// It writes valid traces by default and lets a test bend any field to build damaged ones.

import CZstd
import TraceFormat

// MARK: - Primitive encoding

/// Appends the format's primitive fields to a byte array.
struct FieldWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value & 0xFF)); bytes.append(UInt8(value >> 8))
    }

    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((value >> UInt32(shift)) & 0xFF)) }
    }

    /// Unsigned LEB128.
    mutating func uv(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// Zigzag, then LEB128.
    mutating func sv(_ value: Int64) {
        uv(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    mutating func raw(_ data: [UInt8]) { bytes.append(contentsOf: data) }

    /// `uv` length, then the bytes.
    mutating func lengthPrefixed(_ data: [UInt8]) {
        uv(UInt64(data.count))
        bytes.append(contentsOf: data)
    }

    mutating func str(_ text: String) { lengthPrefixed(Array(text.utf8)) }
}

// MARK: - Records

/// The records of one chunk, encoded with the chunk's own delta state.
struct ChunkRecords {
    private(set) var writer = FieldWriter()
    /// The address deltas start from 0 in every chunk.
    private var previousAddress: UInt64 = 0
    /// Records appended (raw bytes appended with `appendRaw` do not count).
    private(set) var recordCount = 0
    /// The byte offset just past each record appended, in order.
    private(set) var recordEnds: [Int] = []

    var bytes: [UInt8] { writer.bytes }

    /// The format version whose encodings `append` writes (version 2: STACK parents as the
    /// distance back, realloc(NULL, n) without its old pointer).
    let version: UInt16

    init(version: UInt16 = 1) { self.version = version }

    init(_ records: [TraceRecord], version: UInt16 = 1) {
        self.version = version
        for record in records { append(record) }
    }

    private mutating func address(_ value: UInt64) {
        writer.sv(Int64(bitPattern: value &- previousAddress))
        previousAddress = value
    }

    /// Appends a sized record: tag, `uv` length, body.
    mutating func appendSized(tag: UInt8, body: [UInt8]) {
        writer.u8(tag)
        writer.lengthPrefixed(body)
        recordCount += 1
        recordEnds.append(writer.bytes.count)
    }

    /// Appends bytes as they are (for damaged traces).
    mutating func appendRaw(_ data: [UInt8]) { writer.raw(data) }

    /// Appends one record in its wire form. A `.stack` record's id is implicit in the file and
    /// is not written; `.unknown(tag:length:)` writes a sized record of `length` zero bytes.
    mutating func append(_ record: TraceRecord) {
        switch record {
        case .alloc(let function, let path, let address, let size, let stack):
            writer.u8(0x01)
            writer.u8(function.rawValue | path.rawValue << 4)
            self.address(address)
            writer.uv(size)
            writer.uv(UInt64(stack))
        case .free(let address):
            writer.u8(0x02)
            self.address(address)
        case .reallocRelease(let address):
            writer.u8(0x03)
            self.address(address)
        case .realloc(let status, let path, let isReallocarray, let old, let new, let size, let stack):
            writer.u8(0x04)
            let omitOld = version >= 2 && old == 0
            writer.u8(status.rawValue | path.rawValue << 4 | (isReallocarray ? 1 : 0) << 6 | (omitOld ? 0x80 : 0))
            if !omitOld { address(old) }
            address(new)
            writer.uv(size)
            writer.uv(UInt64(stack))
        case .time(let microseconds):
            writer.u8(0x05)
            writer.uv(microseconds)
        case .thread(let tid):
            writer.u8(0x06)
            writer.uv(tid)
        case .stack(let id, let parent, let ip):
            writer.u8(0x07)
            writer.uv(version >= 2 ? UInt64(id &- parent) : UInt64(parent))
            writer.uv(ip)
        default:
            let (tag, body) = Self.sizedBody(record)
            appendSized(tag: tag, body: body)
            return
        }
        recordCount += 1
        recordEnds.append(writer.bytes.count)
    }

    /// Tag and body of a sized record.
    static func sizedBody(_ record: TraceRecord) -> (UInt8, [UInt8]) {
        var body = FieldWriter()
        switch record {
        case .modules(let generation, let modules):
            body.uv(generation)
            body.uv(UInt64(modules.count))
            for module in modules {
                body.str(module.path)
                body.uv(module.bias)
                body.lengthPrefixed(module.buildID)
                body.uv(UInt64(module.segments.count))
                for segment in module.segments {
                    body.uv(segment.start); body.uv(segment.size); body.uv(segment.flags)
                }
            }
            return (0x40, body.bytes)
        case .mmap(let addressArgument, let length, let prot, let flags, let fd, let offset, let result, let errno,
                   let path, let stack):
            body.uv(addressArgument); body.uv(length); body.uv(prot); body.uv(flags); body.sv(fd)
            body.uv(offset); body.uv(result); body.uv(errno); body.str(path); body.uv(UInt64(stack))
            return (0x41, body.bytes)
        case .munmap(let address, let length, let result, let errno, let stack):
            body.uv(address); body.uv(length); body.sv(result); body.uv(errno); body.uv(UInt64(stack))
            return (0x42, body.bytes)
        case .mremap(let oldAddress, let oldSize, let newSize, let flags, let newAddressArgument, let result,
                     let errno, let stack):
            body.uv(oldAddress); body.uv(oldSize); body.uv(newSize); body.uv(flags)
            body.uv(newAddressArgument); body.uv(result); body.uv(errno); body.uv(UInt64(stack))
            return (0x43, body.bytes)
        case .brk(let addressArgument, let result, let breakBefore, let breakAfter, let stack):
            body.uv(addressArgument); body.sv(result); body.uv(breakBefore); body.uv(breakAfter)
            body.uv(UInt64(stack))
            return (0x44, body.bytes)
        case .sbrk(let increment, let result, let breakAfter, let stack):
            body.sv(increment); body.uv(result); body.uv(breakAfter); body.uv(UInt64(stack))
            return (0x45, body.bytes)
        case .mallopt(let parameter, let value, let result):
            body.sv(parameter); body.sv(value); body.sv(result)
            return (0x46, body.bytes)
        case .sample(let vmPages, let rssPages, let sharedPages):
            body.uv(vmPages); body.uv(rssPages); body.uv(sharedPages)
            return (0x47, body.bytes)
        case .mark(let name, let source):
            body.str(name); body.uv(source)
            return (0x48, body.bytes)
        case .threadName(let tid, let name):
            body.uv(tid); body.str(name)
            return (0x49, body.bytes)
        case .fork(let childPid):
            body.uv(childPid)
            return (0x4A, body.bytes)
        case .exec(let path):
            body.str(path)
            return (0x4B, body.bytes)
        case .note(let level, let text):
            body.uv(level); body.str(text)
            return (0x4C, body.bytes)
        case .fold(let fold):
            body.uv(fold.firstMicroseconds); body.uv(fold.lastMicroseconds); body.uv(fold.peakBytes)
            body.uv(fold.lowestHeapAddress)
            body.uv(UInt64(fold.entries.count))
            var previous: UInt32 = 0   // entries must come in ascending order of stack
            for entry in fold.entries {
                body.uv(UInt64(entry.stack &- previous))
                previous = entry.stack
                body.u8(entry.function.rawValue | entry.path.rawValue << 4)
                body.uv(entry.blocks); body.uv(entry.bytes); body.uv(entry.temporary); body.uv(entry.releasedByRealloc)
            }
            return (0x4D, body.bytes)
        case .reach(let reach):
            body.uv(reach.flags.rawValue); body.uv(reach.scanMicroseconds); body.uv(reach.rootBytes)
            body.uv(reach.scannedBytes)
            body.uv(UInt64(reach.entries.count))
            var previous: UInt64 = 0   // each entry: distance from the previous address * 4 + category
            for entry in reach.entries {
                body.uv((entry.address &- previous) << 2 | UInt64(entry.category.rawValue))
                previous = entry.address
            }
            return (0x4E, body.bytes)
        case .end(let end):
            for count in [end.allocs, end.frees, end.reallocs, end.mappings, end.stacks, end.chunks, end.untraced] {
                body.uv(count)
            }
            return (0x4F, body.bytes)
        case .unknown(let tag, let length):
            return (tag, [UInt8](repeating: 0, count: length))
        case .alloc, .free, .reallocRelease, .realloc, .time, .thread, .stack:
            preconditionFailure("\(record) is not a sized record")
        }
    }
}

// MARK: - Files

/// Builds a whole trace file: the header, then chunks.
struct TraceBuilder {
    enum Codec: UInt8 { case raw = 0, zstd = 1 }

    /// The file so far.
    private(set) var bytes: [UInt8] = []
    /// File offset of every chunk appended, in order.
    private(set) var chunkOffsets: [Int] = []
    /// The format version in the header: records appended as lists are encoded for it.
    private(set) var version: UInt16 = 1

    /// A header with the given fields. `extraFields` are appended as they are (`key`, value bytes),
    /// e.g. keys this reader does not know.
    init(header: TraceHeader = TraceBuilder.sampleHeader, version: UInt16 = 1,
         extraFields: [(key: UInt64, value: [UInt8])] = []) {
        var fields = TraceBuilder.encodeFields(header)
        for (key, value) in extraFields {
            fields.uv(key)
            fields.lengthPrefixed(value)
        }
        self.init(rawHeaderFields: fields.bytes, version: version)
    }

    /// A header whose field bytes are given as they are.
    init(rawHeaderFields: [UInt8], version: UInt16 = 1, flags: UInt16 = 0, declaredHeaderSize: UInt32? = nil) {
        var writer = FieldWriter()
        writer.raw(Array("LKTRACE".utf8) + [0])
        writer.u16(version)
        self.version = version
        writer.u16(flags)
        writer.u32(declaredHeaderSize ?? UInt32(rawHeaderFields.count))
        writer.raw(rawHeaderFields)
        bytes = writer.bytes
    }

    /// A header like the tracer writes.
    static var sampleHeader: TraceHeader {
        var header = TraceHeader()
        header.pointerSize = 8
        header.pageSize = 4096
        header.pid = 4242
        header.ppid = 1
        header.program = "/usr/bin/sample-app"
        header.arguments = ["sample-app", "--iterations", "3"]
        header.startRealtimeMicroseconds = 1_763_769_600_000_000
        header.clock = "monotonic-coarse"
        header.libcVersion = "2.36"
        header.mmapThreshold = 131_072
        header.allocatorKind = 1
        header.mallocEnvironment = ["MALLOC_ARENA_MAX=2", "GLIBC_TUNABLES=glibc.malloc.tcache_count=0"]
        header.stackDepth = 64
        header.sampleIntervalMilliseconds = 100
        header.allocatorName = "glibc"
        header.tracerVersion = "0.1.0"
        return header
    }

    /// The TLV fields for the known header values that are set.
    static func encodeFields(_ header: TraceHeader) -> FieldWriter {
        var fields = FieldWriter()
        func number(_ key: UInt64, _ value: UInt64?) {
            guard let value else { return }
            var encoded = FieldWriter()
            encoded.uv(value)
            fields.uv(key)
            fields.lengthPrefixed(encoded.bytes)
        }
        func text(_ key: UInt64, _ value: String?) {
            guard let value else { return }
            fields.uv(key)
            fields.lengthPrefixed(Array(value.utf8))
        }
        func list(_ key: UInt64, _ values: [String]) {
            guard !values.isEmpty else { return }
            fields.uv(key)
            fields.lengthPrefixed(Array(values.joined(separator: "\0").utf8))
        }
        number(1, header.pointerSize)
        number(2, header.pageSize)
        number(3, header.pid)
        number(4, header.ppid)
        text(5, header.program)
        list(6, header.arguments)
        number(7, header.startRealtimeMicroseconds)
        text(8, header.clock)
        text(9, header.libcVersion)
        number(10, header.mmapThreshold)
        number(11, header.allocatorKind)
        list(12, header.mallocEnvironment)
        text(13, header.parentTrace)
        number(14, header.parentForkOffset)
        number(15, header.stackDepth)
        number(16, header.sampleIntervalMilliseconds)
        text(17, header.allocatorName)
        text(18, header.tracerVersion)
        number(19, header.events)
        number(20, header.foldWindow)
        return fields
    }

    /// Appends a chunk holding `records`. The overrides write wrong sizes or a wrong codec on
    /// purpose (for damaged traces); `zstdContentSize: false` leaves the frame's size undeclared,
    /// as a streaming compressor does.
    @discardableResult
    mutating func appendChunk(_ records: ChunkRecords, codec: Codec = .raw, codecByte: UInt8? = nil,
                              storedSize: UInt32? = nil, rawSize: UInt32? = nil,
                              zstdContentSize: Bool = true) -> Int {
        let payload: [UInt8]
        switch codec {
        case .raw: payload = records.bytes
        case .zstd: payload = Self.zstdFrame(records.bytes, declareContentSize: zstdContentSize)
        }
        let offset = bytes.count
        var writer = FieldWriter()
        writer.raw(Array("LTCK".utf8))
        writer.u8(codecByte ?? codec.rawValue)
        writer.raw([0, 0, 0])
        writer.u32(storedSize ?? UInt32(payload.count))
        writer.u32(rawSize ?? UInt32(records.bytes.count))
        writer.raw(payload)
        bytes += writer.bytes
        chunkOffsets.append(offset)
        return offset
    }

    /// Appends a chunk holding the given records.
    @discardableResult
    mutating func appendChunk(_ records: [TraceRecord], codec: Codec = .raw) -> Int {
        appendChunk(ChunkRecords(records, version: version), codec: codec)
    }

    /// Appends bytes as they are (garbage after the last chunk, a half chunk header, ...).
    mutating func appendRaw(_ data: [UInt8]) { bytes += data }

    /// One zstd frame (level 3) of `data`.
    static func zstdFrame(_ data: [UInt8], declareContentSize: Bool) -> [UInt8] {
        guard let context = ZSTD_createCCtx() else { preconditionFailure("ZSTD_createCCtx failed") }
        defer { ZSTD_freeCCtx(context) }
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 3)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        var output = [UInt8](repeating: 0, count: ZSTD_compressBound(data.count))
        let written: Int
        if declareContentSize {
            written = output.withUnsafeMutableBytes { out in
                data.withUnsafeBytes { input in
                    ZSTD_compress2(context, out.baseAddress, out.count, input.baseAddress, input.count)
                }
            }
        } else {
            // The streaming API with no pledged size leaves the frame's content size unknown.
            ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 0)
            written = output.withUnsafeMutableBytes { out in
                data.withUnsafeBytes { input in
                    var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
                    var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                    let left = ZSTD_compressStream2(context, &outBuffer, &inBuffer, ZSTD_e_end)
                    precondition(ZSTD_isError(left) == 0 && left == 0, "zstd streaming compression failed")
                    return outBuffer.pos
                }
            }
        }
        precondition(ZSTD_isError(written) == 0, "zstd compression failed")
        return Array(output[0..<written])
    }
}
