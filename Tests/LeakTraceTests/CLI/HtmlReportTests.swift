import Foundation
import XCTest

/// `--format html` opened in a real browser (headless Chromium): the report's page shows the
/// totals and groups of a program whose leaks are known from its source (Programs/analysis_leaks.c),
/// and its own check (`#selftest`) clicks a frame of the icicle graph to zoom, searches, sorts
/// and opens a group; the console shows no error. The growth, diff and timeline pages likewise.
final class HtmlReportTests: XCTestCase {
    func testPageShowsTheLeaksAndZoomsInABrowser() throws {
        let trace = try CLIEndToEndTests.traceOne("analysis_leaks")
        let result = try LeakReportRunner.run(["--format", "html", "--top", "100", trace])
        XCTAssertEqual(result.status, 0, result.stderr)
        let html = result.stdout
        // Self-contained: nothing is loaded from anywhere.
        for reference in ["src=", "href=", "<link", "@import", "url("] {
            XCTAssertFalse(html.contains(reference), reference)
        }
        let file = try TracedProgram.makeTraceDirectory().appendingPathComponent("report.html")
        try html.write(to: file, atomically: true, encoding: .utf8)

        let page = try HeadlessBrowser.open(file.absoluteString + "#selftest")
        XCTAssertTrue(page.dom.contains("<pre id=\"selftest\" data-result=\"pass\">"),
                      String(page.dom.components(separatedBy: "<pre id=\"selftest\"").last?.prefix(1500) ?? "no self-test"))
        XCTAssertTrue(page.console.contains { $0.contains("\"selftest: pass\"") }, "\(page.console)")
        XCTAssertEqual(page.console.filter { $0.contains("ERROR:CONSOLE") || $0.contains("Uncaught") }, [])

        // The leaked total, as the JSON report counts it, and every group of the program's
        // design with its bytes.
        let json = try LeakReportRunner.json([trace, "--top", "100"])
        let leaked = json.object("summary").object("leaked")
        XCTAssertTrue(page.dom.contains("id=\"leaked\" data-bytes=\"\(leaked.int("bytes") ?? -1)\" data-blocks=\"\(leaked.int("blocks") ?? -1)\""))
        let expected = [("big_after_raise", 200_000), ("after_mallopt", 100_000), ("pin_heap", 10000), ("grown", 3000),
                        ("make_list", 1000), ("thread_main", 1000), ("copy_name", 10)]
        for (function, bytes) in expected {
            XCTAssertTrue(page.dom.contains("<tr class=\"group\" data-bytes=\"\(bytes)\" data-name=\"\(function) ("), function)
        }
        // The self-test leaves the graph zoomed into the biggest group's call site.
        XCTAssertTrue(page.dom.contains("data-zoomed=\"big_after_raise\""))
    }

    /// The pages of `growth`, `diff` and `timeline` on the shapes program (Programs/growth_shapes.c):
    /// from mark warm to mark done, leak_request leaks 150 blocks of 1000 bytes and the cache
    /// holds 32 entries of 1024 bytes; the marks are warm, middle, signal-1 and done.
    func testGrowthDiffAndTimelinePages() throws {
        let trace = try GrowthSupport.shapesTrace.get()
        let directory = try TracedProgram.makeTraceDirectory()
        func open(_ arguments: [String], name: String) throws -> HeadlessBrowser.Page {
            let result = try LeakReportRunner.run(arguments + ["--format", "html"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let file = directory.appendingPathComponent(name)
            try result.stdout.write(to: file, atomically: true, encoding: .utf8)
            let page = try HeadlessBrowser.open(file.absoluteString + "#selftest")
            XCTAssertTrue(page.dom.contains("<pre id=\"selftest\" data-result=\"pass\">"), "\(name): "
                          + String(page.dom.components(separatedBy: "<pre id=\"selftest\"").last?.prefix(800) ?? "no self-test"))
            XCTAssertEqual(page.console.filter { $0.contains("ERROR:CONSOLE") || $0.contains("Uncaught") }, [], name)
            return page
        }
        let growth = try open(["growth", trace, "--from", "warm", "--to", "done"], name: "growth.html")
        XCTAssertTrue(growth.dom.contains("<tr class=\"site\" data-delta=\"150000\" data-name=\"leak_request ("), "growth")
        XCTAssertTrue(growth.dom.contains("<tr class=\"site\" data-delta=\"32768\" data-name=\"cache_put ("), "growth")
        XCTAssertEqual(growth.dom.components(separatedBy: "class=\"mark\"").count - 1, 4, "growth: one line per mark")
        XCTAssertTrue(growth.dom.contains("data-series=\"liveHeapBytes\""))

        let diff = try open(["diff", try CommandAgreementTests.emptyTrace(), trace], name: "diff.html")
        XCTAssertTrue(diff.dom.contains("<tr class=\"site\" data-delta=\"150000\" data-name=\"leak_request ("), "diff")
        XCTAssertTrue(diff.dom.contains("<tr class=\"site\" data-delta=\"32768\" data-name=\"cache_put ("), "diff")

        let timeline = try open(["timeline", trace], name: "timeline.html")
        XCTAssertEqual(timeline.dom.components(separatedBy: "class=\"mark\"").count - 1, 4, "timeline: one line per mark")
        for series in ["rssBytes", "liveHeapBytes", "mappedBytes"] {
            XCTAssertTrue(timeline.dom.contains("data-series=\"\(series)\""), series)
        }
    }

    func testHtmlTakesOneTrace() throws {
        let result = try LeakReportRunner.run(["--format", "html", "a.lt", "b.lt"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stderr, "leakreport: error: --format html takes one trace at a time\n")
    }
}
