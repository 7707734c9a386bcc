import Foundation
import XCTest

/// Runs leakreport subcommands and traces the growth fixture programs.
enum GrowthSupport {
    /// Runs `leakreport ARGS --format json` and parses the document (status must be `status`).
    static func json(_ arguments: [String], status: Int32 = 0) throws -> [String: Any] {
        let result = try LeakReportRunner.run(arguments + ["--format", "json"])
        guard result.status == status else {
            throw TestFailure("leakreport \(arguments) exited \(result.status): \(result.stderr)")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(result.stdout.prefix(200))")
        }
        return object
    }

    /// Traces `program` with `environment` and returns its one trace and the run.
    static func trace(_ program: String, arguments: [String] = [], environment: [String: String] = [:]) throws -> (path: String, run: TracedRun) {
        let executable = try TracedProgram.build(program)
        let run = try TracedProgram.trace(executable, arguments: arguments, environment: environment)
        guard run.status == 0, !run.terminatedBySignal else {
            throw TestFailure("\(program) exited \(run.status): \(run.stderr)")
        }
        guard let trace = run.traces.first, run.traces.count == 1 else {
            throw TestFailure("expected one trace from \(program), got \(run.traces)")
        }
        return (trace, run)
    }

    /// The fast sampling and flushing that keep the shapes program's timeline and signal marks
    /// fine-grained over its 1.5 s.
    static let shapesEnvironment = ["LEAKTRACE_SAMPLE_MS": "20", "LEAKTRACE_FLUSH_MS": "20",
                                    "LEAKTRACE_MARK_SIGNAL": "12"]

    /// The shapes program traced once per test run (it takes 1.5 s).
    static let shapesTrace: Result<String, Error> = Result {
        try trace("growth_shapes", environment: shapesEnvironment).path
    }

    /// Entries of `list` whose call-site function is `function`.
    static func site(_ list: [[String: Any]], _ function: String) -> [String: Any]? {
        let matches = list.filter { $0.object("key").string("function") == function }
        return matches.count == 1 ? matches[0] : nil
    }
}
