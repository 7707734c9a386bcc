// End-to-end throughput of replay + analysis on a trace of 20 million ALLOC/FREE records
// (the reader benchmark's synthetic trace, zstd chunks), run through the real `leakreport`
// executable. Skipped unless LEAKTRACE_BENCH=1; meant for a release build:
//   LEAKTRACE_BENCH=1 swift test -c release --filter AnalysisBenchmarkTests

import Foundation
import XCTest
import TraceFormat

final class AnalysisBenchmarkTests: XCTestCase {
    func testReportOnTwentyMillionEvents() throws {
        let (records, bytes, expected) = try ReaderBenchmarkTests.analyzerBenchmarkTrace()
        // LEAKTRACE_BENCH_TRACE=PATH keeps the trace there (for profiling).
        let keep = ProcessInfo.processInfo.environment["LEAKTRACE_BENCH_TRACE"]
        let path = try keep.map { path -> String in
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw TestFailure("cannot write \(path)") }
            return path
        } ?? temporaryFile(bytes, name: "bench20m.lt")
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: path) } }

        // /usr/bin/time measures the analyzer alone: CPU seconds and peak resident memory.
        let wallStart = Date()
        let result = try TracedProgram.run(executable: "/usr/bin/time",
                                           arguments: ["-f", "%U %S %M", LeakReportRunner.executable,
                                                       "--format", "json", "--no-symbolize", path],
                                           environment: [:], timeout: 600)
        let wall = Date().timeIntervalSince(wallStart)
        XCTAssertEqual(result.status, 0, result.stderr)
        let measured = result.stderr.split(separator: "\n").last?.split(separator: " ").compactMap { Double($0) } ?? []
        guard measured.count == 3 else { throw TestFailure("unexpected /usr/bin/time output: \(result.stderr)") }
        let cpu = measured[0] + measured[1]
        let peakKiB = Int(measured[2])

        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let trace = root.object("trace")
        XCTAssertEqual(trace.int("allocs"), expected.allocs)
        XCTAssertEqual(trace.int("frees"), expected.frees)
        XCTAssertEqual(root.object("summary").object("leaked").int("blocks"), expected.allocs - expected.frees)

        let rate = Double(records) / cpu
        print("leakreport on \(records) records: \(String(format: "%.2f", wall)) s wall, "
              + "\(String(format: "%.2f", cpu)) s CPU, \(String(format: "%.1f", rate / 1e6)) M records/s (CPU), "
              + "\(String(format: "%.1f", Double(expected.allocs) / cpu / 1e6)) M allocation calls/s, peak RSS \(peakKiB / 1024) MiB")
        // heaptrack_print reads 6-11 M allocation calls a second here (2.4 M/s measured on a busy
        // machine against the same workload); this floor is 3x its low end.
        XCTAssertGreaterThan(Double(expected.allocs) / cpu, 7e6, "allocation calls per CPU second")
    }
}
