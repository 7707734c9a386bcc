// One line of text per record and per header field, for `leakreport dump`. The shapes are stable
// and greppable: the record name first, then `key=value` pairs, addresses in hex, strings quoted.

extension ReallocStatus {
    /// The status as written in dumps: `moved-or-resized`, `failed` or `freed`.
    public var name: String {
        switch self {
        case .movedOrResized: return "moved-or-resized"
        case .failed: return "failed"
        case .freed: return "freed"
        }
    }
}

extension TraceRecord {
    /// One line of text for `leakreport dump`, e.g. `ALLOC malloc heap 0x5581f0 size=24 stack=3`.
    public var dumpLine: String {
        switch self {
        case .alloc(let function, let path, let address, let size, let stack):
            return "ALLOC \(function.name) \(path.name) \(hex(address)) size=\(size) stack=\(stack)"
        case .free(let address):
            return "FREE \(hex(address))"
        case .reallocRelease(let address):
            return "REALLOC_RELEASE \(hex(address))"
        case .realloc(let status, let path, let isReallocarray, let old, let new, let size, let stack):
            let function = isReallocarray ? "reallocarray" : "realloc"
            return "REALLOC \(function) \(status.name) \(path.name) old=\(hex(old)) new=\(hex(new)) "
                + "size=\(size) stack=\(stack)"
        case .time(let microseconds):
            return "TIME us=\(microseconds)"
        case .thread(let tid):
            return "THREAD tid=\(tid)"
        case .stack(let id, let parent, let ip):
            return "STACK id=\(id) parent=\(parent) ip=\(hex(ip))"
        case .modules(let generation, let modules):
            return Self.modulesLine(generation: generation, modules: modules)
        case .mmap(let addressArgument, let length, let prot, let flags, let fd, let offset, let result,
                   let errno, let path, let stack):
            var line = "MMAP addr=\(hex(addressArgument)) len=\(length) prot=\(MapBits.protectionName(prot)) "
                + "flags=\(MapBits.mmapFlagsName(flags)) fd=\(fd)"
            if fd >= 0 || offset != 0 { line += " offset=\(offset)" }
            if !path.isEmpty { line += " path=\(quoted(path))" }
            line += result == failedAddress ? " -> MAP_FAILED errno=\(errno)" : " -> \(hex(result))"
            return line + " stack=\(stack)"
        case .munmap(let address, let length, let result, let errno, let stack):
            let outcome = result == 0 ? "0" : "\(result) errno=\(errno)"
            return "MUNMAP addr=\(hex(address)) len=\(length) -> \(outcome) stack=\(stack)"
        case .mremap(let oldAddress, let oldSize, let newSize, let flags, let newAddressArgument, let result,
                     let errno, let stack):
            let outcome = result == failedAddress ? "MAP_FAILED errno=\(errno)" : hex(result)
            return "MREMAP old=\(hex(oldAddress)) old-size=\(oldSize) new-size=\(newSize) "
                + "flags=\(MapBits.mremapFlagsName(flags)) new-addr=\(hex(newAddressArgument)) -> \(outcome) "
                + "stack=\(stack)"
        case .brk(let addressArgument, let result, let breakBefore, let breakAfter, let stack):
            return "BRK addr=\(hex(addressArgument)) -> \(result) before=\(hex(breakBefore)) "
                + "after=\(hex(breakAfter)) stack=\(stack)"
        case .sbrk(let increment, let result, let breakAfter, let stack):
            let outcome = result == failedAddress ? "failed" : hex(result)
            return "SBRK increment=\(increment) -> \(outcome) after=\(hex(breakAfter)) stack=\(stack)"
        case .mallopt(let parameter, let value, let result):
            return "MALLOPT \(MalloptParameter.name(parameter)) value=\(value) -> \(result)"
        case .sample(let vmPages, let rssPages, let sharedPages):
            return "SAMPLE vm-pages=\(vmPages) rss-pages=\(rssPages) shared-pages=\(sharedPages)"
        case .mark(let name, let source):
            return "MARK \(quoted(name)) source=\(MarkSource.name(source))"
        case .threadName(let tid, let name):
            return "THREAD_NAME tid=\(tid) name=\(quoted(name))"
        case .fork(let childPid):
            return "FORK child-pid=\(childPid)"
        case .exec(let path):
            return "EXEC path=\(quoted(path))"
        case .note(let level, let text):
            let levelName = level == 0 ? "info" : level == 1 ? "warning" : "level=\(level)"
            return "NOTE \(levelName) \(quoted(text))"
        case .fold(let fold):
            let entries = fold.entries.map { entry in
                "stack=\(entry.stack) \(entry.function.name) \(entry.path.name) blocks=\(entry.blocks) "
                    + "bytes=\(entry.bytes) temporary=\(entry.temporary) by-realloc=\(entry.releasedByRealloc)"
            }
            return "FOLD first-us=\(fold.firstMicroseconds) last-us=\(fold.lastMicroseconds) "
                + "peak-bytes=\(fold.peakBytes) low-heap=\(hex(fold.lowestHeapAddress)) count=\(fold.entries.count)"
                + (entries.isEmpty ? "" : ": " + entries.joined(separator: "; "))
        case .reach(let reach):
            return Self.reachLine(reach)
        case .end(let end):
            return "END allocs=\(end.allocs) frees=\(end.frees) reallocs=\(end.reallocs) mappings=\(end.mappings) "
                + "stacks=\(end.stacks) chunks=\(end.chunks) untraced=\(end.untraced)"
                + (end.signal.map {
                    " signal=\($0.name) code=\($0.code) fault-addr=\(hex($0.faultAddress)) tid=\($0.tid) stack=\($0.stack)"
                } ?? "")
        case .unknown(let tag, let length):
            return "UNKNOWN tag=\(hex(tag)) length=\(length)"
        }
    }

    /// `REACH flags=scanned|libc-freeres scan-us=850 root-bytes=... scanned-bytes=... count=12:
    /// definite=2 indirect=3 possible=0 reachable=7`: the entries counted by category, not listed
    /// (a trace holds one per block live at exit).
    private static func reachLine(_ reach: ReachRecord) -> String {
        var counts = [Int](repeating: 0, count: Reachability.allCases.count)
        for entry in reach.entries { counts[Int(entry.category.rawValue)] += 1 }
        let byCategory = "definite=\(counts[3]) indirect=\(counts[2]) possible=\(counts[1]) reachable=\(counts[0])"
        return "REACH flags=\(reach.flags.names) scan-us=\(reach.scanMicroseconds) root-bytes=\(reach.rootBytes) "
            + "scanned-bytes=\(reach.scannedBytes) count=\(reach.entries.count)"
            + (reach.entries.isEmpty ? "" : ": " + byCategory)
    }

    /// `MODULES generation=2 count=2: /bin/app bias=0x... build-id=ab12 segments=[0x...+0x1000 r-x]; ...`
    private static func modulesLine(generation: UInt64, modules: [Module]) -> String {
        let described = modules.map { module -> String in
            let segments = module.segments.map { segment in
                "\(hex(segment.start))+\(hex(segment.size)) \(MapBits.segmentFlagsName(segment.flags))"
            }
            let buildID = module.buildID.isEmpty ? "none" : module.buildIDHex
            return "\(quoted(module.path)) bias=\(hex(module.bias)) build-id=\(buildID) "
                + "segments=[\(segments.joined(separator: ", "))]"
        }
        let list = described.isEmpty ? "" : ": " + described.joined(separator: "; ")
        return "MODULES generation=\(generation) count=\(modules.count)\(list)"
    }
}

extension TraceHeader {
    /// The header as `name: value` lines (format version first, then the fields present).
    public var dumpLines: [String] {
        var lines = ["format-version: \(version)"]
        func add(_ name: String, _ value: String?) {
            if let value { lines.append("\(name): \(value)") }
        }
        add("pointer-size", pointerSize.map { "\($0)" })
        add("page-size", pageSize.map { "\($0)" })
        add("pid", pid.map { "\($0)" })
        add("ppid", ppid.map { "\($0)" })
        add("program", program.map(quoted))
        if !arguments.isEmpty { add("argv", arguments.map(quoted).joined(separator: " ")) }
        add("start-realtime-us", startRealtimeMicroseconds.map { "\($0)" })
        add("clock", clock.map(quoted))
        add("libc-version", libcVersion.map(quoted))
        add("mmap-threshold", mmapThreshold.map { "\($0)" })
        add("allocator", allocatorKind.map { $0 == 1 ? "1 (glibc)" : $0 == 0 ? "0 (not glibc)" : "\($0)" })
        if !mallocEnvironment.isEmpty { add("malloc-env", mallocEnvironment.map(quoted).joined(separator: " ")) }
        add("parent-trace", parentTrace.map(quoted))
        add("parent-fork-offset", parentForkOffset.map { "\($0)" })
        add("stack-depth", stackDepth.map { "\($0)" })
        add("sample-interval-ms", sampleIntervalMilliseconds.map { "\($0)" })
        add("allocator-name", allocatorName.map(quoted))
        add("tracer-version", tracerVersion.map(quoted))
        lines.append("events: " + (foldsShortLivedBlocks ? "folded (short-lived blocks counted in FOLD records)"
                                                         : "all (every allocator event written)"))
        add("fold-window", foldWindow.map { "\($0)" })
        return lines
    }
}

// MARK: - Names of bit sets

extension ReachScanFlags {
    /// The flags as `scanned|libc-freeres|cxx-freeres|threads-running|in-signal-handler|refused`;
    /// unnamed bits follow as `0x...`, none as `0`.
    public var names: String {
        let named: [(ReachScanFlags, String)] = [
            (.scanned, "scanned"), (.libcFreeresCalled, "libc-freeres"), (.gnuCxxFreeresCalled, "cxx-freeres"),
            (.otherThreadsRunning, "threads-running"), (.inFatalSignalHandler, "in-signal-handler"),
            (.refused, "refused"),
        ]
        var parts = named.filter { contains($0.0) }.map(\.1)
        let rest = rawValue & ~UInt64(0x3F)
        if rest != 0 { parts.append(hex(rest)) }
        return parts.isEmpty ? "0" : parts.joined(separator: "|")
    }
}

extension MapBits {
    /// `rwx` letters with `-` for a missing right; other bits follow as `|0x...`.
    public static func protectionName(_ prot: UInt64) -> String {
        var name = (prot & protRead != 0 ? "r" : "-") + (prot & protWrite != 0 ? "w" : "-")
            + (prot & protExec != 0 ? "x" : "-")
        let rest = prot & ~(protRead | protWrite | protExec)
        if rest != 0 { name += "|" + hex(rest) }
        return name
    }

    /// ELF segment flags (PF_R = 4, PF_W = 2, PF_X = 1) as `rwx` letters.
    public static func segmentFlagsName(_ flags: UInt64) -> String {
        var name = (flags & 4 != 0 ? "r" : "-") + (flags & 2 != 0 ? "w" : "-") + (flags & 1 != 0 ? "x" : "-")
        let rest = flags & ~UInt64(7)
        if rest != 0 { name += "|" + hex(rest) }
        return name
    }

    private static let mmapFlagNames: [(UInt64, String)] = [
        (0x10, "fixed"), (0x20, "anonymous"), (0x100, "growsdown"), (0x800, "denywrite"), (0x1000, "executable"),
        (0x2000, "locked"), (0x4000, "noreserve"), (0x8000, "populate"), (0x10000, "nonblock"), (0x20000, "stack"),
        (0x40000, "hugetlb"), (0x80000, "sync"), (0x100000, "fixed_noreplace"),
    ]

    /// mmap flags as `private|anonymous`; unnamed bits follow as `0x...`.
    public static func mmapFlagsName(_ flags: UInt64) -> String {
        var names: [String] = []
        switch flags & 0x03 {
        case shared: names.append("shared")
        case `private`: names.append("private")
        case sharedValidate: names.append("shared_validate")
        default: break
        }
        var rest = flags & ~UInt64(0x03)
        for (bit, name) in mmapFlagNames where rest & bit != 0 {
            names.append(name)
            rest &= ~bit
        }
        if rest != 0 { names.append(hex(rest)) }
        return names.isEmpty ? "0" : names.joined(separator: "|")
    }

    /// mremap flags as `maymove|fixed|dontunmap`; unnamed bits follow as `0x...`.
    public static func mremapFlagsName(_ flags: UInt64) -> String {
        var names: [String] = []
        var rest = flags
        for (bit, name) in [(UInt64(1), "maymove"), (2, "fixed"), (4, "dontunmap")] where rest & bit != 0 {
            names.append(name)
            rest &= ~bit
        }
        if rest != 0 { names.append(hex(rest)) }
        return names.isEmpty ? "0" : names.joined(separator: "|")
    }
}

// MARK: - Quoting

/// The string in double quotes, with `"`, `\` and control characters escaped so that it stays on
/// one line whatever it holds.
func quoted(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        case "\r": result += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                result += "\\x" + String(format2hex: UInt8(scalar.value))
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result + "\""
}
