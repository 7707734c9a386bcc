// Shared machinery of the hazard suite (docs/reliability.md): run a program with and without
// the tracer under a watchdog, compare everything the program does that anyone could observe
// (stdout, stderr apart from the tracer's own documented lines, exit status, files it wrote),
// and read what the tracer wrote with a streaming replay whose memory follows live blocks.

import Foundation
import XCTest
import TraceFormat
import Symbolization

/// Everything the hazard tests share, in one namespace.
enum HazardKit {
    // MARK: - Repetitions

    /// How many times each hazard case runs (plain and traced): `LEAKTRACE_HAZARD_RUNS`, 3 when
    /// unset. `Scripts/hazards.sh` sets 20 for the figures; the default keeps `swift test` short.
    static var runsPerCase: Int {
        guard let text = ProcessInfo.processInfo.environment["LEAKTRACE_HAZARD_RUNS"],
              let runs = Int(text), runs > 0 else { return 3 }
        return min(runs, 1000)
    }

    // MARK: - One invocation, plain and traced

    /// How to start one hazard program. `{out}` in an argument becomes the run's own output
    /// directory, whose files are compared between the plain and the traced run.
    struct Invocation {
        var executable: String
        var arguments: [String] = []
        /// Added to both runs' environment.
        var environment: [String: String] = [:]
        /// Added only to the traced run's environment (LEAKTRACE_* settings).
        var tracerEnvironment: [String: String] = [:]
        /// Libraries preloaded in both runs, ahead of libleaktrace in the traced run.
        var preloadBefore: [String] = []
        /// Libraries preloaded in both runs, behind libleaktrace in the traced run.
        var preloadAfter: [String] = []
        /// Watchdog: a run still going after this long is killed and the case fails as a hang.
        var timeout: TimeInterval = 120
        /// Lines the traced run may add to stderr, each starting `leaktrace: ` followed by one of
        /// these prefixes (the tracer's documented messages). Any other added line is a failure.
        var allowedTracerLines: [String] = []
        /// Working directory of both runs (nil: the test's).
        var workingDirectory: URL?
        /// The variable that carries the preload list. A wrapper that must not itself be traced
        /// (a shell that mounts a small file system first) takes it in another variable and sets
        /// LD_PRELOAD for the program only.
        var preloadVariable = "LD_PRELOAD"
        /// Where the traced run's traces go (`%e` and `%p` allowed); nil: a fresh directory.
        var traceOutput: String?
        /// Gives the program the same environment, byte for byte and in the same order, on every
        /// run: the traced program runs in its (fresh) trace directory with a relative
        /// LEAKTRACE_OUTPUT, and both runs start through `env -i` with the variables sorted
        /// (Foundation passes a dictionary, whose order changes from one process to the next). A
        /// program that builds a hash table from its environment (perl's %ENV) then does the same
        /// work every time.
        var sameEnvironmentEveryRun = false
        /// With `sameEnvironmentEveryRun`: also turn off address-space randomisation
        /// (`setarch -R`), for programs whose allocations follow their addresses (GCC's hash tables
        /// hash pointers). The launchers themselves are never traced.
        var fixedAddresses = false

        init(_ executable: String, _ arguments: [String] = [], timeout: TimeInterval = 120) {
            self.executable = executable
            self.arguments = arguments
            self.timeout = timeout
        }
    }

    /// What one plain run and one traced run of an invocation did.
    struct Comparison {
        var plain: TracedRun
        var traced: TracedRun
        var plainOutput: URL
        var tracedOutput: URL
        /// The traces the traced run wrote, sorted by name.
        var traces: [String]
        var traceDirectory: URL
        /// The tracer's own stderr lines (starting `leaktrace: `).
        var tracerLines: [String]
    }

    /// Runs `invocation` once without and once with the tracer and checks that the program
    /// behaved identically: stdout, stderr without the tracer's own lines, exit status (or the
    /// signal that ended it) and the bytes of every file it wrote. Returns both runs so the case
    /// can then read the trace.
    @discardableResult
    static func runBoth(_ invocation: Invocation, label: String,
                        file: StaticString = #filePath, line: UInt = #line) throws -> Comparison {
        let plainOutput = try scratchDirectory()
        let tracedOutput = try scratchDirectory()
        let traceDirectory = try scratchDirectory()

        var plainEnvironment = invocation.environment
        let plainPreload = invocation.preloadBefore + invocation.preloadAfter
        if !plainPreload.isEmpty { plainEnvironment[invocation.preloadVariable] = plainPreload.joined(separator: ":") }
        let plain = try labelled("\(label), without the tracer") {
            let (executable, arguments, environment) = launch(invocation, expand(invocation.arguments, plainOutput),
                                                              plainEnvironment)
            return try TracedProgram.run(executable: executable, arguments: arguments, environment: environment,
                                         timeout: invocation.timeout, currentDirectory: invocation.workingDirectory)
        }

        var tracedEnvironment = invocation.environment
        tracedEnvironment[invocation.preloadVariable] = (invocation.preloadBefore + [try shim()] + invocation.preloadAfter)
            .joined(separator: ":")
        let output = invocation.traceOutput
            ?? (invocation.sameEnvironmentEveryRun ? "%e.%p.lt" : traceDirectory.appendingPathComponent("%e.%p.lt").path)
        tracedEnvironment.merge(tracerSettings(invocation, output: output)) { _, setting in setting }
        let traced = try labelled("\(label), traced") {
            let (executable, arguments, environment) = launch(invocation, expand(invocation.arguments, tracedOutput),
                                                              tracedEnvironment)
            return try TracedProgram.run(
                executable: executable, arguments: arguments, environment: environment, timeout: invocation.timeout,
                currentDirectory: invocation.sameEnvironmentEveryRun ? traceDirectory : invocation.workingDirectory)
        }

        let (programErrors, tracerLines) = splitTracerLines(traced.stderr)
        XCTAssertEqual(traced.stdout, plain.stdout, "\(label): stdout differs", file: file, line: line)
        XCTAssertEqual(programErrors, plain.stderr, "\(label): stderr differs (tracer lines removed)",
                       file: file, line: line)
        XCTAssertEqual(traced.status, plain.status, "\(label): exit status differs", file: file, line: line)
        XCTAssertEqual(traced.terminatedBySignal, plain.terminatedBySignal, "\(label): one run died of a signal",
                       file: file, line: line)
        for tracerLine in tracerLines {
            let text = tracerLine.dropFirst("leaktrace: ".count)
            XCTAssertTrue(invocation.allowedTracerLines.contains { text.hasPrefix($0) },
                          "\(label): unexpected tracer line: \(tracerLine)", file: file, line: line)
        }
        let plainFiles = try filesUnder(plainOutput), tracedFiles = try filesUnder(tracedOutput)
        XCTAssertEqual(tracedFiles.keys.sorted(), plainFiles.keys.sorted(), "\(label): written files differ",
                       file: file, line: line)
        for (name, bytes) in plainFiles where tracedFiles[name] != bytes {
            XCTFail("\(label): \(name) holds different bytes with the tracer", file: file, line: line)
        }
        let traces = ((try? FileManager.default.contentsOfDirectory(atPath: traceDirectory.path)) ?? [])
            .sorted().map { traceDirectory.appendingPathComponent($0).path }
        return Comparison(plain: plain, traced: traced, plainOutput: plainOutput, tracedOutput: tracedOutput,
                          traces: traces, traceDirectory: traceDirectory, tracerLines: tracerLines)
    }

    /// Runs `body`, prefixing any error it throws (a hang, say) with `label`.
    static func labelled<T>(_ label: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as TestFailure {
            throw TestFailure("\(label): \(failure.description)")
        }
    }

    /// Starts a program, waits (under a watchdog) until its stdout holds `line`, then kills it
    /// with SIGKILL. Returns everything it printed and how it ended.
    static func runUntilLine(_ line: String, executable: String, arguments: [String], environment: [String: String],
                             timeout: TimeInterval = 60) throws -> TracedRun {
        let (process, outPipe, errPipe) = TracedProgram.makeProcess(executable: executable, arguments: arguments,
                                                                    environment: environment)
        let errors = DataCollector(errPipe.fileHandleForReading)
        let seen = LineWatcher(outPipe.fileHandleForReading)
        try process.run()
        let found = seen.wait(for: line + "\n", seconds: timeout)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let stdout = seen.finish(), stderr = errors.finish()
        guard found else { throw TestFailure("\(executable) never printed \(line) within \(Int(timeout)) s") }
        return TracedRun(stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self),
                         status: process.terminationStatus,
                         terminatedBySignal: process.terminationReason == .uncaughtSignal)
    }

    /// The preload library, or a failure naming how to build it.
    static func shim() throws -> String {
        let path = TracedProgram.shimPath
        guard FileManager.default.fileExists(atPath: path) else {
            throw TestFailure("\(path) is missing: run Scripts/build.sh --shim-only first")
        }
        return path
    }

    /// Splits stderr into the program's text and the tracer's own lines (`leaktrace: ...`).
    static func splitTracerLines(_ stderr: String) -> (program: String, tracer: [String]) {
        var program = "", tracer: [String] = []
        var rest = Substring(stderr)
        while !rest.isEmpty {
            let end = rest.firstIndex(of: "\n").map { rest.index(after: $0) } ?? rest.endIndex
            let line = rest[..<end]
            if line.hasPrefix("leaktrace: ") {
                tracer.append(String(line.hasSuffix("\n") ? line.dropLast() : line))
            } else {
                program += line
            }
            rest = rest[end...]
        }
        return (program, tracer)
    }

    /// The command that starts the program: the program itself, or with
    /// `sameEnvironmentEveryRun`, `env -i` with the whole environment sorted.
    static func launch(_ invocation: Invocation, _ arguments: [String], _ environment: [String: String])
        -> (String, [String], [String: String]) {
        guard invocation.sameEnvironmentEveryRun else { return (invocation.executable, arguments, environment) }
        var full = ProcessInfo.processInfo.environment
        full.removeValue(forKey: "LD_PRELOAD")
        for key in full.keys where key.hasPrefix("LEAKTRACE_") { full.removeValue(forKey: key) }
        for (key, value) in environment { full[key] = value }
        let assignments = full.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let command = ["-i"] + assignments + [invocation.executable] + arguments
        if invocation.fixedAddresses, FileManager.default.isExecutableFile(atPath: "/usr/bin/setarch") {
            return ("/usr/bin/setarch", ["x86_64", "-R", "/usr/bin/env"] + command, [:])
        }
        return ("/usr/bin/env", command, [:])
    }

    static func expand(_ arguments: [String], _ output: URL) -> [String] {
        arguments.map { $0.replacingOccurrences(of: "{out}", with: output.path) }
    }

    /// Every regular file under `directory` by relative path, with its bytes.
    static func filesUnder(_ directory: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        guard let walker = FileManager.default.enumerator(atPath: directory.path) else { return files }
        while let relative = walker.nextObject() as? String {
            let path = directory.appendingPathComponent(relative).path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[relative] = try Data(contentsOf: URL(fileURLWithPath: path))
            }
        }
        return files
    }

    // MARK: - Scratch directories

    private static let scratchLock = NSLock()
    private static var scratch: [URL] = []

    /// A fresh directory for one run's files or traces, removed by `removeScratch` when the test
    /// ends (hazard runs write thousands of traces).
    static func scratchDirectory() throws -> URL {
        let directory = try TracedProgram.makeTraceDirectory()
        scratchLock.lock()
        scratch.append(directory)
        scratchLock.unlock()
        return directory
    }

    /// Removes every scratch directory made so far; each hazard test class calls it in tearDown.
    static func removeScratch() {
        scratchLock.lock()
        let directories = scratch
        scratch.removeAll()
        scratchLock.unlock()
        for directory in directories { try? FileManager.default.removeItem(at: directory) }
    }

    // MARK: - Programs

    /// Builds a hazard program with the options every hazard program is built with.
    static func build(_ name: String, flags: [String] = [], output: String? = nil) throws -> String {
        try TracedProgram.build(name, flags: ["-Wall"] + flags, output: output)
    }

    /// The 1-based line of `MARK:<marker>` in a program's source (a leak site, say).
    static func line(of marker: String, in source: String) throws -> Int {
        let text = try String(contentsOf: TracedProgram.programsDirectory.appendingPathComponent(source), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let matches = lines.indices.filter { lines[$0].contains("MARK:\(marker) ") || lines[$0].hasSuffix("MARK:\(marker)") }
        guard matches.count == 1 else { throw TestFailure("MARK:\(marker) found \(matches.count) times in \(source)") }
        return matches[0] + 1
    }

    /// A system library from Debian's packages, or a skip naming the package that provides it.
    static func systemLibrary(_ name: String, package: String) throws -> String {
        for directory in ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"] {
            let path = directory + "/" + name
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw missingTool(name, package: package)
    }

    /// The one complete trace a run wrote, with its END checked against its records.
    static func singleCompleteTrace(_ runs: Comparison, _ label: String,
                                    file: StaticString = #filePath, line: UInt = #line) throws -> HazardTraceSummary {
        XCTAssertEqual(runs.traces.count, 1, label, file: file, line: line)
        guard let path = runs.traces.first else { throw TestFailure("\(label): no trace") }
        let trace = try HazardTraceSummary(path: path)
        XCTAssertTrue(trace.isComplete, "\(label): \(String(describing: trace.endState))", file: file, line: line)
        trace.assertEndMatchesRecords(label, file: file, line: line)
        return trace
    }

    /// Runs `invocation` `runsPerCase` times, untraced and traced (`runBoth`), checks that the
    /// traced run printed `stdout` (saying `otherwise` when not), and hands each run and its
    /// label (`run N`) to `check`.
    static func eachRun(_ invocation: Invocation, stdout: String, otherwise: String? = nil,
                        file: StaticString = #filePath, line: UInt = #line,
                        _ check: (_ runs: Comparison, _ label: String) throws -> Void) throws {
        for run in 1...runsPerCase {
            let label = "run \(run)"
            let runs = try runBoth(invocation, label: label, file: file, line: line)
            XCTAssertEqual(runs.traced.stdout, stdout, otherwise.map { "\(label): \($0)" } ?? label,
                           file: file, line: line)
            try check(runs, label)
        }
    }

    /// `eachRun` for a program that writes one trace, which must be complete: `check` gets its
    /// summary, then leakreport must read it (`readWithLeakreport`).
    static func eachCompleteTrace(_ invocation: Invocation, stdout: String, otherwise: String? = nil,
                                  file: StaticString = #filePath, line: UInt = #line,
                                  _ check: (_ trace: HazardTraceSummary, _ label: String) throws -> Void) throws {
        try eachRun(invocation, stdout: stdout, otherwise: otherwise, file: file, line: line) { runs, label in
            let trace = try singleCompleteTrace(runs, label)
            try check(trace, label)
            try readWithLeakreport(trace.path, label: label, file: file, line: line)
        }
    }

    /// The tracer's variables in a traced run: where traces go, every event written (the hazard
    /// cases count every allocation and free by size; HazardFoldTests asks for folding), and the
    /// case's own settings.
    static func tracerSettings(_ invocation: Invocation, output: String) -> [String: String] {
        var settings = ["LEAKTRACE_OUTPUT": output, "LEAKTRACE_EVENTS": "all"]
        settings.merge(invocation.tracerEnvironment) { _, own in own }
        return settings
    }

    // MARK: - leakreport

    /// Reads a trace with `leakreport dump` when the analyzer has that command (it is built on
    /// another branch): it must finish under the watchdog, not die of a signal, and print
    /// something. Returns false when the command is not available yet.
    @discardableResult
    static func readWithLeakreport(_ trace: String, label: String, file: StaticString = #filePath,
                                   line: UInt = #line) throws -> Bool {
        guard leakreportHasDump else { return false }
        let run = try TracedProgram.run(executable: TracedProgram.leakreportPath, arguments: ["dump", trace],
                                        environment: [:], timeout: 300)
        XCTAssertFalse(run.terminatedBySignal, "\(label): leakreport dump died: \(run.stderr)", file: file, line: line)
        XCTAssertFalse(run.stdout.isEmpty, "\(label): leakreport dump printed nothing", file: file, line: line)
        // And the whole report (replay, site accounting, growth rates, symbolization): a real
        // program's thousands of stacks exercise what small test programs do not.
        let report = try TracedProgram.run(executable: TracedProgram.leakreportPath,
                                           arguments: ["--format", "json", trace], environment: [:], timeout: 300)
        XCTAssertFalse(report.terminatedBySignal, "\(label): leakreport died: \(report.stderr)", file: file, line: line)
        XCTAssertEqual(report.status, 0, "\(label): leakreport failed: \(report.stderr)", file: file, line: line)
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(report.stdout.utf8)),
                        "\(label): the report is not JSON", file: file, line: line)
        return true
    }

    static let leakreportHasDump: Bool = {
        guard FileManager.default.isExecutableFile(atPath: TracedProgram.leakreportPath),
              let help = try? TracedProgram.run(executable: TracedProgram.leakreportPath, arguments: ["--help"],
                                                environment: [:], timeout: 60) else { return false }
        return help.stdout.contains("dump") || help.stderr.contains("dump")
    }()
}

/// Collects a pipe's bytes on a background thread and lets a caller wait until they contain
/// a given text.
final class LineWatcher {
    private var data = Data()
    private let condition = NSCondition()
    private var ended = false

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                condition.lock()
                if chunk.isEmpty { ended = true } else { data.append(chunk) }
                condition.broadcast()
                condition.unlock()
                if chunk.isEmpty { return }
            }
        }
    }

    /// True once the bytes read so far contain `text`; false after `seconds` or at end of file.
    func wait(for text: String, seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        let needle = Data(text.utf8)
        condition.lock()
        defer { condition.unlock() }
        while data.range(of: needle) == nil {
            if ended || !condition.wait(until: deadline) { return data.range(of: needle) != nil }
        }
        return true
    }

    /// Every byte, once the writer has closed the pipe.
    func finish() -> Data {
        condition.lock()
        defer { condition.unlock() }
        while !ended { condition.wait() }
        return data
    }
}

// MARK: - Replay

/// A block the replay holds live: its size, stack and thread, and how many MODULES snapshots
/// had been read when it was allocated (for resolving its frames).
struct HazardBlock: Equatable {
    var size: UInt64
    var path: AllocPath
    var stack: UInt32
    var tid: UInt64
    var snapshot: Int
}

/// The hazard cases' test class: scratch files go after every test.
class HazardTestCase: XCTestCase {
    override func tearDown() {
        HazardKit.removeScratch()
        super.tearDown()
    }
}

/// One streaming pass over a trace: record counts, a replay of the live set, and the checks
/// every hazard case makes. Memory follows live blocks and distinct sizes, not events.
@dynamicMemberLookup
struct HazardTraceSummary {
    var path: String
    var header: TraceHeader
    var endState: TraceEndState?
    /// What the pass counted; read through the summary (`trace.allocationsBySize`).
    let counts: HazardCounts
    let stacks: StackTable
    let moduleMaps: ModuleMapHistory

    /// Reads the whole trace with `visitRecords`.
    init(path: String) throws {
        let reader = try TraceReader(path: path)
        var visitor = HazardCounts()
        reader.visitRecords(&visitor)
        self.path = path
        header = reader.header
        endState = reader.endState
        stacks = reader.stacks
        moduleMaps = reader.moduleMaps
        counts = visitor
    }

    subscript<Value>(dynamicMember keyPath: KeyPath<HazardCounts, Value>) -> Value { counts[keyPath: keyPath] }

    var isComplete: Bool { endState?.isComplete ?? false }

    var end: TraceEnd? {
        if case let .complete(end) = endState { return end }
        return nil
    }

    /// Bytes and blocks still live at the end: what the report calls leaked.
    var leakedBytes: UInt64 { counts.live.values.reduce(0) { $0 + $1.size } }
    var leakedBlocks: Int { counts.live.count }

    /// Live blocks of exactly `size` bytes.
    func liveBlocks(ofSize size: UInt64) -> [HazardBlock] { counts.live.values.filter { $0.size == size } }

    /// The END record's counts agree with the records read (the writer's own tally is an oracle
    /// independent of the reader).
    func assertEndMatchesRecords(_ label: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let end else { return XCTFail("\(label): \(path) has no END: \(String(describing: endState))", file: file, line: line) }
        XCTAssertEqual(end.allocs, UInt64(counts.allocs), "\(label): END allocs", file: file, line: line)
        XCTAssertEqual(end.frees, UInt64(counts.frees + counts.runtimeCleanupFrees), "\(label): END frees",
                       file: file, line: line)
        XCTAssertEqual(end.reallocs, UInt64(counts.reallocs), "\(label): END reallocs", file: file, line: line)
        XCTAssertEqual(end.mappings, UInt64(counts.mappings), "\(label): END mappings", file: file, line: line)
        XCTAssertEqual(end.stacks, UInt64(counts.stackRecords), "\(label): END stacks", file: file, line: line)
    }

    /// Symbolizes a stack with the trace's module maps, innermost frame first.
    func symbolize(_ block: HazardBlock, with symbolizer: Symbolizer, limit: Int = 8) -> [SymbolizedFrame] {
        let frames = stacks.frames(block.stack, limit: limit)
        return symbolizer.symbolize(stack: frames) { address in
            moduleMaps.module(containing: address, snapshot: block.snapshot - 1)
        }
    }

    /// The stacks whose innermost frame is in `function` (symbolized once per stack).
    func stacks(whoseCallerIs function: String) -> Set<UInt32> {
        let symbolizer = Symbolizer()
        var found = Set<UInt32>()
        for stack in Set(counts.allocationsByStack.keys) {
            let frames = stacks.frames(stack, limit: 1)
            let named = symbolizer.symbolize(stack: frames) { moduleMaps.module(containing: $0, snapshot: moduleMaps.count - 1) }
            if named.first?.function == function { found.insert(stack) }
        }
        return found
    }

    /// The names of the functions on a block's stack, innermost first.
    func functionNames(_ block: HazardBlock, limit: Int = 8) -> [String] {
        symbolize(block, with: Symbolizer(), limit: limit).map { $0.function ?? "?" }
    }
}

/// The counts behind `HazardTraceSummary`, gathered as the visitor of its pass.
struct HazardCounts: TraceVisitor {
    var allocs = 0, frees = 0, reallocs = 0, reallocReleases = 0, mappings = 0, stackRecords = 0
    /// MMAP and MUNMAP records (the program's own mapping calls).
    var mmaps = 0, munmaps = 0
    /// Allocations (ALLOC and successful REALLOC) by the path that served them.
    var allocationsByPath: [AllocPath: Int] = [:]
    /// Allocations and frees by the stack that allocated the block.
    var allocationsByStack: [UInt32: Int] = [:]
    var freesByStack: [UInt32: Int] = [:]
    /// ALLOC/REALLOC at an address already live: two live blocks at one address.
    var doubleLive = 0
    /// FREE or REALLOC_RELEASE of an address not live: a free before its malloc, or of a block
    /// allocated before tracing began.
    var unknownFrees = 0
    /// Allocations (ALLOC and successful REALLOC) by requested size.
    var allocationsBySize: [UInt64: Int] = [:]
    /// Frees (FREE, REALLOC_RELEASE that was not restored) by the size of the block freed.
    var freesBySize: [UInt64: Int] = [:]
    /// The first block allocated with each size (for finding a leak's stack).
    var firstBlockOfSize: [UInt64: HazardBlock] = [:]
    var live: [UInt64: HazardBlock] = [:]
    var threads: Set<UInt64> = []
    var notes: [String] = []
    var execs: [String] = []
    var forks: [UInt64] = []
    var moduleSnapshots = 0
    /// At each MARK, by name: live blocks by size (the last mark of a name wins).
    var liveBySizeAtMark: [String: [UInt64: Int]] = [:]
    /// Blocks released by REALLOC_RELEASE, until their REALLOC says whether they survived.
    var released: [UInt64: HazardBlock] = [:]
    /// Frees after the tracer's "runtime cleanup at exit" mark (MARK source 2): the C and C++
    /// runtimes releasing their own buffers at exit, not the program's calls. They leave `live`
    /// but are counted here instead of in `frees` and `freesBySize`.
    var runtimeCleanupFrees = 0
    private var inRuntimeCleanup = false

    private mutating func countFree(_ block: HazardBlock) {
        freesBySize[block.size, default: 0] += 1
        freesByStack[block.stack, default: 0] += 1
    }

    private mutating func allocate(_ address: UInt64, size: UInt64, path: AllocPath, stack: UInt32, tid: UInt64) {
        let block = HazardBlock(size: size, path: path, stack: stack, tid: tid, snapshot: moduleSnapshots)
        allocationsByPath[path, default: 0] += 1
        allocationsByStack[stack, default: 0] += 1
        if live.updateValue(block, forKey: address) != nil { doubleLive += 1 }
        allocationsBySize[size, default: 0] += 1
        if firstBlockOfSize[size] == nil { firstBlockOfSize[size] = block }
        threads.insert(tid)
    }

    mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                             stack: UInt32, context: RecordContext) {
        allocs += 1
        allocate(address, size: size, path: path, stack: stack, tid: context.tid)
    }

    mutating func visitFree(address: UInt64, context: RecordContext) {
        if inRuntimeCleanup {
            runtimeCleanupFrees += 1
            live.removeValue(forKey: address)
            return
        }
        frees += 1
        if let block = live.removeValue(forKey: address) {
            countFree(block)
        } else {
            unknownFrees += 1
        }
    }

    mutating func visitReallocRelease(address: UInt64, context: RecordContext) {
        reallocReleases += 1
        if let block = live.removeValue(forKey: address) {
            released[address] = block
        } else {
            unknownFrees += 1
        }
    }

    mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                               new: UInt64, size: UInt64, stack: UInt32, context: RecordContext) {
        reallocs += 1
        let previous = old == 0 ? nil : released.removeValue(forKey: old)
        switch status {
        case .failed:
            if let previous { live[old] = previous }
        case .freed:
            if let previous { countFree(previous) }
        case .movedOrResized:
            if let previous { countFree(previous) }
            if new != 0 { allocate(new, size: size, path: path, stack: stack, tid: context.tid) }
        }
    }

    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) {
        switch record {
        case .stack: stackRecords += 1
        case .mmap: mappings += 1; mmaps += 1
        case .munmap: mappings += 1; munmaps += 1
        case .mremap, .brk, .sbrk: mappings += 1
        case .modules: moduleSnapshots += 1
        case let .note(_, text): notes.append(text)
        case let .exec(path): execs.append(path)
        case let .fork(child): forks.append(child)
        case .mark(_, 2):
            inRuntimeCleanup = true
        case let .mark(name, _):
            var bySize: [UInt64: Int] = [:]
            for block in live.values { bySize[block.size, default: 0] += 1 }
            liveBySizeAtMark[name] = bySize
        default: break
        }
    }
}
