// Hazard case 6 (docs/reliability.md): signals. A handler that allocates at 10 kHz, a SIGCHLD
// storm while the tracer flushes, and a program that takes SIGTERM in a sigwait thread.

import Foundation
import XCTest
import TraceFormat

final class HazardSignalTests: HazardTestCase {
    /// 10 kHz SIGALRM whose handler mallocs and frees while the main thread loops mmap/munmap.
    /// Handler allocations that interrupted a hook pass through unrecorded (and count as
    /// untraced); the others are recorded with their free, so none is reported leaked.
    func testCase06aAlarmHandlerAllocatesWhileMainMaps() throws {
        try HazardKit.eachCompleteTrace(HazardKit.Invocation(try HazardKit.build("hazard_sigalrm"), ["1000"], timeout: 60),
                                        stdout: "handled-some=1 cycles-some=1 failures=0 corrupt=0\n") { trace, label in
            XCTAssertEqual(trace.doubleLive, 0, label)
            // Every mmap of the loop is recorded with its munmap.
            XCTAssertGreaterThan(trace.mmaps, 100, label)
            XCTAssertEqual(trace.mmaps, trace.munmaps, label)
            let handler = trace.stacks(whoseCallerIs: "on_alarm")
            let handlerAllocations = handler.reduce(0) { $0 + (trace.allocationsByStack[$1] ?? 0) }
            let handlerFrees = handler.reduce(0) { $0 + (trace.freesByStack[$1] ?? 0) }
            XCTAssertGreaterThan(handlerAllocations, 0, "\(label): no handler allocation was recorded")
            XCTAssertEqual(handlerFrees, handlerAllocations, label)
            XCTAssertEqual(trace.live.values.filter { handler.contains($0.stack) }.count, 0,
                           "\(label): a block freed in the handler is reported leaked")
        }
    }

    /// 500 children exit as fast as they are forked; the parent's SIGCHLD handler (without
    /// SA_RESTART) reaps them while the tracer flushes every millisecond.
    func testCase06bSigchldStormWhileTheTracerFlushes() throws {
        let exe = try HazardKit.build("hazard_sigchld")
        var invocation = HazardKit.Invocation(exe, ["500"])
        invocation.tracerEnvironment = ["LEAKTRACE_FLUSH_MS": "1"]
        invocation.timeout = 120
        try HazardKit.eachRun(invocation,
                              stdout: "children=500 reaped=500 sum-ok=1 fork-failures=0 kept=1\n") { runs, label in
            XCTAssertEqual(runs.traces.count, 501, label)
            let traces = try runs.traces.map { try HazardTraceSummary(path: $0) }
            guard let parent = traces.first(where: { $0.header.parentTrace == nil }) else {
                XCTFail("\(label): no parent trace"); return
            }
            XCTAssertTrue(parent.isComplete, "\(label): \(String(describing: parent.endState))")
            parent.assertEndMatchesRecords(label)
            XCTAssertEqual(parent.forks.count, 500, label)
            XCTAssertEqual(parent.liveBlocks(ofSize: 8888).count, 1, label)
            // Each loop iteration's scratch block (100 + i bytes) was allocated and freed.
            for size in UInt64(100)..<600 {
                XCTAssertEqual(parent.allocationsBySize[size], 1, "\(label): \(size)")
                XCTAssertEqual(parent.freesBySize[size], 1, "\(label): \(size)")
            }
            let children = traces.filter { $0.header.parentTrace != nil }
            XCTAssertEqual(children.count, 500, label)
            XCTAssertEqual(children.filter { $0.isComplete && $0.header.ppid == parent.header.pid }.count, 500, label)
            try HazardKit.readWithLeakreport(parent.path, label: label)
        }
    }

    /// Every signal blocked in every thread, SIGTERM taken by a sigwait thread: the tracer's
    /// own thread must not take it (the process would die with status 143).
    func testCase06cSigtermTakenBySigwaitThread() throws {
        let exe = try HazardKit.build("hazard_sigwait")
        let invocation = HazardKit.Invocation(exe, timeout: 60)
        try HazardKit.eachRun(invocation, stdout: "stop=1 waiter=1\n") { runs, label in
            XCTAssertEqual(runs.traced.status, 0, label)
            let trace = try HazardKit.singleCompleteTrace(runs, label)
            let path = trace.path
            XCTAssertEqual(trace.allocationsBySize[321], 1, label)
            XCTAssertEqual(trace.freesBySize[321], 1, label)
            XCTAssertNotEqual(trace.firstBlockOfSize[321]?.tid, trace.header.pid, "\(label): allocated by the sigwait thread")
            for size in UInt64(64)..<68 {
                XCTAssertEqual(trace.allocationsBySize[size], trace.freesBySize[size], "\(label): worker \(size - 64)")
            }
            try HazardKit.readWithLeakreport(path, label: label)
        }
    }
}
