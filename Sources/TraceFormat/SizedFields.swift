// The bodies of sized records (docs/trace-format.md, "Sized records"): one reader per record
// type, each checking every length and reference against what the body and the trace hold.

/// Reads the fields of one sized record body. Each method returns nil when a field is missing or
/// invalid (and may leave a `problem`).
struct SizedFields {
    var cursor: ByteCursor
    let definedStacks: UInt64
    var problem: String?

    init(cursor: ByteCursor, definedStacks: UInt64) {
        self.cursor = cursor
        self.definedStacks = definedStacks
    }

    // MARK: Field readers

    private mutating func uv() -> UInt64? { cursor.readVarint() }
    private mutating func sv() -> Int64? { cursor.readSignedVarint() }

    /// A varint that is nearly always one byte (a FOLD entry's stack distance and counts): that
    /// byte is taken as it is, without the general reader's word load and bit packing, which
    /// cost 35 instructions a field (a tenth of a report of recurse's 161,000 entries).
    @inline(__always)
    private mutating func smallUV() -> UInt64? {
        if cursor.offset < cursor.count {
            let byte = cursor.base[cursor.offset]
            if byte < 0x80 {
                cursor.offset &+= 1
                return UInt64(byte)
            }
        }
        return cursor.readVarint()
    }
    private mutating func str() -> String? { cursor.readString() }

    /// Whether `count` items of at least `bytesEach` bytes fit in what remains: a count they
    /// cannot fit in is damage, found before anything is reserved for it.
    private mutating func fits(_ count: UInt64, bytesEach: Int, _ what: String) -> Bool {
        guard count <= UInt64(cursor.remaining / bytesEach) else {
            problem = "\(count) \(what) cannot fit in \(cursor.remaining) bytes"
            return false
        }
        return true
    }

    private mutating func stack() -> UInt32? {
        guard let id = cursor.readVarint() else { return nil }
        guard id <= definedStacks else {
            problem = "undefined stack id \(id) (\(definedStacks) defined)"
            return nil
        }
        return UInt32(truncatingIfNeeded: id)
    }

    // MARK: Records

    mutating func modules() -> TraceRecord? {
        guard let generation = uv(), let count = uv() else { return nil }
        // Each module takes at least 4 bytes (path, bias, build-id, segment count).
        guard fits(count, bytesEach: 4, "modules") else { return nil }
        var modules: [Module] = []
        modules.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let path = str(), let bias = uv(), let buildID = cursor.readLengthPrefixedBytes(),
                  let segmentCount = uv() else { return nil }
            guard fits(segmentCount, bytesEach: 3, "segments") else { return nil }
            var segments: [ModuleSegment] = []
            segments.reserveCapacity(Int(segmentCount))
            for _ in 0..<segmentCount {
                guard let start = uv(), let size = uv(), let flags = uv() else { return nil }
                segments.append(ModuleSegment(start: start, size: size, flags: flags))
            }
            modules.append(Module(path: path, bias: bias, buildID: buildID, segments: segments))
        }
        return .modules(generation: generation, modules: modules)
    }

    mutating func mmap() -> TraceRecord? {
        guard let addressArgument = uv(), let length = uv(), let prot = uv(), let flags = uv(), let fd = sv(),
              let offset = uv(), let result = uv(), let errno = uv(), let path = str(), let stack = stack()
        else { return nil }
        return .mmap(addressArgument: addressArgument, length: length, prot: prot, flags: flags, fd: fd,
                     offset: offset, result: result, errno: errno, path: path, stack: stack)
    }

    mutating func munmap() -> TraceRecord? {
        guard let address = uv(), let length = uv(), let result = sv(), let errno = uv(), let stack = stack()
        else { return nil }
        return .munmap(address: address, length: length, result: result, errno: errno, stack: stack)
    }

    mutating func mremap() -> TraceRecord? {
        guard let oldAddress = uv(), let oldSize = uv(), let newSize = uv(), let flags = uv(),
              let newAddressArgument = uv(), let result = uv(), let errno = uv(), let stack = stack()
        else { return nil }
        return .mremap(oldAddress: oldAddress, oldSize: oldSize, newSize: newSize, flags: flags,
                       newAddressArgument: newAddressArgument, result: result, errno: errno, stack: stack)
    }

    mutating func brk() -> TraceRecord? {
        guard let addressArgument = uv(), let result = sv(), let breakBefore = uv(), let breakAfter = uv(),
              let stack = stack() else { return nil }
        return .brk(addressArgument: addressArgument, result: result, breakBefore: breakBefore,
                    breakAfter: breakAfter, stack: stack)
    }

    mutating func sbrk() -> TraceRecord? {
        guard let increment = sv(), let result = uv(), let breakAfter = uv(), let stack = stack() else { return nil }
        return .sbrk(increment: increment, result: result, breakAfter: breakAfter, stack: stack)
    }

    mutating func mallopt() -> TraceRecord? {
        guard let parameter = sv(), let value = sv(), let result = sv() else { return nil }
        return .mallopt(parameter: parameter, value: value, result: result)
    }

    mutating func sample() -> TraceRecord? {
        guard let vmPages = uv(), let rssPages = uv(), let sharedPages = uv() else { return nil }
        return .sample(vmPages: vmPages, rssPages: rssPages, sharedPages: sharedPages)
    }

    mutating func mark() -> TraceRecord? {
        guard let name = str(), let source = uv() else { return nil }
        return .mark(name: name, source: source)
    }

    mutating func threadName() -> TraceRecord? {
        guard let tid = uv(), let name = str() else { return nil }
        return .threadName(tid: tid, name: name)
    }

    mutating func fork() -> TraceRecord? {
        guard let childPid = uv() else { return nil }
        return .fork(childPid: childPid)
    }

    mutating func exec() -> TraceRecord? {
        guard let path = str() else { return nil }
        return .exec(path: path)
    }

    mutating func note() -> TraceRecord? {
        guard let level = uv(), let text = str() else { return nil }
        return .note(level: level, text: text)
    }

    mutating func fold() -> TraceRecord? {
        guard let first = uv(), let last = uv(), let peak = uv(), let lowHeap = uv(), let count = uv() else {
            return nil
        }
        guard fits(count, bytesEach: 6, "entries") else { return nil }
        var entries: [FoldEntry] = []
        entries.reserveCapacity(Int(count))
        var stack: UInt64 = 0
        for _ in 0..<count {
            guard let delta = smallUV(), let info = cursor.readByte(), let blocks = smallUV(), let bytes = uv(),
                  let temporary = smallUV(), let byRealloc = smallUV() else { return nil }
            stack &+= delta
            guard stack >= delta, stack <= definedStacks else {
                problem = "undefined stack id \(stack) (\(definedStacks) defined)"
                return nil
            }
            guard let function = AllocFunction(rawValue: info & 0x0F), info >> 6 == 0,
                  let path = AllocPath(rawValue: (info >> 4) & 0x03) else {
                problem = "entry with unknown function or path (info \(hex(info)))"
                return nil
            }
            entries.append(FoldEntry(stack: UInt32(truncatingIfNeeded: stack), function: function, path: path,
                                     blocks: blocks, bytes: bytes, temporary: temporary, releasedByRealloc: byRealloc))
        }
        return .fold(FoldSummary(firstMicroseconds: first, lastMicroseconds: last, peakBytes: peak,
                                 lowestHeapAddress: lowHeap, entries: entries))
    }

    mutating func reach() -> TraceRecord? {
        guard let flags = uv(), let scanMicroseconds = uv(), let rootBytes = uv(), let scannedBytes = uv(),
              let count = uv() else { return nil }
        guard fits(count, bytesEach: 1, "entries") else { return nil }
        var entries: [ReachEntry] = []
        entries.reserveCapacity(Int(count))
        var address: UInt64 = 0
        for _ in 0..<count {
            guard let entry = uv() else { return nil }
            // Ascending order means every distance is positive (the first one, from 0, too).
            let (next, overflow) = address.addingReportingOverflow(entry >> 2)
            guard entry >> 2 > 0, !overflow, next <= ReachEntry.maximumAddress else {
                problem = entry >> 2 == 0 ? "entry at \(hex(address)) not above the previous one"
                                          : "entry address beyond 62 bits"
                return nil
            }
            address = next
            entries.append(ReachEntry(packed: address << 2 | entry & 3))
        }
        return .reach(ReachRecord(flags: ReachScanFlags(rawValue: flags), scanMicroseconds: scanMicroseconds,
                                  rootBytes: rootBytes, scannedBytes: scannedBytes, entries: entries))
    }

    mutating func end() -> TraceRecord? {
        guard let allocs = uv(), let frees = uv(), let reallocs = uv(), let mappings = uv(), let stacks = uv(),
              let chunks = uv(), let untraced = uv() else { return nil }
        var signal: EndSignal?
        if !cursor.isAtEnd {
            guard let number = uv(), let code = sv(), let address = uv(), let tid = uv(), let stack = stack() else {
                return nil
            }
            signal = EndSignal(number: number, code: code, faultAddress: address, tid: tid, stack: stack)
        }
        return .end(TraceEnd(allocs: allocs, frees: frees, reallocs: reallocs, mappings: mappings, stacks: stacks,
                             chunks: chunks, untraced: untraced, signal: signal))
    }
}
