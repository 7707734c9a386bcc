import Foundation
import XCTest
import TraceFormat

/// `leakreport diff`: two runs of one program, matched by call site despite ASLR.
final class DiffTests: XCTestCase {
    /// growth_diff traced with N = 3 and N = 10, once per test run.
    static let runs: Result<(small: String, large: String), Error> = Result {
        (try GrowthSupport.trace("growth_diff", arguments: ["3"]).path,
         try GrowthSupport.trace("growth_diff", arguments: ["10"]).path)
    }

    func testDiffOfTwoRunsGivesTheExactDifference() throws {
        let (small, large) = try Self.runs.get()
        let root = try GrowthSupport.json(["diff", small, large])
        XCTAssertEqual(root.string("kind"), "diff")
        XCTAssertEqual(root.string("measure"), "leaked")
        let sites = root.objects("sites")
        func check(_ function: String, old: (Int, Int), new: (Int, Int), change: String, line: UInt = #line) throws {
            let site = try XCTUnwrap(GrowthSupport.site(sites, function), function, line: line)
            XCTAssertEqual(site.object("old").int("blocks"), old.0, function, line: line)
            XCTAssertEqual(site.object("old").int("bytes"), old.1, function, line: line)
            XCTAssertEqual(site.object("new").int("blocks"), new.0, function, line: line)
            XCTAssertEqual(site.object("new").int("bytes"), new.1, function, line: line)
            XCTAssertEqual(site.int("deltaBytes"), new.1 - old.1, function, line: line)
            XCTAssertEqual(site.string("change"), change, function, line: line)
        }
        try check("per_item", old: (3, 300), new: (10, 1000), change: "grew")
        try check("per_pair", old: (6, 300), new: (20, 1000), change: "grew")
        try check("only_large", old: (0, 0), new: (1, 4000), change: "appeared")
        try check("only_small", old: (1, 3000), new: (0, 0), change: "vanished")
        // scratch frees everything it allocates: never leaked, so not in the diff.
        XCTAssertNil(GrowthSupport.site(sites, "scratch"))
        XCTAssertEqual(sites.compactMap { $0.object("key").string("function") },
                       ["only_large", "per_pair", "per_item", "only_small"], "sorted by growth")
        XCTAssertEqual(try XCTUnwrap(GrowthSupport.site(sites, "per_item")).object("key").int("line"),
                       try CLIEndToEndTests.line(of: "@item", in: "growth_diff.c"))
        XCTAssertEqual(root.int("appeared"), 1)
        XCTAssertEqual(root.int("vanished"), 1)

        // The program's own sites account for the whole difference (stdio and the loader
        // leak the same in both runs).
        XCTAssertEqual(root.object("total").int("deltaBytes"), 700 + 700 + 4000 - 3000)
        XCTAssertEqual(root.object("total").int("deltaBlocks"), 7 + 14 + 1 - 1)
        XCTAssertEqual(root.objects("byPath").first { $0.string("path") == "heap" }?.int("deltaBytes"), 2400)

        // The two runs had different addresses (ASLR): the match was not by address.
        let oldSite = try GrowthSupport.json([small]).objects("groups").first { $0.object("callsite").string("function") == "per_item" }
        let newSite = try GrowthSupport.json([large]).objects("groups").first { $0.object("callsite").string("function") == "per_item" }
        let oldAddress = try XCTUnwrap(oldSite?.object("callsite").string("address"))
        let newAddress = try XCTUnwrap(newSite?.object("callsite").string("address"))
        if oldAddress == newAddress {
            print("note: ASLR seems off on this machine (same call-site address in both runs)")
        }
        XCTAssertEqual(oldSite?.object("callsite").string("moduleOffset"), newSite?.object("callsite").string("moduleOffset"))
    }

    func testFailOnGrowthExitStatus() throws {
        let (small, large) = try Self.runs.get()
        XCTAssertEqual(try LeakReportRunner.run(["diff", small, large, "--fail-on-growth", "2399"]).status, 4)
        XCTAssertEqual(try LeakReportRunner.run(["diff", small, large, "--fail-on-growth", "2400"]).status, 0)
        XCTAssertEqual(try LeakReportRunner.run(["diff", small, large, "--fail-on-growth", "2K"]).status, 4)
        // Reversed, the leaks shrank: no growth.
        XCTAssertEqual(try LeakReportRunner.run(["diff", large, small, "--fail-on-growth", "0"]).status, 0)
        XCTAssertEqual(try LeakReportRunner.run(["diff", small, large]).status, 0)
        let json = try GrowthSupport.json(["diff", small, large, "--fail-on-growth", "1000"], status: 4)
        XCTAssertEqual(json["exceedsLimit"] as? Bool, true)
        let text = try LeakReportRunner.run(["diff", small, large, "--fail-on-growth", "1000"])
        XCTAssertTrue(text.stdout.contains("growth +2.34 KiB exceeds --fail-on-growth 1000 B"), text.stdout)
        // Block counts in words: one block, several blocks.
        func row(_ function: String) -> String { text.stdout.split(separator: "\n").first { $0.contains(function) }.map(String.init) ?? "" }
        XCTAssertTrue(row("only_large").contains("+1 block "), row("only_large"))
        XCTAssertTrue(row("only_small").contains("-1 block "), row("only_small"))
        XCTAssertTrue(row("per_item").contains("+7 blocks"), row("per_item"))
    }

    func testLiveComparesPeaksPerSite() throws {
        let (small, large) = try Self.runs.get()
        let root = try GrowthSupport.json(["diff", "--live", small, large])
        XCTAssertEqual(root.string("measure"), "peak-live")
        let sites = root.objects("sites")
        XCTAssertEqual(GrowthSupport.site(sites, "per_item")?.int("deltaBytes"), 700)
        // scratch holds one 64-byte block at a time in both runs: its peak did not change.
        XCTAssertNil(GrowthSupport.site(sites, "scratch"))
    }

    func testSyntheticTracesAtDifferentAddressesMatchByModuleOffset() throws {
        // The same program loaded at two biases, without symbols: sites are module+offset.
        func trace(bias: UInt64, leaks: Int, name: String) throws -> String {
            var records: [TraceRecord] = [
                .thread(tid: 1), .time(microseconds: 0),
                .modules(generation: 1, modules: [Module(path: "/usr/bin/sample-app", bias: bias, buildID: [1],
                                                         segments: [ModuleSegment(start: bias, size: 0x10000, flags: 5)])]),
                .stack(id: 1, parent: 0, ip: bias + 0x1234),
            ]
            for index in 0..<leaks {
                records.append(.alloc(function: .malloc, path: .heap, address: 0x9000_0000 + UInt64(index) * 0x100,
                                      size: 40, stack: 1))
            }
            return try CLITests.writeTrace([records], name: name).path
        }
        let old = try trace(bias: 0x5555_0000_0000, leaks: 2, name: "old.lt")
        let new = try trace(bias: 0x7777_0000_0000, leaks: 5, name: "new.lt")
        let root = try GrowthSupport.json(["diff", old, new, "--no-symbolize"])
        let sites = root.objects("sites")
        XCTAssertEqual(sites.count, 1)
        XCTAssertEqual(sites.first?.object("key").string("moduleOffset"), "0x1234")
        XCTAssertEqual(sites.first?.object("key").string("module"), "sample-app")
        XCTAssertEqual(sites.first?.int("deltaBytes"), 120)
        XCTAssertEqual(sites.first?.int("deltaBlocks"), 3)
        XCTAssertEqual(sites.first?.string("name"), "sample-app+0x1234")
    }

    func testBadInputIsOneLineAndStatusTwo() throws {
        let (small, _) = try Self.runs.get()
        for arguments in [["diff", small], ["diff", small, "/nonexistent.lt"], ["diff", small, small, "--fail-on-growth", "lots"],
                          ["diff", small, small, "--format", "xml"]] {
            let result = try LeakReportRunner.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
        }
    }
}
