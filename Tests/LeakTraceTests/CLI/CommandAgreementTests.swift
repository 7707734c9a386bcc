import Foundation
import TraceFormat
import XCTest

/// Every command that replays a trace loads it the same way: one real trace gives the same
/// totals, the same reading outcome and the same suppressions through `report`, `growth`,
/// `diff` and `--merge`.
final class CommandAgreementTests: XCTestCase {
    /// A trace with nothing in it but its END record: the run `diff` compares against.
    static func emptyTrace() throws -> String {
        let end = TraceRecord.end(TraceEnd(allocs: 0, frees: 0, reallocs: 0, mappings: 0, stacks: 0, chunks: 1,
                                           untraced: 0))
        return try CLITests.writeTrace([[.thread(tid: 1), .time(microseconds: 0), end]], name: "empty.lt").path
    }

    /// `mappings` leaks every mapping kind, brk growth and (through printf) the stdio buffer
    /// the built-in suppressions set aside; `paths` leaks on the heap and mmap-threshold paths.
    func testReportGrowthDiffAndMergeCountTheSameTotals() throws {
        let empty = try Self.emptyTrace()
        let scratch = try temporaryDirectory() + "/mappings.dat"
        for (program, arguments) in [("mappings", [scratch]), ("paths", [])] {
            let trace = try GrowthSupport.trace(program, arguments: arguments).path
            let report = try GrowthSupport.json([trace]).object("summary").object("leaked")
            XCTAssertGreaterThan(report.int("bytes") ?? 0, 0, program)
            let growthDocument = try GrowthSupport.json(["growth", trace, "--from", "start", "--to", "end"])
            // B at the end: the whole trace was read.
            XCTAssertEqual(growthDocument.object("trace").object("outcome")["isComplete"] as? Bool, true, program)
            let growth = growthDocument.object("total").object("atTo")
            let diff = try GrowthSupport.json(["diff", empty, trace]).object("total").object("new")
            let merge = try GrowthSupport.json([trace, "--merge"]).object("leaked")
            for (command, total) in [("growth", growth), ("diff", diff), ("--merge", merge)] {
                XCTAssertEqual(total.int("bytes"), report.int("bytes"), "\(program): \(command) bytes")
                XCTAssertEqual(total.int("blocks"), report.int("blocks"), "\(program): \(command) blocks")
            }
        }
    }

    /// A trace that ends where its process called exec is whole: no command calls it incomplete.
    func testExecEndedTraceIsWholeInEveryCommand() throws {
        let run = try TracedProgram.trace(try TracedProgram.build("forker"))
        XCTAssertEqual(run.status, 0, run.stderr)
        let exec = try XCTUnwrap(run.traces.first { trace in
            let info = try? LeakReportRunner.run(["info", trace])
            return info?.stdout.contains("complete ended by exec of") == true
        }, "no trace of \(run.traces) ends by exec")

        func assertWhole(_ facts: [String: Any], warnings: [Any], _ command: String) {
            XCTAssertNotNil(facts.object("outcome").string("endedByExec"), "\(command): \(facts)")
            XCTAssertFalse(warnings.contains { "\($0)".contains("incomplete") }, "\(command): \(warnings)")
        }
        let report = try GrowthSupport.json([exec, "--no-follow-exec"])
        assertWhole(report.object("trace"), warnings: report["warnings"] as? [Any] ?? [], "report")
        let diff = try GrowthSupport.json(["diff", exec, exec, "--no-follow-exec"])
        assertWhole(diff.object("old"), warnings: diff["warnings"] as? [Any] ?? [], "diff")
        assertWhole(diff.object("new"), warnings: [], "diff")
        let live = try GrowthSupport.json(["diff", "--live", exec, exec, "--no-follow-exec"])
        assertWhole(live.object("new"), warnings: live["warnings"] as? [Any] ?? [], "diff --live")
        let merge = try GrowthSupport.json([exec, "--merge"])
        assertWhole(merge.objects("traces").first?.object("trace") ?? [:], warnings: merge["warnings"] as? [Any] ?? [],
                    "--merge")
        let growth = try GrowthSupport.json(["growth", exec, "--no-follow-exec"])
        assertWhole(growth.object("trace"), warnings: growth["warnings"] as? [Any] ?? [], "growth")
        let text = try LeakReportRunner.run([exec, "--merge"])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertFalse(text.stdout.contains("INCOMPLETE") || text.stdout.contains("incomplete"), text.stdout)
    }

    /// `diff` and `growth` apply the built-in suppressions as `report` does, and
    /// `--no-default-suppressions` turns them off.
    func testDiffAndGrowthApplyTheBuiltInSuppressions() throws {
        let empty = try Self.emptyTrace()
        let scratch = try temporaryDirectory() + "/mappings.dat"
        let trace = try GrowthSupport.trace("mappings", arguments: [scratch]).path
        let stdio = "_IO_file_doallocate"
        for command in [["diff", empty, trace], ["growth", trace]] {
            let plain = try GrowthSupport.json(command + ["--no-default-suppressions", "--top", "100"])
            XCTAssertNotNil(GrowthSupport.site(plain.objects("sites"), stdio), "\(command): \(plain.objects("sites"))")
            let defaults = try GrowthSupport.json(command + ["--top", "100"])
            XCTAssertNil(GrowthSupport.site(defaults.objects("sites"), stdio), "\(command)")
            XCTAssertFalse(defaults.objects("sites").isEmpty, "\(command)")
        }
    }

    /// `leakreport --version` is the version the tracer writes into the trace header.
    func testAnalyzerAndTracerShareOneVersion() throws {
        let trace = try GrowthSupport.trace("growth_diff", arguments: ["1"]).path
        let tracer = try XCTUnwrap(try TraceReader(path: trace).header.tracerVersion)
        let analyzer = try LeakReportRunner.run(["--version"])
        XCTAssertEqual(analyzer.status, 0, analyzer.stderr)
        XCTAssertEqual(analyzer.stdout.trimmingCharacters(in: .whitespacesAndNewlines), tracer)
    }
}
