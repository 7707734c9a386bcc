// The record loop: turns the bytes of one chunk into visitor calls, keeping the per-chunk decoder
// state (previous address, thread, time) in locals. It is @inlinable so that it is specialised for
// each visitor; everything rare (sized records, damage reports) is moved out of line.

/// Record tags (docs/trace-format.md, "Records").
public enum RecordTag {
    public static let alloc: UInt8 = 0x01
    public static let free: UInt8 = 0x02
    public static let reallocRelease: UInt8 = 0x03
    public static let realloc: UInt8 = 0x04
    public static let time: UInt8 = 0x05
    public static let thread: UInt8 = 0x06
    public static let stack: UInt8 = 0x07
    /// Tags from here on are sized: `tag length:uv body[length]`.
    public static let firstSized: UInt8 = 0x40
    public static let modules: UInt8 = 0x40
    public static let mmap: UInt8 = 0x41
    public static let munmap: UInt8 = 0x42
    public static let mremap: UInt8 = 0x43
    public static let brk: UInt8 = 0x44
    public static let sbrk: UInt8 = 0x45
    public static let mallopt: UInt8 = 0x46
    public static let sample: UInt8 = 0x47
    public static let mark: UInt8 = 0x48
    public static let threadName: UInt8 = 0x49
    public static let fork: UInt8 = 0x4A
    public static let exec: UInt8 = 0x4B
    public static let note: UInt8 = 0x4C
    public static let fold: UInt8 = 0x4D
    public static let reach: UInt8 = 0x4E
    public static let end: UInt8 = 0x4F

    /// The record name used in dumps and messages ("ALLOC", "MMAP", ...), or "tag 0xNN".
    public static func name(_ tag: UInt8) -> String {
        switch tag {
        case alloc: return "ALLOC"
        case free: return "FREE"
        case reallocRelease: return "REALLOC_RELEASE"
        case realloc: return "REALLOC"
        case time: return "TIME"
        case thread: return "THREAD"
        case stack: return "STACK"
        case modules: return "MODULES"
        case mmap: return "MMAP"
        case munmap: return "MUNMAP"
        case mremap: return "MREMAP"
        case brk: return "BRK"
        case sbrk: return "SBRK"
        case mallopt: return "MALLOPT"
        case sample: return "SAMPLE"
        case mark: return "MARK"
        case threadName: return "THREAD_NAME"
        case fork: return "FORK"
        case exec: return "EXEC"
        case note: return "NOTE"
        case fold: return "FOLD"
        case reach: return "REACH"
        case end: return "END"
        default: return "tag " + hex(tag)
        }
    }
}

/// What is wrong with a record.
@usableFromInline
enum RecordDamage: Equatable {
    /// The record runs past the end of the chunk's records.
    case truncated(tag: UInt8)
    case malformedVarint(tag: UInt8)
    case unknownTag(UInt8)
    case unknownAllocFunction(UInt8)
    case unknownReallocInfo(UInt8)
    case undefinedStack(tag: UInt8, id: UInt64, defined: UInt64)
    case undefinedParent(id: UInt64, defined: UInt64)
    /// Version 2: a STACK record's distance back to its parent that is 0 or reaches before the root.
    case badParentDistance(UInt64, node: UInt64)
    case tooManyStacks
    case badBody(tag: UInt8, problem: String)

    var description: String {
        switch self {
        case .truncated(let tag):
            return "\(RecordTag.name(tag)) record runs past the end of the chunk"
        case .malformedVarint(let tag):
            return "\(RecordTag.name(tag)) record has a malformed varint"
        case .unknownTag(let tag):
            return "unknown record tag \(hex(tag))"
        case .unknownAllocFunction(let function):
            return "ALLOC record with unknown function \(function)"
        case .badParentDistance(let up, let node):
            return "STACK record's parent distance \(up) does not fit node \(node)"
        case .unknownReallocInfo(let info):
            return "REALLOC record with unknown status or function (info \(hex(info)))"
        case .undefinedStack(let tag, let id, let defined):
            return "\(RecordTag.name(tag)) record names undefined stack id \(id) (\(defined) defined)"
        case .undefinedParent(let id, let defined):
            return "STACK record names undefined parent id \(id) (\(defined) defined)"
        case .tooManyStacks:
            return "more than \(StackTable.maximumCount) STACK records"
        case .badBody(let tag, let problem):
            return "\(RecordTag.name(tag)) record is damaged (\(problem))"
        }
    }
}

/// How decoding one chunk's records ended.
@usableFromInline
enum ChunkOutcome {
    /// Every record was decoded.
    case finished
    /// The END record was decoded; reading stops.
    case ended(TraceEnd)
    /// The record at `recordOffset` (bytes into the chunk's records) is damaged; those before it stand.
    case damaged(recordOffset: Int, RecordDamage)
}

/// What decoding a sized record gave.
@usableFromInline
enum SizedRecordResult {
    case record(TraceRecord)
    case damaged(RecordDamage)
}

/// Where the decoding of one chunk's records stands: the read position and the format's decoder
/// state (previous address, thread, time), so that decoding can stop between two records (a
/// full batch, `TraceVisitor.wantsPause`) and go on later; and the count of stacks defined,
/// which carries over from chunk to chunk.
@usableFromInline
struct RecordDecoderState {
    @usableFromInline var cursor: ByteCursor
    @usableFromInline var context: RecordContext
    @usableFromInline var previousAddress: UInt64 = 0
    @usableFromInline var definedStacks: UInt64
    @usableFromInline let isVersion2: Bool
    /// The path of an EXEC record that is the chunk's last record (set when decoding finishes).
    @usableFromInline var trailingExec: String?

    @inlinable
    init(chunk: LoadedChunk, definedStacks: UInt64, version: UInt16) {
        cursor = ByteCursor(chunk.records, count: chunk.recordsCount)
        context = RecordContext(tid: 0, time: 0, chunkOffset: chunk.offset)
        self.definedStacks = definedStacks
        isVersion2 = version >= 2
    }
}

/// What the record loop adds to besides the visitor: the stack table and the module snapshots
/// of a pass. The reader itself when it delivers as it decodes; nothing when another thread
/// decodes ahead (the records then reach the tables when they are delivered, in file order).
@usableFromInline
protocol RecordTables {
    /// A STACK record defined node `id` (always the count of nodes before it, plus one).
    func defineStack(id: UInt32, parent: UInt32, ip: UInt64)
    /// A MODULES record: its snapshot is in force from now on.
    func addModules(_ modules: [Module])
}

/// The tables of a decoding that runs ahead of the delivery.
@usableFromInline
struct NoRecordTables: RecordTables {
    @inlinable init() {}
    @inlinable func defineStack(id: UInt32, parent: UInt32, ip: UInt64) {}
    @inlinable func addModules(_ modules: [Module]) {}
}

extension TraceReader: RecordTables {
    @usableFromInline
    func defineStack(id: UInt32, parent: UInt32, ip: UInt64) {
        let defined = stacks.append(parent: parent, ip: ip)
        assert(defined == id)
    }

    @usableFromInline
    func addModules(_ modules: [Module]) { moduleMaps.append(modules) }

    // MARK: - The record loop

    /// Decodes the records `state` has not yet decoded, calling `visitor` for each and adding
    /// stacks and module snapshots to `tables`. Returns how the chunk ended, or nil when the
    /// visitor asked to pause (`state` then says where to go on).
    @inlinable
    static func decodeRecords<V: TraceVisitor, T: RecordTables>(_ state: inout RecordDecoderState, tables: T,
                                                                into visitor: inout V) throws(V.Failure)
        -> ChunkOutcome? {
        var cursor = state.cursor
        var context = state.context
        var previousAddress = state.previousAddress
        var definedStacks = state.definedStacks
        let isVersion2 = state.isVersion2
        defer {
            state.cursor = cursor
            state.context = context
            state.previousAddress = previousAddress
            state.definedStacks = definedStacks
        }

        // Literal tags below (rather than RecordTag's constants) let the switch become a jump table.
        while !cursor.isAtEnd {
            if visitor.wantsPause { return nil }
            let recordStart = cursor.offset
            let tag = cursor.base[recordStart]
            cursor.offset &+= 1
            switch tag {
            case 0x01: // ALLOC
                guard let info = cursor.readByte(), let delta = cursor.readVarint(),
                      let size = cursor.readVarint(), let stack = cursor.readVarint() else {
                    return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                }
                guard let function = AllocFunction(rawValue: info & 0x0F),
                      let path = AllocPath(rawValue: (info >> 4) & 0x03) else {
                    return .damaged(recordOffset: recordStart, .unknownAllocFunction(info & 0x0F))
                }
                guard stack <= definedStacks else {
                    return .damaged(recordOffset: recordStart,
                                    .undefinedStack(tag: tag, id: stack, defined: definedStacks))
                }
                previousAddress &+= UInt64(bitPattern: decodeZigzag(delta))
                try visitor.visitAlloc(function: function, path: path, address: previousAddress, size: size,
                                       stack: UInt32(truncatingIfNeeded: stack), context: context)

            case 0x02, 0x03: // FREE, REALLOC_RELEASE
                guard let delta = cursor.readVarint() else {
                    return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                }
                previousAddress &+= UInt64(bitPattern: decodeZigzag(delta))
                if tag == RecordTag.free {
                    try visitor.visitFree(address: previousAddress, context: context)
                } else {
                    try visitor.visitReallocRelease(address: previousAddress, context: context)
                }

            case 0x04: // REALLOC
                // Version 2: info bit 7 says the old pointer was NULL and is not written.
                guard let info = cursor.readByte() else {
                    return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                }
                let oldWritten = info & 0x80 == 0
                var oldDelta: UInt64 = 0
                if oldWritten {
                    guard let delta = cursor.readVarint() else {
                        return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                    }
                    oldDelta = delta
                }
                guard let newDelta = cursor.readVarint(), let size = cursor.readVarint(),
                      let stack = cursor.readVarint() else {
                    return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                }
                guard let status = ReallocStatus(rawValue: info & 0x0F), oldWritten || isVersion2,
                      let path = AllocPath(rawValue: (info >> 4) & 0x03) else {
                    return .damaged(recordOffset: recordStart, .unknownReallocInfo(info))
                }
                guard stack <= definedStacks else {
                    return .damaged(recordOffset: recordStart,
                                    .undefinedStack(tag: tag, id: stack, defined: definedStacks))
                }
                let old = oldWritten ? previousAddress &+ UInt64(bitPattern: decodeZigzag(oldDelta)) : 0
                if oldWritten { previousAddress = old }
                previousAddress &+= UInt64(bitPattern: decodeZigzag(newDelta))
                try visitor.visitRealloc(status: status, path: path, isReallocarray: (info >> 6) & 1 == 1, old: old,
                                         new: previousAddress, size: size,
                                         stack: UInt32(truncatingIfNeeded: stack), context: context)

            case 0x05: // TIME
                guard let microseconds = cursor.readVarint() else {
                    return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                }
                context.time = microseconds
                try visitor.visitRecord(.time(microseconds: microseconds), context: context)

            case 0x06: // THREAD
                guard let tid = cursor.readVarint() else {
                    return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                }
                context.tid = tid
                try visitor.visitRecord(.thread(tid: tid), context: context)

            case 0x07: // STACK
                guard var parent = cursor.readVarint(), let ip = cursor.readVarint() else {
                    return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                }
                if isVersion2 { // the distance back from this node's id to its parent's
                    let node = definedStacks &+ 1
                    guard parent >= 1 && parent <= node else {
                        return .damaged(recordOffset: recordStart, .badParentDistance(parent, node: node))
                    }
                    parent = node - parent
                }
                guard parent <= definedStacks else {
                    return .damaged(recordOffset: recordStart, .undefinedParent(id: parent, defined: definedStacks))
                }
                guard definedStacks < UInt64(StackTable.maximumCount) else {
                    return .damaged(recordOffset: recordStart, .tooManyStacks)
                }
                definedStacks &+= 1
                let id = UInt32(truncatingIfNeeded: definedStacks)
                tables.defineStack(id: id, parent: UInt32(truncatingIfNeeded: parent), ip: ip)
                try visitor.visitStack(id: id, parent: UInt32(truncatingIfNeeded: parent), ip: ip, context: context)

            case 0x40...0xFF: // sized records
                guard let length = cursor.readVarint() else {
                    return Self.fieldFailure(cursor, recordStart: recordStart, tag: tag)
                }
                guard let body = cursor.readSlice(length: length) else {
                    return .damaged(recordOffset: recordStart, .truncated(tag: tag))
                }
                visitor.willDecodeSizedRecord()
                switch Self.decodeSizedRecord(tag: tag, body: body, definedStacks: definedStacks) {
                case .damaged(let damage):
                    return .damaged(recordOffset: recordStart, damage)
                case .record(let record):
                    if case .modules(_, let modules) = record { tables.addModules(modules) }
                    try visitor.visitRecord(record, context: context)
                    if case .end(let end) = record { return .ended(end) }
                    if case .exec(let path) = record, cursor.isAtEnd { state.trailingExec = path }
                }

            default:
                return .damaged(recordOffset: recordStart, .unknownTag(tag))
            }
        }
        return .finished
    }

    /// Why a fixed field could not be read: the chunk ended inside it, or it is malformed.
    @usableFromInline
    static func fieldFailure(_ cursor: ByteCursor, recordStart: Int, tag: UInt8) -> ChunkOutcome {
        if cursor.isAtEnd || cursor.varintFailureIsTruncation() {
            return .damaged(recordOffset: recordStart, .truncated(tag: tag))
        }
        return .damaged(recordOffset: recordStart, .malformedVarint(tag: tag))
    }

    // MARK: - Sized records

    /// Decodes the body of a sized record; a body that does not parse exactly is damage.
    @usableFromInline
    static func decodeSizedRecord(tag: UInt8, body: ByteCursor, definedStacks: UInt64) -> SizedRecordResult {
        var fields = SizedFields(cursor: body, definedStacks: definedStacks)
        let record: TraceRecord?
        switch tag {
        case RecordTag.modules: record = fields.modules()
        case RecordTag.mmap: record = fields.mmap()
        case RecordTag.munmap: record = fields.munmap()
        case RecordTag.mremap: record = fields.mremap()
        case RecordTag.brk: record = fields.brk()
        case RecordTag.sbrk: record = fields.sbrk()
        case RecordTag.mallopt: record = fields.mallopt()
        case RecordTag.sample: record = fields.sample()
        case RecordTag.mark: record = fields.mark()
        case RecordTag.threadName: record = fields.threadName()
        case RecordTag.fork: record = fields.fork()
        case RecordTag.exec: record = fields.exec()
        case RecordTag.note: record = fields.note()
        case RecordTag.fold: record = fields.fold()
        case RecordTag.reach: record = fields.reach()
        case RecordTag.end: record = fields.end()
        default: return .record(.unknown(tag: tag, length: body.count))
        }
        guard let record else {
            return .damaged(.badBody(tag: tag, problem: fields.problem ?? "body cut short"))
        }
        guard fields.cursor.isAtEnd else {
            return .damaged(.badBody(tag: tag, problem: "\(fields.cursor.remaining) bytes left over"))
        }
        return .record(record)
    }
}

/// `0x` and lowercase hex digits: how dumps, reports and JSON write addresses.
public func hexAddress(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

@usableFromInline
func hex(_ value: UInt64) -> String { hexAddress(value) }

@usableFromInline
func hex(_ value: UInt8) -> String { "0x" + String(format2hex: value) }
