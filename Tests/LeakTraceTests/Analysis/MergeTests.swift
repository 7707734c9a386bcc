import Foundation
import XCTest

/// `leakreport --merge`: several traces reported as one, by call site.
final class MergeTests: XCTestCase {
    func testMergedTotalsAreTheSumsOfTheReports() throws {
        let traces = try ["2", "5", "10"].map { try GrowthSupport.trace("growth_diff", arguments: [$0]).path }
        let merged = try GrowthSupport.json(["--merge", "--top", "100"] + traces)
        XCTAssertEqual(merged.string("kind"), "merge")
        let reports = try traces.map { try GrowthSupport.json([$0]) }
        let leaked = reports.map { $0.object("summary").object("leaked") }
        XCTAssertEqual(merged.object("leaked").int("bytes"), leaked.compactMap { $0.int("bytes") }.reduce(0, +))
        XCTAssertEqual(merged.object("leaked").int("blocks"), leaked.compactMap { $0.int("blocks") }.reduce(0, +))
        XCTAssertEqual(merged.objects("traces").compactMap { $0.object("leaked").int("bytes") },
                       leaked.compactMap { $0.int("bytes") })
        // Every site is listed (--top 100): they add up to the total.
        let sites = merged.objects("sites")
        XCTAssertEqual(sites.compactMap { $0.int("bytes") }.reduce(0, +), merged.object("leaked").int("bytes"))
        XCTAssertEqual(merged.int("siteCount"), sites.count)
        let item = try XCTUnwrap(GrowthSupport.site(sites, "per_item"))
        XCTAssertEqual(item.int("blocks"), 2 + 5 + 10)
        XCTAssertEqual(item.int("bytes"), 1700)
        XCTAssertEqual(item.int("traces"), 3)
        let pair = try XCTUnwrap(GrowthSupport.site(sites, "per_pair"))
        XCTAssertEqual(pair.int("blocks"), 34)
        XCTAssertEqual(pair.int("traces"), 3, "two stacks per trace still count one trace")
        XCTAssertEqual(GrowthSupport.site(sites, "only_large")?.int("traces"), 1)
        XCTAssertEqual(GrowthSupport.site(sites, "only_small")?.int("bytes"), 3000)

        // Text: each report in turn, then the merge.
        let text = try LeakReportRunner.run(["--merge"] + traces)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertEqual(text.stdout.components(separatedBy: "leakreport: ").count - 1, 4, text.stdout)
        XCTAssertTrue(text.stdout.contains("3 traces merged by call site"), text.stdout)
        XCTAssertTrue(text.stdout.contains("3 of 3 traces"), text.stdout)
        // --fail-on-unfreed applies to the merged total; --fail-on-leak to the traces' lost bytes
        // (definitely and indirectly lost, the traces knowing reachability at exit).
        let total = try XCTUnwrap(merged.object("leaked").int("bytes"))
        XCTAssertEqual(try LeakReportRunner.run(["--merge", "--fail-on-unfreed=\(total - 1)"] + traces).status, 3)
        XCTAssertEqual(try LeakReportRunner.run(["--merge", "--fail-on-unfreed=\(total)"] + traces).status, 0)
        let lost = try reports.map { report -> Int in
            let reachability = try XCTUnwrap(report.object("summary")["reachability"] as? [String: Any])
            return (reachability.object("definitelyLost").int("bytes") ?? 0) + (reachability.object("indirectlyLost").int("bytes") ?? 0)
        }.reduce(0, +)
        XCTAssertEqual(lost, 0, "growth_diff keeps every block in a global: still reachable")
        XCTAssertEqual(try LeakReportRunner.run(["--merge", "--fail-on-leak"] + traces).status, 0)
        XCTAssertEqual(try LeakReportRunner.run(["--merge", "--fail-on-unfreed"] + traces).status, 3)
        // Without --merge, JSON still takes one trace.
        XCTAssertEqual(try LeakReportRunner.run(["--format", "json"] + traces).status, 2)
    }
}
