// `leakreport diff` of two traces of 20 million ALLOC/FREE records each (the reader benchmark's
// synthetic trace, zstd chunks) against reading both (`leakreport info`, which decodes every
// record without replaying). Skipped unless LEAKTRACE_BENCH=1; meant for a release build:
//   LEAKTRACE_BENCH=1 swift test -c release --filter DiffBenchmarkTests

import Foundation
import XCTest

final class DiffBenchmarkTests: XCTestCase {
    func testDiffOfTwoTwentyMillionEventTraces() throws {
        let (records, bytes, expected) = try ReaderBenchmarkTests.analyzerBenchmarkTrace()
        let old = try temporaryFile(bytes, name: "diff-old.lt")
        let new = try temporaryFile(bytes, name: "diff-new.lt")
        defer {
            try? FileManager.default.removeItem(atPath: old)
            try? FileManager.default.removeItem(atPath: new)
        }

        func seconds(_ arguments: [String]) throws -> (Double, TracedRun) {
            let start = Date()
            let result = try LeakReportRunner.run(arguments, timeout: 600)
            XCTAssertEqual(result.status, 0, result.stderr)
            return (Date().timeIntervalSince(start), result)
        }
        // Best of two of each, to keep another engineer's build on the shared cores out of it.
        var reading = Double.infinity, diffing = Double.infinity
        var document: [String: Any] = [:]
        for _ in 0..<2 {
            let (first, _) = try seconds(["info", old])
            let (second, _) = try seconds(["info", new])
            reading = min(reading, first + second)
            let (diff, result) = try seconds(["diff", "--no-symbolize", "--format", "json", old, new])
            diffing = min(diffing, diff)
            document = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        }
        let leaked = expected.allocs - expected.frees
        XCTAssertEqual(document.object("total").object("old").int("blocks"), leaked)
        XCTAssertEqual(document.object("total").int("deltaBytes"), 0)
        XCTAssertEqual(document.int("sitesChanged"), 0)
        print("diff of two \(records)-record traces: \(String(format: "%.2f", diffing)) s; reading both: "
              + "\(String(format: "%.2f", reading)) s; ratio \(String(format: "%.2f", diffing / reading)) (target <= 1.5)")
        XCTAssertLessThanOrEqual(diffing, 1.5 * reading)
    }
}
