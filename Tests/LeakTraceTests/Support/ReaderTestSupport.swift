// Helpers shared by the reader tests: reading a whole trace into arrays, the context a record
// should carry (a model written from the spec), temporary files, a watchdog and a seeded RNG.

import Foundation
import XCTest
import TraceFormat

/// Everything one pass over a trace delivered.
struct ReadBack {
    var records: [TraceRecord] = []
    var contexts: [RecordContext] = []
    var endState: TraceEndState?
}

/// Reads every record of an in-memory trace.
func readBack(_ bytes: [UInt8], name: String = "test.lt") throws -> (TraceReader, ReadBack) {
    let reader = try TraceReader(bytes: bytes, name: name)
    return (reader, readBack(reader))
}

/// Reads every record with `forEachRecord`.
func readBack(_ reader: TraceReader, stopAtOffset: UInt64? = nil) -> ReadBack {
    var result = ReadBack()
    reader.forEachRecord(stopAtOffset: stopAtOffset) { record, context in
        result.records.append(record)
        result.contexts.append(context)
    }
    result.endState = reader.endState
    return result
}

/// The contexts the spec says the records of consecutive chunks carry: thread and time start
/// unknown (0) in every chunk and follow THREAD and TIME records.
func expectedContexts(chunks: [[TraceRecord]], offsets: [Int]) -> [RecordContext] {
    var contexts: [RecordContext] = []
    for (records, offset) in zip(chunks, offsets) {
        var context = RecordContext(tid: 0, time: 0, chunkOffset: UInt64(offset))
        for record in records {
            if case .thread(let tid) = record { context.tid = tid }
            if case .time(let microseconds) = record { context.time = microseconds }
            contexts.append(context)
        }
    }
    return contexts
}

/// Writes `bytes` to a new file in a fresh temporary directory and returns its path.
func temporaryFile(_ bytes: [UInt8], name: String = "trace.lt") throws -> String {
    let directory = try temporaryDirectory()
    let path = directory + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// A fresh empty directory under the system's temporary directory.
func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "leaktrace-reader-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs `body` on another thread and fails the test if it has not finished after `seconds`:
/// a hang becomes a failure with a message rather than a stuck test run.
func withWatchdog(seconds: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                  _ body: @escaping @Sendable () -> Void) {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        body()
        done.signal()
    }
    thread.stackSize = 8 << 20
    thread.start()
    if done.wait(timeout: .now() + seconds) == .timedOut {
        XCTFail("\(what) did not finish within \(seconds) s (hang)", file: file, line: line)
    }
}

/// SplitMix64: a small seeded generator, so a failing random case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Sample records of every kind, in an order a tracer could write them: stacks 1 and 2 are
/// defined before use; field values include the extremes of each encoding.
enum SampleRecords {
    static let programModule = Module(
        path: "/usr/bin/sample-app", bias: 0x5555_5555_4000, buildID: [0xDE, 0xAD, 0xBE, 0xEF, 0x01],
        segments: [ModuleSegment(start: 0x5555_5555_4000, size: 0x1000, flags: 4),
                   ModuleSegment(start: 0x5555_5555_5000, size: 0x2000, flags: 5)])
    static let libcModule = Module(
        path: "/lib/x86_64-linux-gnu/libc.so.6", bias: 0x7FFF_F7D8_0000, buildID: [],
        segments: [ModuleSegment(start: 0x7FFF_F7DA_8000, size: 0x15_5000, flags: 5)])
    static let pluginModule = Module(
        path: "/opt/plugins/libplugin.so", bias: 0x7FFF_F000_0000, buildID: [0xAB],
        segments: [ModuleSegment(start: 0x7FFF_F000_1000, size: 0x800, flags: 5)])

    static let everyKind: [TraceRecord] = [
        .modules(generation: 1, modules: [programModule, libcModule]),
        .thread(tid: 4242),
        .time(microseconds: 1500),
        .stack(id: 1, parent: 0, ip: 0x5555_5555_5123),
        .stack(id: 2, parent: 1, ip: 0x5555_5555_5456),
        .alloc(function: .malloc, path: .heap, address: 0x5555_5556_02A0, size: 24, stack: 2),
        .alloc(function: .calloc, path: .mmapThreshold, address: 0x7FFF_F7A0_0010, size: 1 << 20, stack: 1),
        .alloc(function: .posixMemalign, path: .threadArena, address: 0x7FFF_E800_0B70, size: 64, stack: 2),
        .alloc(function: .pvalloc, path: .unknown, address: 0x10, size: 4096, stack: 0),
        .alloc(function: .alignedAlloc, path: .heap, address: .max, size: .max, stack: 2),
        .alloc(function: .realloc, path: .heap, address: 0x5555_5556_0400, size: 7, stack: 1),
        .alloc(function: .reallocarray, path: .mmapThreshold, address: 0x7FFF_F790_0010, size: 300_000, stack: 2),
        .alloc(function: .memalign, path: .threadArena, address: 0x7FFF_E800_0200, size: 256, stack: 1),
        .free(address: 0x5555_5556_02A0),
        .reallocRelease(address: 0x7FFF_E800_0B70),
        .realloc(status: .movedOrResized, path: .threadArena, isReallocarray: false,
                 old: 0x7FFF_E800_0B70, new: 0x7FFF_E800_1000, size: 128, stack: 2),
        .realloc(status: .failed, path: .unknown, isReallocarray: true, old: 0x7FFF_E800_1000, new: 0,
                 size: 1 << 62, stack: 1),
        .realloc(status: .freed, path: .unknown, isReallocarray: false, old: 0x7FFF_E800_1000, new: 0,
                 size: 0, stack: 0),
        .realloc(status: .movedOrResized, path: .heap, isReallocarray: true, old: 0, new: 0x5555_5556_0300,
                 size: 10, stack: 1),
        .thread(tid: 4243),
        .mmap(addressArgument: 0, length: 4096, prot: 3, flags: 0x22, fd: -1, offset: 0,
              result: 0x7FFF_F7FF_0000, errno: 0, path: "", stack: 2),
        .mmap(addressArgument: 0, length: 8192, prot: 1, flags: 0x02, fd: 3, offset: 4096,
              result: 0x7FFF_F7FE_0000, errno: 0, path: "/etc/ld.so.cache", stack: 1),
        .mmap(addressArgument: 0x1000, length: 1 << 40, prot: 3, flags: 0x32, fd: .min, offset: .max,
              result: failedAddress, errno: 12, path: "", stack: 0),
        .munmap(address: 0x7FFF_F7FF_0000, length: 4096, result: 0, errno: 0, stack: 1),
        .munmap(address: 0x3, length: 4096, result: -1, errno: 22, stack: 2),
        .mremap(oldAddress: 0x7FFF_F7FE_0000, oldSize: 8192, newSize: 16384, flags: 1, newAddressArgument: 0,
                result: 0x7FFF_F7F0_0000, errno: 0, stack: 2),
        .mremap(oldAddress: 0x7FFF_F7F0_0000, oldSize: 16384, newSize: 1 << 45, flags: 0, newAddressArgument: 0,
                result: failedAddress, errno: 12, stack: 0),
        .brk(addressArgument: 0x5555_5557_9000, result: 0, breakBefore: 0x5555_5557_8000,
             breakAfter: 0x5555_5557_9000, stack: 1),
        .brk(addressArgument: 0x1, result: -1, breakBefore: 0x5555_5557_9000, breakAfter: 0x5555_5557_9000,
             stack: 0),
        .sbrk(increment: -4096, result: 0x5555_5557_9000, breakAfter: 0x5555_5557_8000, stack: 2),
        .sbrk(increment: .min, result: failedAddress, breakAfter: 0x5555_5557_8000, stack: 0),
        .mallopt(parameter: MalloptParameter.mmapThreshold, value: 131_072, result: 1),
        .mallopt(parameter: MalloptParameter.arenaMax, value: .min, result: 0),
        .sample(vmPages: 12_345, rssPages: 678, sharedPages: 90),
        .mark(name: "after warmup", source: 0),
        .mark(name: "SIGUSR1 \"snapshot\"\n", source: 1),
        .threadName(tid: 4243, name: "worker-1"),
        .fork(childPid: 4300),
        .exec(path: "/bin/sh"),
        .note(level: 1, text: "stack depth capped at 64 frames"),
        .note(level: 0, text: ""),
        .fold(FoldSummary(firstMicroseconds: 1500, lastMicroseconds: 1900, peakBytes: 4096,
                          lowestHeapAddress: 0x5555_5556_0100,
                          entries: [FoldEntry(stack: 1, function: .realloc, path: .threadArena, blocks: 0, bytes: 0,
                                              temporary: 1),
                                    FoldEntry(stack: 2, function: .malloc, path: .heap, blocks: 300, bytes: 14_400,
                                              temporary: 299, releasedByRealloc: 12)])),
        .fold(FoldSummary(firstMicroseconds: 0, lastMicroseconds: .max, peakBytes: .max, lowestHeapAddress: 0,
                          entries: [])),
        .modules(generation: 2, modules: [programModule, libcModule, pluginModule]),
        .modules(generation: 3, modules: []),
        .time(microseconds: .max),
        .thread(tid: .max),
        .stack(id: 3, parent: 2, ip: .max),
        .alloc(function: .valloc, path: .heap, address: 0, size: 0, stack: 3),
        .unknown(tag: 0x5A, length: 3),
        .unknown(tag: 0xFF, length: 0),
        .end(TraceEnd(allocs: 6, frees: 1, reallocs: 4, mappings: 10, stacks: 3, chunks: 0, untraced: 7)),
    ]
}
