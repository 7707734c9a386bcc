// Reachability at exit end to end on synthetic traces: the JSON and text shapes, --fail-on-leak
// and --fail-on-unfreed, the wording when reachability is unknown, info and dump, the filters
// of diff and growth, and the HTML page's own check in a browser.

import Foundation
import XCTest
import TraceFormat

final class ReachabilityCLITests: XCTestCase {
    // MARK: Synthetic traces

    static let modules = TraceRecord.modules(generation: 1, modules: [
        Module(path: "/usr/bin/sample-app", bias: 0x400000, buildID: [1, 2, 3],
               segments: [ModuleSegment(start: 0x400000, size: 0x10000, flags: 5)]),
    ])

    /// Sites: 0x401000 a list (head definitely lost, one node indirectly lost), 0x402000 a cache
    /// (still reachable, with a mapping), 0x403000 a parser (one block possibly lost, one the
    /// scan never saw) and the block the runtime's cleanup freed.
    static func exitRecords(withScan: Bool = true) -> [TraceRecord] {
        var records: [TraceRecord] = [
            .thread(tid: 7), .time(microseconds: 1000), modules,
            .stack(id: 1, parent: 0, ip: 0x401000), .stack(id: 2, parent: 0, ip: 0x402000),
            .stack(id: 3, parent: 0, ip: 0x403000),
            .alloc(function: .malloc, path: .heap, address: 0x20000, size: 100, stack: 1),
            .alloc(function: .malloc, path: .heap, address: 0x20100, size: 40, stack: 1),
            .alloc(function: .malloc, path: .heap, address: 0x21000, size: 5000, stack: 2),
            .alloc(function: .malloc, path: .heap, address: 0x23000, size: 60, stack: 3),
            .alloc(function: .malloc, path: .heap, address: 0x23100, size: 8, stack: 3),
            .alloc(function: .malloc, path: .heap, address: 0x30000, size: 300, stack: 3),
            .mmap(addressArgument: 0, length: 4096, prot: 3, flags: 0x22, fd: -1, offset: 0, result: 0x7000_0000,
                  errno: 0, path: "", stack: 2),
            .time(microseconds: 2000),
        ]
        guard withScan else {
            return records + [.end(TraceEnd(allocs: 6, frees: 0, reallocs: 0, mappings: 1, stacks: 3, chunks: 0, untraced: 0))]
        }
        records += [
            .mark(name: "runtime cleanup at exit", source: 2),
            .free(address: 0x30000),
            .reach(ReachRecord(flags: [.scanned, .libcFreeresCalled], scanMicroseconds: 1234, rootBytes: 65536,
                               scannedBytes: 9000,
                               entries: [ReachEntry(address: 0x20000, category: .definitelyLost),
                                         ReachEntry(address: 0x20100, category: .indirectlyLost),
                                         ReachEntry(address: 0x21000, category: .stillReachable)])),
            .reach(ReachRecord(flags: [.scanned, .libcFreeresCalled], scanMicroseconds: 1234, rootBytes: 65536,
                               scannedBytes: 9000,
                               entries: [ReachEntry(address: 0x23000, category: .possiblyLost),
                                         ReachEntry(address: 0x7000_0000, category: .stillReachable)])),
            .end(TraceEnd(allocs: 6, frees: 1, reallocs: 0, mappings: 1, stacks: 3, chunks: 0, untraced: 0)),
        ]
        return records
    }

    static func write(_ records: [TraceRecord], name: String) throws -> String {
        var builder = TraceBuilder(header: TraceBuilder.sampleHeader, version: 2)
        builder.appendChunk(ChunkRecords(records, version: 2))
        return try temporaryFile(builder.bytes, name: name)
    }

    private func amount(_ object: [String: Any]) -> [Int] { [object.int("blocks") ?? -1, object.int("bytes") ?? -1] }

    // MARK: Report

    func testJSONGivesEachCategoryInTheSummaryAndEveryGroup() throws {
        let path = try Self.write(Self.exitRecords(), name: "reach.lt")
        let root = try LeakReportRunner.json([path, "--no-default-suppressions"])
        let summary = root.object("summary")
        let reachability = summary.object("reachability")
        XCTAssertEqual(amount(reachability.object("definitelyLost")), [1, 100])
        XCTAssertEqual(amount(reachability.object("indirectlyLost")), [1, 40])
        XCTAssertEqual(amount(reachability.object("possiblyLost")), [1, 60])
        XCTAssertEqual(amount(reachability.object("stillReachable")), [2, 5000 + 4096])
        XCTAssertEqual(amount(reachability.object("unclassified")), [1, 8])
        let scan = reachability.object("scan")
        XCTAssertEqual(scan["scanned"] as? Bool, true)
        XCTAssertEqual(scan["libcFreeres"] as? Bool, true)
        XCTAssertEqual(scan["cxxFreeres"] as? Bool, false)
        XCTAssertEqual(scan["otherThreadsRunning"] as? Bool, false)
        XCTAssertEqual(scan["inFatalSignalHandler"] as? Bool, false)
        XCTAssertEqual(scan["refused"] as? Bool, false)
        XCTAssertEqual([scan.int("scanUs"), scan.int("rootBytes"), scan.int("scannedBytes")], [1234, 65536, 9000])
        XCTAssertNil(summary["reachabilityUnknown"])
        XCTAssertEqual(amount(summary.object("releasedByRuntimeCleanup")), [1, 300])
        // `leaked` is still everything not freed; the freed NSS-like block is not in it.
        XCTAssertEqual(amount(summary.object("leaked")), [6, 100 + 40 + 5000 + 4096 + 60 + 8])
        // Lost first, then possibly lost, then the still reachable cache, though it is the biggest.
        let groups = root.objects("groups")
        XCTAssertEqual(groups.map { $0.object("callsite").string("address") }, ["0x401000", "0x403000", "0x402000"])
        XCTAssertEqual(amount(groups[0].object("reachability").object("definitelyLost")), [1, 100])
        XCTAssertEqual(amount(groups[0].object("reachability").object("indirectlyLost")), [1, 40])
        XCTAssertNil(groups[0].object("reachability")["unclassified"], "unclassified only when non-zero")
        XCTAssertEqual(amount(groups[1].object("reachability").object("unclassified")), [1, 8])
        XCTAssertEqual(amount(groups[2].object("reachability").object("stillReachable")), [2, 9096])
        XCTAssertEqual(root.objects("mappings").map { $0.string("reachability") }, ["still-reachable"])
    }

    func testTextListsLostGroupsFirstAndSumsStillReachable() throws {
        let path = try Self.write(Self.exitRecords(), name: "reach-text.lt")
        let run = try LeakReportRunner.run([path, "--no-default-suppressions"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let text = run.stdout
        for line in ["definitely lost", "indirectly lost", "possibly lost", "still reachable", "unclassified"] {
            XCTAssertTrue(text.contains("    \(line) "), line)
        }
        XCTAssertTrue(text.contains("__libc_freeres called"), text)
        XCTAssertTrue(text.contains("freed by runtime cleanup at exit 300 B in 1 block"), text)
        let lost = try XCTUnwrap(text.range(of: "Definitely and indirectly lost: 1 group by callsite"))
        let possibly = try XCTUnwrap(text.range(of: "Possibly lost: 1 group by callsite"))
        XCTAssertLessThan(lost.lowerBound, possibly.lowerBound)
        XCTAssertTrue(text.contains("Still reachable at exit: 8.88 KiB in 2 blocks"), text)
        XCTAssertFalse(text.contains("Still reachable: 1 group"))
        XCTAssertTrue(text.contains("definitely lost 100 B in 1 block, indirectly lost 40 B in 1 block"), text)

        let shown = try LeakReportRunner.run([path, "--no-default-suppressions", "--show-reachable"]).stdout
        let reachable = try XCTUnwrap(shown.range(of: "Still reachable: 1 group by callsite"))
        XCTAssertLessThan(try XCTUnwrap(shown.range(of: "Possibly lost: 1 group")).lowerBound, reachable.lowerBound)
        XCTAssertFalse(shown.contains("Still reachable at exit:"))
    }

    func testFailOnLeakCountsLostBytesAndFailOnUnfreedCountsEverything() throws {
        let path = try Self.write(Self.exitRecords(), name: "reach-fail.lt")
        let lost: UInt64 = 140, unfreed: UInt64 = 100 + 40 + 5000 + 4096 + 60 + 8
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-leak=\(lost - 1)"]).status, 3)
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-leak=\(lost)"]).status, 0)
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-unfreed=\(unfreed - 1)"]).status, 3)
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-unfreed=\(unfreed)"]).status, 0)
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-unfreed"]).status, 3, "bare flag")
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-leak=\(lost)", "--merge", path]).status, 3,
                       "merged: the lost bytes of both traces")
        // Without the scan, --fail-on-leak counts everything not freed (and the block the
        // runtime's cleanup would have freed is never freed).
        let unknown = try Self.write(Self.exitRecords(withScan: false), name: "noreach-fail.lt")
        XCTAssertEqual(try LeakReportRunner.run([unknown, "--fail-on-leak=\(unfreed + 300 - 1)"]).status, 3)
        XCTAssertEqual(try LeakReportRunner.run([unknown, "--fail-on-leak=\(unfreed + 300)"]).status, 0)
    }

    func testWithoutReachRecordsTheReportSaysReachabilityIsUnknown() throws {
        let path = try Self.write(Self.exitRecords(withScan: false), name: "noreach.lt")
        let root = try LeakReportRunner.json([path])
        let summary = root.object("summary")
        XCTAssertNil(summary["reachability"], "left out, never null")
        XCTAssertNil(summary["releasedByRuntimeCleanup"])
        XCTAssertEqual(summary.string("reachabilityUnknown"),
                       "no REACH record: the scan was off (LEAKTRACE_REACHABILITY=0) or the tracer predates it")
        XCTAssertTrue(root.objects("groups").allSatisfy { $0["reachability"] == nil })
        XCTAssertTrue(root.objects("mappings").allSatisfy { $0["reachability"] == nil })
        // Biggest first, as before reachability existed.
        XCTAssertEqual(root.objects("groups").first?.object("callsite").string("address"), "0x402000")
        let text = try LeakReportRunner.run([path]).stdout
        let lines = text.split(separator: "\n").filter { $0.contains("reachability") }
        XCTAssertEqual(lines, ["  reachability          unknown: no REACH record: the scan was off (LEAKTRACE_REACHABILITY=0) or the tracer predates it"])
        XCTAssertTrue(text.contains("Top 3 of 3 groups by callsite"), text)
    }

    func testInfoAndDumpShowTheScan() throws {
        let path = try Self.write(Self.exitRecords(), name: "reach-info.lt")
        let info = try LeakReportRunner.run(["info", path]).stdout
        XCTAssertTrue(info.contains("reachability scanned at exit in 1234us: 5 blocks classified, __libc_freeres called\n"), info)
        let unknown = try Self.write(Self.exitRecords(withScan: false), name: "noreach-info.lt")
        XCTAssertTrue(try LeakReportRunner.run(["info", unknown]).stdout
            .contains("reachability unknown (no REACH record: scan off with LEAKTRACE_REACHABILITY=0, or a tracer before it)\n"))
        let dump = try LeakReportRunner.run(["dump", path]).stdout
        XCTAssertTrue(dump.contains("MARK \"runtime cleanup at exit\" source=runtime-cleanup"), dump)
        XCTAssertTrue(dump.contains("REACH flags=scanned|libc-freeres scan-us=1234 root-bytes=65536 scanned-bytes=9000 count=3: "
                                    + "definite=1 indirect=1 possible=0 reachable=1"), dump)
    }

    // MARK: diff and growth

    func testDiffFiltersByCategory() throws {
        let old = try Self.write(Self.exitRecords(), name: "reach-old.lt")
        // The new run loses one more list head (0x20200, 24 bytes) and keeps a bigger cache.
        var records = Self.exitRecords()
        let end = records.count - 5   // before the MARK
        records.insert(.alloc(function: .malloc, path: .heap, address: 0x20200, size: 24, stack: 1), at: end)
        records = records.map { record in
            guard case let .reach(reach) = record, reach.entries.first?.address == 0x20000 else { return record }
            var more = reach
            more.entries.insert(ReachEntry(address: 0x20200, category: .definitelyLost), at: 2)
            return .reach(more)
        }
        let new = try Self.write(records, name: "reach-new.lt")
        let definite = try GrowthSupport.json(["diff", old, new, "--category", "definite"])
        XCTAssertEqual(amount(definite.object("total").object("old")), [1, 100])
        XCTAssertEqual(amount(definite.object("total").object("new")), [2, 124])
        let lost = try GrowthSupport.json(["diff", old, new, "--category", "definite,indirect", "--category", "possible"])
        XCTAssertEqual(amount(lost.object("total").object("new")), [4, 224])
        XCTAssertEqual(lost["categories"] as? [String], ["definite", "indirect", "possible"])
        XCTAssertNil(try GrowthSupport.json(["diff", old, new])["categories"])
        XCTAssertTrue(try LeakReportRunner.run(["diff", old, new, "--category", "indirect,definite"]).stdout
            .contains("  counting only blocks live at exit that are: definite, indirect\n"))
        let reachable = try GrowthSupport.json(["diff", old, new, "--category", "reachable"])
        XCTAssertEqual(amount(reachable.object("total").object("old")), [2, 9096])
        XCTAssertEqual(reachable.int("sitesChanged"), 0)

        let unknown = try Self.write(Self.exitRecords(withScan: false), name: "noreach-old.lt")
        let mixed = try GrowthSupport.json(["diff", unknown, new, "--category", "definite"])
        XCTAssertEqual(amount(mixed.object("total").object("old")), [0, 0])
        XCTAssertTrue((mixed["warnings"] as? [String] ?? []).contains {
            $0.contains("noreach-old.lt: reachability at exit is unknown")
        }, "\(mixed["warnings"] ?? "")")

        let bad = try LeakReportRunner.run(["diff", old, new, "--category", "definite,lost"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("unknown category 'lost' (definite, indirect, possible, reachable)"), bad.stderr)
        XCTAssertEqual(try LeakReportRunner.run(["diff", old, new, "--live", "--category", "definite"]).status, 2)
    }

    /// Between marks a and b the program allocates a block that is definitely lost at exit, one
    /// still reachable at exit, and one it frees after b (a later, different block lost at exit
    /// takes its address): at b only the first counts as definitely lost.
    func testGrowthFiltersByCategoryAtExit() throws {
        let records: [TraceRecord] = [
            .thread(tid: 7), .time(microseconds: 1000), Self.modules,
            .stack(id: 1, parent: 0, ip: 0x401000), .stack(id: 2, parent: 0, ip: 0x402000),
            .alloc(function: .malloc, path: .heap, address: 0x20000, size: 16, stack: 1),
            .mark(name: "a", source: 0),
            .time(microseconds: 5000),
            .alloc(function: .malloc, path: .heap, address: 0x21000, size: 100, stack: 1),
            .alloc(function: .malloc, path: .heap, address: 0x22000, size: 200, stack: 2),
            .alloc(function: .malloc, path: .heap, address: 0x23000, size: 300, stack: 1),
            .mark(name: "b", source: 0),
            .time(microseconds: 9000),
            .free(address: 0x23000),
            .alloc(function: .malloc, path: .heap, address: 0x23000, size: 30, stack: 1),
            .reach(ReachRecord(flags: [.scanned], scanMicroseconds: 10, rootBytes: 100, scannedBytes: 100,
                               entries: [ReachEntry(address: 0x20000, category: .definitelyLost),
                                         ReachEntry(address: 0x21000, category: .definitelyLost),
                                         ReachEntry(address: 0x22000, category: .stillReachable),
                                         ReachEntry(address: 0x23000, category: .definitelyLost)])),
            .end(TraceEnd(allocs: 5, frees: 1, reallocs: 0, mappings: 0, stacks: 2, chunks: 0, untraced: 0)),
        ]
        let path = try Self.write(records, name: "reach-growth.lt")
        let all = try GrowthSupport.json(["growth", path, "--from", "a", "--to", "b"])
        XCTAssertEqual(amount(all.object("total").object("atTo")), [4, 616])
        let definite = try GrowthSupport.json(["growth", path, "--from", "a", "--to", "b", "--category", "definite"])
        XCTAssertEqual(amount(definite.object("total").object("atFrom")), [1, 16])
        XCTAssertEqual(amount(definite.object("total").object("atTo")), [2, 116])
        XCTAssertEqual(amount(definite.object("total").object("newSinceFrom")), [1, 100])
        XCTAssertEqual(definite["categories"] as? [String], ["definite"])
        let reachable = try GrowthSupport.json(["growth", path, "--from", "a", "--to", "b", "--category", "reachable"])
        XCTAssertEqual(amount(reachable.object("total").object("atTo")), [1, 200])
        let help = try LeakReportRunner.run(["growth", "--help"]).stdout
        XCTAssertTrue(help.contains("still live at exit"), help)
    }

    // MARK: HTML

    func testHtmlPageDrawsTheCategoriesAndChecksThemInABrowser() throws {
        let path = try Self.write(Self.exitRecords(), name: "reach-html.lt")
        let result = try LeakReportRunner.run(["--format", "html", "--no-default-suppressions", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let file = try TracedProgram.makeTraceDirectory().appendingPathComponent("reach.html")
        try result.stdout.write(to: file, atomically: true, encoding: .utf8)
        let page = try HeadlessBrowser.open(file.absoluteString + "#selftest")
        XCTAssertTrue(page.dom.contains("<pre id=\"selftest\" data-result=\"pass\">"),
                      String(page.dom.components(separatedBy: "<pre id=\"selftest\"").last?.prefix(1500) ?? "no self-test"))
        XCTAssertTrue(page.dom.contains("ok   reachability totals definitelyLost 100, indirectlyLost 40, possiblyLost 60, "
                                        + "stillReachable 9096, unclassified 8"), page.dom)
        XCTAssertTrue(page.dom.contains("ok   groups listed lost first: 0 1 3"))
        XCTAssertTrue(page.dom.contains("<tr data-category=\"definitelyLost\" data-bytes=\"100\" data-blocks=\"1\">"))
        XCTAssertEqual(page.console.filter { $0.contains("ERROR:CONSOLE") || $0.contains("Uncaught") }, [])

        let unknown = try Self.write(Self.exitRecords(withScan: false), name: "noreach-html.lt")
        let plain = try LeakReportRunner.run(["--format", "html", unknown])
        let plainFile = try TracedProgram.makeTraceDirectory().appendingPathComponent("noreach.html")
        try plain.stdout.write(to: plainFile, atomically: true, encoding: .utf8)
        let plainPage = try HeadlessBrowser.open(plainFile.absoluteString + "#selftest")
        XCTAssertTrue(plainPage.dom.contains("<pre id=\"selftest\" data-result=\"pass\">"))
        XCTAssertTrue(plainPage.dom.contains("ok   reachability unknown is said"))
    }

    // MARK: A real run

    /// Programs/report_reachability.c, traced: every group's categories are the program's design,
    /// the NSS tables __libc_freeres frees are counted apart and in no group, and --fail-on-leak
    /// counts the lost bytes only. With LEAKTRACE_REACHABILITY=0 the report says it cannot tell.
    func testRealProgramGetsItsCategoriesByDesign() throws {
        // As users run it, with the runtimes' cleanup at exit.
        let trace = try CLIEndToEndTests.traceOne("report_reachability", flags: ["-O1"],
                                                  environment: ["LEAKTRACE_FREERES": "1"])
        let root = try LeakReportRunner.json([trace, "--top", "100", "--no-default-suppressions"])
        let summary = root.object("summary")
        let reachability = summary.object("reachability")
        XCTAssertEqual(amount(reachability.object("definitelyLost")), [2, 32 + 8192])
        XCTAssertEqual(amount(reachability.object("indirectlyLost")), [2, 64])
        XCTAssertEqual(amount(reachability.object("possiblyLost")), [1, 72])
        XCTAssertEqual(amount(reachability.object("stillReachable")), [1, 200])
        XCTAssertNil(reachability["unclassified"])
        XCTAssertEqual(reachability.object("scan")["libcFreeres"] as? Bool, true)
        XCTAssertGreaterThan(summary.object("releasedByRuntimeCleanup").int("blocks") ?? 0, 0)
        let expected: [(String, [String: [Int]])] = [
            ("lose_mapping", ["definitelyLost": [1, 8192]]),
            ("lose_list", ["definitelyLost": [1, 32], "indirectlyLost": [2, 64]]),
            ("keep_middle", ["possiblyLost": [1, 72]]),
            ("keep_cache", ["stillReachable": [1, 200]]),
        ]
        XCTAssertEqual(root.objects("groups").map { $0.object("callsite").string("function") ?? "?" }, expected.map(\.0))
        for (function, categories) in expected {
            let group = CLIEndToEndTests.group(root, function: function).object("reachability")
            for name in ["definitelyLost", "indirectlyLost", "possiblyLost", "stillReachable"] {
                XCTAssertEqual(amount(group.object(name)), categories[name] ?? [0, 0], "\(function) \(name)")
            }
        }
        let lost = 32 + 64 + 8192
        XCTAssertEqual(try LeakReportRunner.run([trace, "--no-default-suppressions", "--fail-on-leak=\(lost - 1)"]).status, 3)
        XCTAssertEqual(try LeakReportRunner.run([trace, "--no-default-suppressions", "--fail-on-leak=\(lost)"]).status, 0)
        XCTAssertEqual(try LeakReportRunner.run([trace, "--no-default-suppressions", "--fail-on-unfreed=\(lost)"]).status, 3)

        let executable = try TracedProgram.build("report_reachability", flags: ["-O1"])
        let off = try TracedProgram.trace(executable, environment: ["LEAKTRACE_REACHABILITY": "0"])
        let offTrace = try XCTUnwrap(off.traces.first)
        let offSummary = try LeakReportRunner.json([offTrace]).object("summary")
        XCTAssertNil(offSummary["reachability"])
        XCTAssertEqual(offSummary.string("reachabilityUnknown"),
                       "no REACH record: the scan was off (LEAKTRACE_REACHABILITY=0) or the tracer predates it")
    }
}
