// The fixed 16-byte file header and the TLV header fields that follow it
// (docs/trace-format.md, "File header").

/// Constants of the file layout.
public enum TraceFormatLimits {
    /// `LKTRACE\0`.
    public static let fileMagic: [UInt8] = [0x4C, 0x4B, 0x54, 0x52, 0x41, 0x43, 0x45, 0x00]
    /// `LTCK`.
    public static let chunkMagic: [UInt8] = [0x4C, 0x54, 0x43, 0x4B]
    /// The newest format version this reader reads (it reads every older one).
    public static let version: UInt16 = 2
    /// Bytes before the header fields: magic, version, flags, header-size.
    public static let fixedHeaderSize = 16
    /// The most bytes of header fields a file may declare.
    public static let maximumHeaderFieldsSize = 1 << 20
    /// Bytes of a chunk header.
    public static let chunkHeaderSize = 16
    /// The most bytes a chunk's payload may hold, stored or decompressed.
    public static let maximumChunkSize = 64 << 20
}

/// The keys of the header fields.
enum HeaderKey: UInt64 {
    case pointerSize = 1, pageSize, pid, ppid, program, argv, startRealtimeMicroseconds, clock,
         libcVersion, mmapThreshold, allocator, mallocEnvironment, parentTrace, parentForkOffset,
         stackDepth, sampleIntervalMilliseconds, allocatorName, tracerVersion, events, foldWindow

    var name: String {
        switch self {
        case .pointerSize: return "pointer-size"
        case .pageSize: return "page-size"
        case .pid: return "pid"
        case .ppid: return "ppid"
        case .program: return "program"
        case .argv: return "argv"
        case .startRealtimeMicroseconds: return "start-realtime-us"
        case .clock: return "clock"
        case .libcVersion: return "libc-version"
        case .mmapThreshold: return "mmap-threshold"
        case .allocator: return "allocator"
        case .mallocEnvironment: return "malloc-env"
        case .parentTrace: return "parent-trace"
        case .parentForkOffset: return "parent-fork-offset"
        case .stackDepth: return "stack-depth"
        case .sampleIntervalMilliseconds: return "sample-interval-ms"
        case .allocatorName: return "allocator-name"
        case .tracerVersion: return "tracer-version"
        case .events: return "events"
        case .foldWindow: return "fold-window"
        }
    }
}

/// What is wrong with a header: the text that follows "path: " in the message.
struct HeaderProblem: Error, ExpressibleByStringInterpolation {
    let text: String
    init(stringLiteral value: String) { text = value }
    init(stringInterpolation: DefaultStringInterpolation) { text = String(stringInterpolation: stringInterpolation) }
    init(_ text: String) { self.text = text }
}

// MARK: - Fixed header

/// What the first 16 bytes of a file say.
struct FixedHeader {
    var version: UInt16
    var flags: UInt16
    var fieldsSize: Int

    /// Checks the first bytes of a file of `fileSize` bytes. `prefix` holds up to the first 16
    /// bytes. Returns the problem as the part of a message that follows "path: ".
    static func parse(_ prefix: [UInt8], fileSize: UInt64) -> Result<FixedHeader, HeaderProblem> {
        if fileSize == 0 { return .failure("empty file") }
        let magic = TraceFormatLimits.fileMagic
        let compared = min(prefix.count, magic.count)
        guard prefix[0..<compared].elementsEqual(magic[0..<compared]) else {
            let shown = prefix.prefix(4).map { String(format2hex: $0) }.joined(separator: " ")
            return .failure("not a leaktrace file (starts with \(shown))")
        }
        guard prefix.count >= TraceFormatLimits.fixedHeaderSize else {
            return .failure(HeaderProblem("damaged header (the file is \(fileSize) bytes, "
                            + "shorter than the \(TraceFormatLimits.fixedHeaderSize)-byte file header)"))
        }
        let version = UInt16(prefix[8]) | UInt16(prefix[9]) << 8
        let flags = UInt16(prefix[10]) | UInt16(prefix[11]) << 8
        let size = UInt32(prefix[12]) | UInt32(prefix[13]) << 8 | UInt32(prefix[14]) << 16 | UInt32(prefix[15]) << 24
        if version > TraceFormatLimits.version {
            return .failure("format version \(version) is newer than this reader (\(TraceFormatLimits.version))")
        }
        if version == 0 {
            return .failure("damaged header (format version 0 does not exist)")
        }
        if size > TraceFormatLimits.maximumHeaderFieldsSize {
            return .failure("damaged header (header-size \(size) is over the 1 MiB limit)")
        }
        let available = fileSize - UInt64(TraceFormatLimits.fixedHeaderSize)
        if UInt64(size) > available {
            return .failure("damaged header (header-size \(size) but only \(available) bytes follow; the file is cut)")
        }
        return .success(FixedHeader(version: version, flags: flags, fieldsSize: Int(size)))
    }
}

// MARK: - Header fields

extension TraceHeader {
    /// Decodes the header fields (`key:uv length:uv value`), skipping keys this reader does not
    /// know. Returns the problem as the part of a message that follows "path: ".
    static func parse(fields: [UInt8], version: UInt16) -> Result<TraceHeader, HeaderProblem> {
        var header = TraceHeader()
        header.version = version
        guard !fields.isEmpty else { return .success(header) }
        return fields.withUnsafeBufferPointer { buffer -> Result<TraceHeader, HeaderProblem> in
            guard let base = buffer.baseAddress else { return .success(header) }
            var cursor = ByteCursor(base, count: buffer.count)
            while !cursor.isAtEnd {
                let fieldStart = cursor.offset
                guard let key = cursor.readVarint(), let length = cursor.readVarint() else {
                    return .failure("damaged header (field at byte \(fieldStart + 16) has no valid key and length)")
                }
                guard var value = cursor.readSlice(length: length) else {
                    return .failure(HeaderProblem("damaged header (field \(key) at byte \(fieldStart + 16) "
                                                  + "claims \(length) bytes, \(cursor.remaining) remain)"))
                }
                guard let known = HeaderKey(rawValue: key) else { continue }
                if let problem = header.apply(known, value: &value) {
                    return .failure("damaged header (\(known.name): \(problem))")
                }
            }
            return .success(header)
        }
    }

    /// Stores one known field. Returns a problem, or nil.
    private mutating func apply(_ key: HeaderKey, value: inout ByteCursor) -> String? {
        func number() -> UInt64? {
            guard let number = value.readVarint(), value.isAtEnd else { return nil }
            return number
        }
        let text = String(decoding: value.rest, as: UTF8.self)
        switch key {
        case .program: program = text; return nil
        case .clock: clock = text; return nil
        case .libcVersion: libcVersion = text; return nil
        case .parentTrace: parentTrace = text; return nil
        case .allocatorName: allocatorName = text; return nil
        case .tracerVersion: tracerVersion = text; return nil
        case .argv: arguments = Self.splitAtNUL(value.rest); return nil
        case .mallocEnvironment: mallocEnvironment = Self.splitAtNUL(value.rest); return nil
        default: break
        }
        guard let number = number() else { return "not a single varint" }
        switch key {
        case .pointerSize: pointerSize = number
        case .pageSize: pageSize = number
        case .pid: pid = number
        case .ppid: ppid = number
        case .startRealtimeMicroseconds: startRealtimeMicroseconds = number
        case .mmapThreshold: mmapThreshold = number
        case .allocator: allocatorKind = number
        case .parentForkOffset: parentForkOffset = number
        case .stackDepth: stackDepth = number
        case .sampleIntervalMilliseconds: sampleIntervalMilliseconds = number
        case .events: events = number
        case .foldWindow: foldWindow = number
        default: break
        }
        return nil
    }

    /// Splits NUL-separated strings. One trailing NUL (as /proc/self/cmdline writes after every
    /// argument) ends the last string rather than starting an empty one.
    static func splitAtNUL(_ bytes: UnsafeBufferPointer<UInt8>) -> [String] {
        guard !bytes.isEmpty else { return [] }
        var pieces = bytes.split(separator: 0, omittingEmptySubsequences: false)
        if bytes.last == 0 { pieces.removeLast() }
        return pieces.map { String(decoding: $0, as: UTF8.self) }
    }
}
