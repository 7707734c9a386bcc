import Foundation
import XCTest

/// glibc's own log of a program's allocator calls (mtrace: libc_malloc_debug.so preloaded, with
/// a preloaded constructor that calls mtrace()), an oracle independent of the tracer: a tracer
/// that lost or doubled the same events every run would still disagree with it.
struct MtraceCount {
    /// Calls that allocated (`+`: malloc, calloc, the memalign family, realloc of NULL) and
    /// reallocs of a block (`<`, each followed by `>`).
    var allocations = 0
    var reallocs = 0
    /// Frees (`-`), including those of glibc's exit-time cleanup (`__libc_freeres`, which
    /// mtrace runs after every destructor, the tracer's too).
    var frees = 0

    /// The calls the tracer records as ALLOC or REALLOC records.
    var allocationCalls: Int { allocations + reallocs }

    init(log: String) {
        for line in log.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let first = fields.first else { continue }
            let operation = first == "@" ? (fields.count > 2 ? fields[2] : "") : first
            switch operation {
            case "+": allocations += 1
            case "<": reallocs += 1
            case "-": frees += 1
            default: break
            }
        }
    }
}

extension HazardKit {
    /// Runs `invocation` once more, untraced, under glibc's mtrace, in a fresh output directory,
    /// with the same launcher (environment and addresses) as `runBoth`. Only for a program that
    /// runs no other program: every process would write the same MALLOC_TRACE file.
    static func mtraceCount(_ invocation: Invocation) throws -> MtraceCount {
        let debug = try systemLibrary("libc_malloc_debug.so.0", package: "libc6")
        let starter = try TracedProgram.buildLibrary("mtrace_start")
        let output = try scratchDirectory(), logDirectory = try scratchDirectory()
        let log = logDirectory.appendingPathComponent("mtrace.log").path
        var environment = invocation.environment
        environment[invocation.preloadVariable] = (invocation.preloadBefore + [debug, starter] + invocation.preloadAfter)
            .joined(separator: ":")
        // The traced run's variables, inert without the tracer, the log's path in place of where
        // traces go (Programs/mtrace_start.c): a program that keeps its environment in a hash
        // table (perl's %ENV) then allocates as it does when traced.
        environment.merge(tracerSettings(invocation, output: log)) { current, _ in current }
        let (executable, arguments, launchEnvironment) = launch(invocation, expand(invocation.arguments, output), environment)
        let run = try TracedProgram.run(executable: executable, arguments: arguments, environment: launchEnvironment,
                                        timeout: invocation.timeout,
                                        currentDirectory: invocation.sameEnvironmentEveryRun ? output : invocation.workingDirectory)
        guard run.status == 0 else { throw TestFailure("\(invocation.executable) under mtrace exited \(run.status): \(run.stderr)") }
        return MtraceCount(log: try String(contentsOfFile: log, encoding: .utf8))
    }
}
