// Folding (the default, LEAKTRACE_EVENTS=folded) under the hazards of threads, fork and signals.
// The other hazard cases count every event by size and so run with every event written; here
// the same programs run folded, and what the report says is checked against their design:
// allocation calls and bytes per site (folded blocks included), nothing leaked, no unknown
// frees, complete traces, and the program's output, errors and exit status unchanged.

import Foundation
import XCTest
import TraceFormat

final class HazardFoldTests: XCTestCase {
    override func tearDown() {
        HazardKit.removeScratch()
        super.tearDown()
    }

    private func folded(_ invocation: HazardKit.Invocation) -> HazardKit.Invocation {
        var folded = invocation
        folded.tracerEnvironment["LEAKTRACE_EVENTS"] = "folded"
        return folded
    }

    /// The report's allocation sites whose call site is in `function`: calls, bytes, temporary.
    private func sites(in report: [String: Any], function: String) -> (calls: Int, bytes: Int, temporary: Int) {
        report.objects("allocationSites").filter { $0.object("callsite").string("function") == function }
            .reduce((0, 0, 0)) { ($0.0 + ($1.int("calls") ?? 0), $0.1 + ($1.int("bytes") ?? 0),
                                  $0.2 + ($1.int("temporary") ?? 0)) }
    }

    /// Eight threads, 100,000 blocks each, half freed by another thread (hazard case 10).
    func testThreadsExactAccountingFolded() throws {
        var invocation = HazardKit.Invocation(try HazardKit.build("hazard_threads_exact"))
        invocation.timeout = 300
        try HazardKit.eachRun(folded(invocation),
                              stdout: "threads=8 allocations=800000 handed=400000 failed=0\n") { runs, label in
            let trace = try HazardKit.singleCompleteTrace(runs, label)
            XCTAssertTrue(trace.header.foldsShortLivedBlocks, label)
            let report = try LeakReportRunner.json([trace.path])
            let worker = sites(in: report, function: "worker")
            // Per thread, sizes 3000 + i % 64 for i below 100,000: 3000..3031 come 1,563 times.
            let bytesPerThread = (0..<64).reduce(0) { $0 + (3000 + $1) * ($1 < 32 ? 1563 : 1562) }
            XCTAssertEqual(worker.calls, 800_000, label)
            XCTAssertEqual(worker.bytes, 8 * bytesPerThread, label)
            XCTAssertEqual(report.object("summary").int("unknownFrees"), 0, label)
            XCTAssertEqual(report.objects("groups").filter { $0.object("callsite").string("function") == "worker" }.count,
                           0, "\(label): leaked worker blocks")
            XCTAssertGreaterThan(report.object("trace").int("foldedBlocks") ?? 0, 0, label)
        }
    }

    /// A threaded parent forks 200 children (hazard case 4): every trace whole, one per child.
    func testForkStormFolded() throws {
        var invocation = HazardKit.Invocation(try HazardKit.build("hazard_forkstorm"), ["200"])
        invocation.timeout = 180
        try HazardKit.eachRun(folded(invocation), stdout: "forks=200 failures=0\n") { runs, label in
            XCTAssertEqual(runs.traces.count, 201, "\(label): the parent's trace and one per child")
            let traces = try runs.traces.map { try HazardTraceSummary(path: $0) }
            for trace in traces {
                XCTAssertTrue(trace.isComplete, "\(label): \(trace.path): \(String(describing: trace.endState))")
                XCTAssertTrue(trace.header.foldsShortLivedBlocks, label)
                XCTAssertEqual(trace.doubleLive, 0, label)
            }
            XCTAssertEqual(traces.filter { $0.header.parentTrace == nil }.first?.forks.count, 200, label)
        }
    }

    /// An alarm handler allocates and frees while the main thread maps and unmaps (hazard case
    /// 6a): the handler's blocks are as many allocated as freed, and none is an unknown free.
    func testAlarmHandlerFolded() throws {
        var invocation = HazardKit.Invocation(try HazardKit.build("hazard_sigalrm"), ["1000"])
        invocation.timeout = 60
        try HazardKit.eachRun(folded(invocation),
                              stdout: "handled-some=1 cycles-some=1 failures=0 corrupt=0\n") { runs, label in
            let trace = try HazardKit.singleCompleteTrace(runs, label)
            XCTAssertEqual(trace.mmaps, trace.munmaps, label)
            let report = try LeakReportRunner.json([trace.path])
            XCTAssertEqual(report.object("summary").int("unknownFrees"), 0, label)
            let handler = sites(in: report, function: "on_alarm")
            XCTAssertGreaterThan(handler.calls, 0, label)
            XCTAssertEqual(report.objects("groups").filter { $0.object("callsite").string("function") == "on_alarm" }.count,
                           0, "\(label): the handler's blocks are all freed")
        }
    }
}
