// The typed records of a leaktrace trace, versions 1 and 2 (docs/trace-format.md).
// These types are the reader's output and every later stage's input.

/// The function that produced an allocation (ALLOC info, low 4 bits).
public enum AllocFunction: UInt8, Sendable, CaseIterable, Codable {
    case malloc = 0, calloc, realloc, reallocarray, posixMemalign, alignedAlloc, memalign, valloc, pvalloc

    public var name: String {
        switch self {
        case .malloc: return "malloc"
        case .calloc: return "calloc"
        case .realloc: return "realloc"
        case .reallocarray: return "reallocarray"
        case .posixMemalign: return "posix_memalign"
        case .alignedAlloc: return "aligned_alloc"
        case .memalign: return "memalign"
        case .valloc: return "valloc"
        case .pvalloc: return "pvalloc"
        }
    }
}

/// The part of glibc's allocator that served a block (ALLOC info, bits 4-5).
public enum AllocPath: UInt8, Sendable, CaseIterable, Codable {
    /// The process's allocator is not glibc's, so the chunk header cannot be read.
    case unknown = 0
    /// glibc's main arena: the brk heap.
    case heap = 1
    /// A chunk glibc mapped on its own because the request reached M_MMAP_THRESHOLD.
    case mmapThreshold = 2
    /// A thread arena (NON_MAIN_ARENA), itself carved from mmapped heaps.
    case threadArena = 3

    public var name: String {
        switch self {
        case .unknown: return "unknown"
        case .heap: return "heap"
        case .mmapThreshold: return "mmap-threshold"
        case .threadArena: return "thread-arena"
        }
    }
}

/// What a realloc call did (REALLOC info, low 4 bits).
public enum ReallocStatus: UInt8, Sendable, Codable {
    /// The new block is live; the old one (if any) is gone.
    case movedOrResized = 0
    /// The call failed and the old block is still live.
    case failed = 1
    /// `realloc(old, 0)` freed the old block and returned NULL.
    case freed = 2
}

/// One loaded object in a MODULES snapshot.
public struct ModuleSegment: Equatable, Sendable {
    public var start: UInt64
    public var size: UInt64
    /// ELF p_flags: PF_X = 1, PF_W = 2, PF_R = 4.
    public var flags: UInt64
    public init(start: UInt64, size: UInt64, flags: UInt64) {
        self.start = start; self.size = size; self.flags = flags
    }
    public var isExecutable: Bool { flags & 1 != 0 }
    public func contains(_ address: UInt64) -> Bool { address >= start && address - start < size }
}

public struct Module: Equatable, Sendable {
    public var path: String
    public var bias: UInt64
    public var buildID: [UInt8]
    public var segments: [ModuleSegment]
    public init(path: String, bias: UInt64, buildID: [UInt8], segments: [ModuleSegment]) {
        self.path = path; self.bias = bias; self.buildID = buildID; self.segments = segments
    }
    public var buildIDHex: String { buildID.map { String(format2hex: $0) }.joined() }
}

extension String {
    init(format2hex byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}

/// The header at the start of every trace. Fields missing from the file are nil.
public struct TraceHeader: Equatable, Sendable {
    public var version: UInt16 = 1
    public var pointerSize: UInt64?
    public var pageSize: UInt64?
    public var pid: UInt64?
    public var ppid: UInt64?
    public var program: String?
    public var arguments: [String] = []
    public var startRealtimeMicroseconds: UInt64?
    public var clock: String?
    public var libcVersion: String?
    public var mmapThreshold: UInt64?
    /// 1 when the process's allocator is glibc's, 0 when it is not (paths are then unknown).
    public var allocatorKind: UInt64?
    public var mallocEnvironment: [String] = []
    public var parentTrace: String?
    public var parentForkOffset: UInt64?
    public var stackDepth: UInt64?
    public var sampleIntervalMilliseconds: UInt64?
    public var allocatorName: String?
    public var tracerVersion: String?
    /// Header key 19: 0 every event written, 1 short-lived blocks folded (nil: every event).
    public var events: UInt64?
    /// Header key 20: the most allocator events the writer held back to fold.
    public var foldWindow: UInt64?
    public init() {}

    /// True when the writer left short-lived blocks out and counted them in FOLD records.
    public var foldsShortLivedBlocks: Bool { events == 1 }
    /// How the trace was written: `folded` or `all` (every event).
    public var eventsMode: String { foldsShortLivedBlocks ? "folded" : "all" }
}

/// One FOLD entry: blocks of one stack, function and path the writer did not write.
public struct FoldEntry: Equatable, Sendable {
    public var stack: UInt32
    public var function: AllocFunction
    public var path: AllocPath
    /// Blocks allocated and freed within the writer's window (an ALLOC and a FREE each).
    public var blocks: UInt64
    /// Their sizes added up.
    public var bytes: UInt64
    /// Temporary allocations of blocks like these, folded or written.
    public var temporary: UInt64
    /// The folded blocks a realloc released (the others a free did).
    public var releasedByRealloc: UInt64
    public init(stack: UInt32, function: AllocFunction, path: AllocPath, blocks: UInt64, bytes: UInt64,
                temporary: UInt64, releasedByRealloc: UInt64 = 0) {
        self.stack = stack; self.function = function; self.path = path
        self.blocks = blocks; self.bytes = bytes; self.temporary = temporary; self.releasedByRealloc = releasedByRealloc
    }
}

/// A FOLD record: what the writer counted instead of writing since the previous one.
public struct FoldSummary: Equatable, Sendable {
    public var firstMicroseconds: UInt64
    public var lastMicroseconds: UInt64
    /// The most bytes of the folded blocks live at one point of the event stream.
    public var peakBytes: UInt64
    /// The lowest address of a folded heap-path block, 0 if none.
    public var lowestHeapAddress: UInt64
    public var entries: [FoldEntry]
    public init(firstMicroseconds: UInt64, lastMicroseconds: UInt64, peakBytes: UInt64, lowestHeapAddress: UInt64,
                entries: [FoldEntry]) {
        self.firstMicroseconds = firstMicroseconds; self.lastMicroseconds = lastMicroseconds
        self.peakBytes = peakBytes; self.lowestHeapAddress = lowestHeapAddress; self.entries = entries
    }
}

/// A live block's reachability at exit, as valgrind's memcheck defines it (REACH entry category).
public enum Reachability: UInt8, Sendable, CaseIterable, Codable {
    /// A chain of start pointers from a root reaches it.
    case stillReachable = 0
    /// Reached only through a pointer into its middle.
    case possiblyLost = 1
    /// Not reachable, but pointed to from a lost block.
    case indirectlyLost = 2
    /// Reachable from nothing but lost blocks (of a lost cycle, the lowest block).
    case definitelyLost = 3

    /// The words valgrind uses: `definitely lost`, `indirectly lost`, `possibly lost`, `still reachable`.
    public var name: String {
        switch self {
        case .stillReachable: return "still reachable"
        case .possiblyLost: return "possibly lost"
        case .indirectlyLost: return "indirectly lost"
        case .definitelyLost: return "definitely lost"
        }
    }
}

/// What a REACH record says about the scan (its `flags`).
public struct ReachScanFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// The scan ran; without it the record has no entries and reachability is unknown.
    public static let scanned = ReachScanFlags(rawValue: 1 << 0)
    /// glibc's `__libc_freeres` was called before the scan.
    public static let libcFreeresCalled = ReachScanFlags(rawValue: 1 << 1)
    /// libstdc++'s `__gnu_cxx::__freeres` was called before the scan.
    public static let gnuCxxFreeresCalled = ReachScanFlags(rawValue: 1 << 2)
    /// Other threads were running: their registers were not read, their stacks scanned whole.
    public static let otherThreadsRunning = ReachScanFlags(rawValue: 1 << 3)
    /// The scan ran in a fatal signal's handler.
    public static let inFatalSignalHandler = ReachScanFlags(rawValue: 1 << 4)
    /// The scan was refused (out of memory, or memory could not be read safely).
    public static let refused = ReachScanFlags(rawValue: 1 << 5)
}

/// One REACH entry: a live block's (or mapping piece's) address and its category, packed in one
/// word (`address << 2 | category`) because a trace holds one per block live at exit.
public struct ReachEntry: Equatable, Comparable, Sendable {
    /// `address << 2 | category`: ordering the words orders the addresses.
    public let packed: UInt64
    /// The highest address an entry can hold (62 bits, far above any user-space address).
    public static let maximumAddress: UInt64 = .max >> 2

    public init(address: UInt64, category: Reachability) {
        precondition(address <= Self.maximumAddress, "REACH entry address beyond 62 bits")
        packed = address << 2 | UInt64(category.rawValue)
    }
    /// `address << 2 | category`, as `packed` gives it back.
    init(packed: UInt64) { self.packed = packed }
    public var address: UInt64 { packed >> 2 }
    public var category: Reachability { Reachability(rawValue: UInt8(truncatingIfNeeded: packed & 3))! }
    public static func < (lhs: ReachEntry, rhs: ReachEntry) -> Bool { lhs.packed < rhs.packed }
}

/// A REACH record: the scan's facts and a part of the entries, in ascending address order.
public struct ReachRecord: Equatable, Sendable {
    public var flags: ReachScanFlags
    /// How long the scan took, microseconds.
    public var scanMicroseconds: UInt64
    /// Bytes of roots scanned (writable mappings of loaded objects, stacks, TLS, registers).
    public var rootBytes: UInt64
    /// Bytes of live blocks scanned.
    public var scannedBytes: UInt64
    public var entries: [ReachEntry]
    public init(flags: ReachScanFlags, scanMicroseconds: UInt64, rootBytes: UInt64, scannedBytes: UInt64,
                entries: [ReachEntry]) {
        self.flags = flags; self.scanMicroseconds = scanMicroseconds; self.rootBytes = rootBytes
        self.scannedBytes = scannedBytes; self.entries = entries
    }
}

/// MARK record sources.
public enum MarkSource {
    public static let program: UInt64 = 0
    public static let signal: UInt64 = 1
    /// Written by the tracer at exit just before it calls the runtimes' cleanup functions.
    public static let runtimeCleanup: UInt64 = 2

    /// `program`, `signal`, `runtime-cleanup`, or the number.
    public static func name(_ source: UInt64) -> String {
        switch source {
        case program: return "program"
        case signal: return "signal"
        case runtimeCleanup: return "runtime-cleanup"
        default: return "\(source)"
        }
    }
}

/// Counts from the END record of a complete trace, and the signal that ended the process when
/// one did.
public struct TraceEnd: Equatable, Sendable {
    public var allocs: UInt64
    public var frees: UInt64
    public var reallocs: UInt64
    public var mappings: UInt64
    public var stacks: UInt64
    public var chunks: UInt64
    public var untraced: UInt64
    /// Set when a signal ended the process (END's optional fields); nil when it exited.
    public var signal: EndSignal?
    public init(allocs: UInt64, frees: UInt64, reallocs: UInt64, mappings: UInt64, stacks: UInt64,
                chunks: UInt64, untraced: UInt64, signal: EndSignal? = nil) {
        self.allocs = allocs; self.frees = frees; self.reallocs = reallocs; self.mappings = mappings
        self.stacks = stacks; self.chunks = chunks; self.untraced = untraced; self.signal = signal
    }
}

/// The signal that ended the process, from END: its number, `si_code`, the faulting address
/// (0 unless the kernel raised it at an instruction), the thread that took it, and that
/// thread's stack at the signal (frame 0 is the interrupted instruction itself, not a return
/// address; 0: no stack).
public struct EndSignal: Equatable, Sendable {
    public var number: UInt64
    public var code: Int64
    public var faultAddress: UInt64
    public var tid: UInt64
    public var stack: UInt32
    public init(number: UInt64, code: Int64, faultAddress: UInt64, tid: UInt64, stack: UInt32) {
        self.number = number; self.code = code; self.faultAddress = faultAddress; self.tid = tid; self.stack = stack
    }

    /// True when the kernel raised it at an instruction (a fault: `si_code` > 0 for SIGSEGV,
    /// SIGBUS, SIGILL, SIGFPE): frame 0 is the faulting instruction.
    public var isFault: Bool { code > 0 && [4, 7, 8, 11].contains(number) }

    /// Linux x86-64 signal names; `SIGRTMIN+n` for the real-time ones, `signal n` otherwise.
    public var name: String { Self.name(of: number) }

    public static func name(of number: UInt64) -> String {
        let names = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
                     "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD",
                     "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ",
                     "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS"]
        if number >= 1 && number <= UInt64(names.count) { return names[Int(number) - 1] }
        if number >= 34 && number <= 64 { return number == 34 ? "SIGRTMIN" : "SIGRTMIN+\(number - 34)" }
        return "signal \(number)"
    }

    /// How the signal was sent, from `si_code`: `fault` (raised by the kernel at an
    /// instruction), `kill` (kill(2) or the kernel on the process's behalf, as for SIGPIPE),
    /// `tkill` (raise, abort, pthread_kill), `sigqueue`, `timer`, `kernel`, or `code n`.
    public var origin: String {
        if isFault { return "fault" }
        switch code {
        case 0: return "kill"
        case -6: return "tkill"
        case -1: return "sigqueue"
        case -2: return "timer"
        case 0x80: return "kernel"
        default: return "code \(code)"
        }
    }
}

/// Sentinel for a failed mmap/mremap/sbrk result (`2^64-1`).
public let failedAddress: UInt64 = .max

/// One decoded record. Thread and time context (THREAD, TIME) is folded into `RecordContext`
/// by the reader and also delivered as records, so a dump shows them.
public enum TraceRecord: Equatable, Sendable {
    case alloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64, stack: UInt32)
    case free(address: UInt64)
    case reallocRelease(address: UInt64)
    case realloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool,
                 old: UInt64, new: UInt64, size: UInt64, stack: UInt32)
    case time(microseconds: UInt64)
    case thread(tid: UInt64)
    /// A stack trie node; `id` is implicit in the file and supplied by the reader.
    case stack(id: UInt32, parent: UInt32, ip: UInt64)
    case modules(generation: UInt64, modules: [Module])
    case mmap(addressArgument: UInt64, length: UInt64, prot: UInt64, flags: UInt64, fd: Int64,
              offset: UInt64, result: UInt64, errno: UInt64, path: String, stack: UInt32)
    case munmap(address: UInt64, length: UInt64, result: Int64, errno: UInt64, stack: UInt32)
    case mremap(oldAddress: UInt64, oldSize: UInt64, newSize: UInt64, flags: UInt64,
                newAddressArgument: UInt64, result: UInt64, errno: UInt64, stack: UInt32)
    case brk(addressArgument: UInt64, result: Int64, breakBefore: UInt64, breakAfter: UInt64, stack: UInt32)
    case sbrk(increment: Int64, result: UInt64, breakAfter: UInt64, stack: UInt32)
    case mallopt(parameter: Int64, value: Int64, result: Int64)
    case sample(vmPages: UInt64, rssPages: UInt64, sharedPages: UInt64)
    case mark(name: String, source: UInt64)
    case threadName(tid: UInt64, name: String)
    case fork(childPid: UInt64)
    case exec(path: String)
    case note(level: UInt64, text: String)
    /// Short-lived blocks counted, not written (version 2).
    case fold(FoldSummary)
    /// Reachability of the blocks live at exit (version 2, optional; several may follow each other).
    case reach(ReachRecord)
    case end(TraceEnd)
    /// A sized record with a tag this reader does not know (skipped, kept for dumps).
    case unknown(tag: UInt8, length: Int)
}

/// mallopt parameter numbers from glibc's <malloc.h>.
public enum MalloptParameter {
    public static let trimThreshold: Int64 = -1
    public static let topPad: Int64 = -2
    public static let mmapThreshold: Int64 = -3
    public static let mmapMax: Int64 = -4
    public static let arenaTest: Int64 = -7
    public static let arenaMax: Int64 = -8

    public static func name(_ parameter: Int64) -> String {
        switch parameter {
        case trimThreshold: return "M_TRIM_THRESHOLD"
        case topPad: return "M_TOP_PAD"
        case mmapThreshold: return "M_MMAP_THRESHOLD"
        case mmapMax: return "M_MMAP_MAX"
        case arenaTest: return "M_ARENA_TEST"
        case arenaMax: return "M_ARENA_MAX"
        default: return "param(\(parameter))"
        }
    }
}

/// mmap flag and protection bits from <sys/mman.h> (x86-64 Linux).
public enum MapBits {
    public static let shared: UInt64 = 0x01
    public static let `private`: UInt64 = 0x02
    public static let sharedValidate: UInt64 = 0x03
    public static let fixed: UInt64 = 0x10
    public static let anonymous: UInt64 = 0x20
    public static let protRead: UInt64 = 1
    public static let protWrite: UInt64 = 2
    public static let protExec: UInt64 = 4
}
