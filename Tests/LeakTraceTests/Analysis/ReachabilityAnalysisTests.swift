// Reachability at exit in the analysis: every live block and mapping piece gets the category of
// the REACH entry at its address, groups and the summary add them up, groups are ordered lost
// first, and blocks the runtimes' cleanup freed after the MARK of source 2 are counted apart.

import XCTest
import TraceFormat
import LiveSet
import Symbolization
@testable import LeakAnalysis

final class ReachabilityAnalysisTests: XCTestCase {
    var stacks = StackTrie()
    var symbolizer = TableSymbolizer()
    var replay: Replayer!
    var lostSite: UInt32 = 0, reachableSite: UInt32 = 0, mixedSite: UInt32 = 0, cleanupSite: UInt32 = 0

    override func setUp() {
        stacks = StackTrie()
        symbolizer = TableSymbolizer()
        symbolizer.define(0x2100, "make_list", file: "list.c", line: 10)
        symbolizer.define(0x2200, "cache_put", file: "cache.c", line: 20)
        symbolizer.define(0x2300, "parse", file: "parse.c", line: 30)
        symbolizer.define(0x2400, "nss_load", file: "nss.c", line: 40)
        lostSite = stacks.intern(frames: [0x2100])
        reachableSite = stacks.intern(frames: [0x2200])
        mixedSite = stacks.intern(frames: [0x2300])
        cleanupSite = stacks.intern(frames: [0x2400])
        var header = TraceHeader()
        header.pageSize = 4096
        replay = Replayer(header: header)
    }

    private func alloc(_ address: UInt64, _ size: UInt64, _ stack: UInt32) {
        replay.apply(.alloc(function: .malloc, path: .heap, address: address, size: size, stack: stack), tid: 1, time: 1000)
    }

    private func reach(_ entries: [(UInt64, Reachability)], flags: ReachScanFlags = [.scanned, .libcFreeresCalled]) {
        let record = ReachRecord(flags: flags, scanMicroseconds: 420, rootBytes: 8192, scannedBytes: 640,
                                 entries: entries.map { ReachEntry(address: $0.0, category: $0.1) })
        replay.apply(.reach(record), tid: 1, time: 2000)
    }

    private func analyze(outcome: ReadingOutcome = ReadingOutcome(isComplete: true)) -> LeakReport {
        let facts = TraceFacts(path: "t.lt", header: TraceHeader(), outcome: outcome, replay: replay, parentReplayed: false)
        return LeakAnalyzer(options: AnalysisOptions()).analyze(replay: replay, stacks: stacks, modules: SingleModule(),
                                                                symbolizer: symbolizer, facts: facts)
    }

    /// A list head lost with two nodes, a cache still reachable, a parse site with one block of
    /// each other kind and one the scan never saw, and an NSS table the runtime's cleanup freed.
    private func replayExit() {
        alloc(0x1000, 32, lostSite)         // head: definitely lost
        alloc(0x1100, 32, lostSite)         // node: indirectly lost
        alloc(0x1200, 32, lostSite)         // node: indirectly lost
        alloc(0x2000, 4000, reachableSite)  // the cache: the biggest group, but still reachable
        alloc(0x3000, 100, mixedSite)       // possibly lost
        alloc(0x3100, 10, mixedSite)        // still reachable
        alloc(0x3200, 7, mixedSite)         // no entry: unclassified
        alloc(0x4000, 500, cleanupSite)
        replay.apply(.mmap(addressArgument: 0, length: 8192, prot: 3, flags: 0x22, fd: -1, offset: 0,
                           result: 0x7000_0000, errno: 0, path: "", stack: lostSite), tid: 1, time: 1500)
        replay.apply(.mark(name: "runtime cleanup at exit", source: MarkSource.runtimeCleanup), tid: 1, time: 1800)
        replay.apply(.free(address: 0x4000), tid: 1, time: 1800)
        // Two records, the second below the first (the reader concatenates and sorts), and an
        // entry for the freed NSS table, which is not live (ignored).
        reach([(0x2000, .stillReachable), (0x3000, .possiblyLost), (0x3100, .stillReachable),
               (0x4000, .definitelyLost), (0x7000_0000, .definitelyLost)])
        reach([(0x1000, .definitelyLost), (0x1100, .indirectlyLost), (0x1200, .indirectlyLost)])
        // A free after the scan is not the runtimes' cleanup.
        alloc(0x5000, 1, cleanupSite)
        replay.apply(.free(address: 0x5000), tid: 1, time: 2100)
    }

    func testCategoriesComeFromTheEntryAtEachBlocksAddress() {
        replayExit()
        let report = analyze()
        let summary = report.summary
        guard let reachability = summary.reachability else { return XCTFail("reachability unknown") }
        XCTAssertEqual(reachability.amounts.definitelyLost, Amount(blocks: 2, bytes: 32 + 8192))
        XCTAssertEqual(reachability.amounts.indirectlyLost, Amount(blocks: 2, bytes: 64))
        XCTAssertEqual(reachability.amounts.possiblyLost, Amount(blocks: 1, bytes: 100))
        XCTAssertEqual(reachability.amounts.stillReachable, Amount(blocks: 2, bytes: 4010))
        XCTAssertEqual(reachability.amounts.unclassified, Amount(blocks: 1, bytes: 7))
        XCTAssertEqual(reachability.scan, ReachabilityScan(replay.exitReachability!))
        XCTAssertTrue(reachability.scan.libcFreeres)
        XCTAssertFalse(reachability.scan.cxxFreeres)
        XCTAssertEqual(reachability.scan.scanUs, 420)
        XCTAssertNil(summary.reachabilityUnknown)
        // Everything not freed is still `leaked`; the categories split it.
        XCTAssertEqual(summary.leaked, Amount(blocks: 8, bytes: 96 + 8192 + 4000 + 117))
        XCTAssertEqual(summary.releasedByRuntimeCleanup, Amount(blocks: 1, bytes: 500))
        XCTAssertEqual(replay.exitReachability?.records, 2)
    }

    func testGroupsAreOrderedLostFirstAndCarryTheirCategories() {
        replayExit()
        let report = analyze()
        XCTAssertEqual(report.groups.map(\.name), ["make_list (list.c:10)", "parse (parse.c:30)", "cache_put (cache.c:20)"])
        let list = report.groups[0].reachability
        XCTAssertEqual(list?.definitelyLost, Amount(blocks: 2, bytes: 8224))
        XCTAssertEqual(list?.indirectlyLost, Amount(blocks: 2, bytes: 64))
        XCTAssertEqual(list?.severity, .lost)
        XCTAssertEqual(report.groups[1].reachability?.severity, .possiblyLost)
        XCTAssertEqual(report.groups[1].reachability?.unclassified, Amount(blocks: 1, bytes: 7))
        XCTAssertEqual(report.groups[2].reachability?.severity, .stillReachable)
        XCTAssertEqual(report.groups.map(\.rank), [1, 2, 3])
    }

    func testWithoutReachRecordsReachabilityIsUnknownAndGroupsKeepTheirOrder() {
        alloc(0x1000, 32, lostSite)
        alloc(0x2000, 4000, reachableSite)
        let report = analyze()
        XCTAssertNil(report.summary.reachability)
        XCTAssertNil(report.summary.releasedByRuntimeCleanup)
        XCTAssertEqual(report.summary.reachabilityUnknown,
                       "no REACH record: the scan was off (LEAKTRACE_REACHABILITY=0) or the tracer predates it")
        XCTAssertEqual(report.groups.map(\.name), ["cache_put (cache.c:20)", "make_list (list.c:10)"])
        XCTAssertTrue(report.groups.allSatisfy { $0.reachability == nil })
    }

    func testARefusedScanLeavesReachabilityUnknown() {
        alloc(0x1000, 32, lostSite)
        reach([], flags: [.refused])
        let report = analyze()
        XCTAssertNil(report.summary.reachability)
        XCTAssertEqual(report.summary.reachabilityUnknown,
                       "the tracer refused the scan at exit (out of memory, or memory it could not read safely)")
    }

    func testACutTraceAndAnEarlyReportSayWhy() {
        alloc(0x1000, 32, lostSite)
        XCTAssertEqual(analyze(outcome: ReadingOutcome(isComplete: false, stoppedAtOffset: 99, stopReason: "cut"))
                           .summary.reachabilityUnknown, "the trace was cut before the scan at exit")
        XCTAssertEqual(analyze(outcome: ReadingOutcome(isComplete: false, replayedUntilUs: 5)).summary.reachabilityUnknown,
                       "reported before the end (--at): reachability is known only at exit")
    }

    /// The lookup answers a million live blocks from a sorted list of packed entries, without a
    /// table per block: 8 bytes an entry.
    func testLookupOverAMillionEntries() {
        let count = 1_000_000
        var entries: [ReachEntry] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            entries.append(ReachEntry(address: 0x10_0000 + UInt64(index) * 48,
                                      category: Reachability(rawValue: UInt8(index % 4))!))
        }
        replay.apply(.reach(ReachRecord(flags: [.scanned], scanMicroseconds: 0, rootBytes: 0, scannedBytes: 0,
                                        entries: entries)), tid: 1, time: 0)
        let reachability = replay.exitReachability!
        XCTAssertEqual(MemoryLayout<ReachEntry>.stride, 8)
        let start = Date()
        var counts = [0, 0, 0, 0]
        for index in stride(from: 0, to: count, by: 1) {
            let category = reachability.category(of: 0x10_0000 + UInt64(index) * 48)
            counts[Int(category!.rawValue)] += 1
        }
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(counts, [250_000, 250_000, 250_000, 250_000])
        XCTAssertNil(reachability.category(of: 0x10_0000 + 8))
        XCTAssertNil(reachability.category(of: 0x10_0000 - 48), "below the first entry")
        XCTAssertNil(reachability.category(of: 0x10_0000 + UInt64(count) * 48), "above the last")
        XCTAssertEqual(reachability.category(of: 0x10_0000 + UInt64(count - 1) * 48), .definitelyLost)
        print("reachability lookup: \(count) blocks in \(String(format: "%.3f", seconds)) s")
    }
}
