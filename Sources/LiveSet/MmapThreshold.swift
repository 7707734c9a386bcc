import TraceFormat

// glibc decides between the brk heap (or a thread arena) and a private mmap for each request by
// comparing the request's chunk size with M_MMAP_THRESHOLD. The threshold starts at 128 KiB and,
// unless the program or its environment fixed it, rises when the program frees an mmapped chunk
// bigger than it (glibc's `free`: `chunksize(p) > mp_.mmap_threshold && chunksize(p) <=
// DEFAULT_MMAP_THRESHOLD_MAX` sets the threshold to that chunk size). That is why a 200 KiB
// block can come from the heap: an earlier free of a bigger mmapped block raised the bar.

/// Why the mmap threshold changed.
public enum ThresholdChangeReason: Equatable, Sendable {
    /// `mallopt(M_MMAP_THRESHOLD, value)` succeeded.
    case mallopt
    /// glibc raised it when the program freed an mmapped block (request size and chunk size).
    case freedMmappedBlock(requestSize: UInt64, chunkSize: UInt64)
}

/// One move of the mmap threshold.
public struct ThresholdChange: Equatable, Sendable {
    public var time: UInt64
    public var oldValue: UInt64
    public var newValue: UInt64
    public var reason: ThresholdChangeReason
    public init(time: UInt64, oldValue: UInt64, newValue: UInt64, reason: ThresholdChangeReason) {
        self.time = time; self.oldValue = oldValue; self.newValue = newValue; self.reason = reason
    }
}

/// Follows glibc's M_MMAP_THRESHOLD through a trace.
public struct MmapThresholdTracker: Sendable {
    /// glibc's default threshold (DEFAULT_MMAP_THRESHOLD_MIN).
    public static let defaultThreshold: UInt64 = 128 * 1024
    /// DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: the dynamic threshold never rises above it.
    public static let dynamicMaximum: UInt64 = 32 * 1024 * 1024
    /// glibc's SIZE_SZ on 64-bit.
    static let sizeFieldBytes: UInt64 = 8
    /// Oldest changes are kept, later ones only counted, so a program calling mallopt in a
    /// loop cannot make the analyzer's memory grow with the event count.
    public static let historyLimit = 4096

    public private(set) var initial: UInt64
    public private(set) var current: UInt64
    /// False once the program or its environment set any of the parameters that make glibc
    /// stop adjusting the threshold (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD,
    /// M_MMAP_MAX, or their MALLOC_*_ / GLIBC_TUNABLES forms).
    public private(set) var isDynamic: Bool
    /// Why the threshold became fixed, when it did (for the report).
    public private(set) var fixedBecause: String?
    /// Time at which `mallopt(M_MMAP_MAX, 0)` turned off mmapped chunks, if it did.
    public private(set) var mmapDisabledAt: UInt64?
    public private(set) var history: [ThresholdChange] = []
    public private(set) var droppedChanges = 0
    public let pageSize: UInt64

    /// - Parameters:
    ///   - headerThreshold: the header's mmap-threshold (nil: glibc's default).
    ///   - mallocEnvironment: the header's malloc-env entries (`NAME=value`).
    public init(headerThreshold: UInt64?, pageSize: UInt64?, mallocEnvironment: [String]) {
        initial = headerThreshold ?? Self.defaultThreshold
        current = initial
        let page = pageSize ?? 4096
        self.pageSize = page > 0 && page & (page - 1) == 0 ? page : 4096
        isDynamic = true
        if let fixingEntry = Self.fixingEnvironmentEntry(mallocEnvironment) {
            isDynamic = false
            fixedBecause = "environment \(fixingEntry)"
        }
    }

    /// The first environment entry that turns off glibc's dynamic threshold, if any.
    static func fixingEnvironmentEntry(_ environment: [String]) -> String? {
        let variables = ["MALLOC_MMAP_THRESHOLD_=", "MALLOC_TRIM_THRESHOLD_=", "MALLOC_TOP_PAD_=",
                         "MALLOC_MMAP_MAX_="]
        let tunables = ["glibc.malloc.mmap_threshold=", "glibc.malloc.trim_threshold=",
                        "glibc.malloc.top_pad=", "glibc.malloc.mmap_max="]
        for entry in environment {
            if variables.contains(where: { entry.hasPrefix($0) }) { return entry }
            if entry.hasPrefix("GLIBC_TUNABLES="), tunables.contains(where: { entry.contains($0) }) {
                return entry
            }
        }
        return nil
    }

    /// glibc's size for the chunk of an mmapped block of `requestSize` bytes: the request plus
    /// its size field, rounded to 16 (`request2size`, at least 32), plus one more size field,
    /// rounded up to a page (`sysmalloc_mmap`).
    public func mmappedChunkSize(requestSize: UInt64) -> UInt64 {
        let (padded, overflow) = requestSize.addingReportingOverflow(Self.sizeFieldBytes + 15)
        guard !overflow else { return .max }
        let normal = max(32, padded & ~15)
        let withHeader = normal &+ Self.sizeFieldBytes
        guard withHeader <= UInt64.max - pageSize else { return .max }
        return (withHeader + pageSize - 1) & ~(pageSize - 1)
    }

    /// glibc's normalized request size (`request2size`), the figure compared with the threshold.
    public static func normalizedRequest(_ requestSize: UInt64) -> UInt64 {
        let (padded, overflow) = requestSize.addingReportingOverflow(sizeFieldBytes + 15)
        return overflow ? .max : max(32, padded & ~15)
    }

    // MARK: - Events

    /// A successful mallopt call.
    public mutating func mallopt(parameter: Int64, value: Int64, result: Int64, time: UInt64) {
        guard result != 0 else { return }   // mallopt returns 0 when it refused the value
        switch parameter {
        case MalloptParameter.mmapThreshold:
            let newValue = UInt64(clamping: value)
            record(ThresholdChange(time: time, oldValue: current, newValue: newValue, reason: .mallopt))
            current = newValue
            fix(because: "mallopt(M_MMAP_THRESHOLD, \(value))")
        case MalloptParameter.mmapMax:
            if value <= 0 { mmapDisabledAt = mmapDisabledAt ?? time }
            else { mmapDisabledAt = nil }
            fix(because: "mallopt(M_MMAP_MAX, \(value))")
        case MalloptParameter.trimThreshold:
            fix(because: "mallopt(M_TRIM_THRESHOLD, \(value))")
        case MalloptParameter.topPad:
            fix(because: "mallopt(M_TOP_PAD, \(value))")
        default:
            break
        }
    }

    /// The program freed a block that glibc had mmapped on its own (path mmap-threshold).
    public mutating func freedMmappedBlock(requestSize: UInt64, time: UInt64) {
        guard isDynamic else { return }
        let chunk = mmappedChunkSize(requestSize: requestSize)
        guard chunk > current, chunk <= Self.dynamicMaximum else { return }
        record(ThresholdChange(time: time, oldValue: current, newValue: chunk,
                               reason: .freedMmappedBlock(requestSize: requestSize, chunkSize: chunk)))
        current = chunk
    }

    /// Carries on from a parent process's state at fork: the child's allocator starts where
    /// the parent's was.
    public mutating func inherit(from parent: MmapThresholdTracker) {
        initial = parent.current
        current = parent.current
        isDynamic = parent.isDynamic
        fixedBecause = parent.fixedBecause
        mmapDisabledAt = parent.mmapDisabledAt
    }

    private mutating func fix(because reason: String) {
        if isDynamic { fixedBecause = reason }
        isDynamic = false
    }

    private mutating func record(_ change: ThresholdChange) {
        if history.count < Self.historyLimit { history.append(change) } else { droppedChanges += 1 }
    }

    // MARK: - Queries

    /// The last recorded change at or before `time`, if any.
    public func lastChange(atOrBefore time: UInt64) -> ThresholdChange? {
        var low = 0, high = history.count
        while low < high {
            let middle = (low + high) / 2
            if history[middle].time <= time { low = middle + 1 } else { high = middle }
        }
        return low > 0 ? history[low - 1] : nil
    }

    /// The threshold in force at `time` (as far as the kept history tells).
    public func threshold(at time: UInt64) -> UInt64 {
        lastChange(atOrBefore: time)?.newValue ?? initial
    }
}
