import Foundation
import XCTest
import TraceFormat

/// Builds the C and C++ programs in Tests/LeakTraceTests/Programs and runs them, traced or
/// not, under a watchdog. The preload library must have been built by `Scripts/build.sh`
/// (Scripts/test.sh does it before `swift test`).
enum TracedProgram {
    /// The repository root, found from this source file's path.
    static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    static let programsDirectory = repositoryRoot.appendingPathComponent("Tests/LeakTraceTests/Programs")

    /// The preload library under test: `LEAKTRACE_LIB`, else `.build/release/libleaktrace.so`.
    static var shimPath: String {
        if let path = ProcessInfo.processInfo.environment["LEAKTRACE_LIB"] { return path }
        return repositoryRoot.appendingPathComponent(".build/release/libleaktrace.so").path
    }

    /// The analyzer executable SwiftPM built beside the test bundle. On Linux XCTest reports the
    /// bundle URL either as the .xctest file or as its folder, so both places are tried.
    static let leakreportPath: String = {
        let bundle = Bundle(for: BundleToken.self).bundleURL
        let candidates = [bundle.deletingLastPathComponent().appendingPathComponent("leakreport").path,
                          bundle.appendingPathComponent("leakreport").path,
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                              .appendingPathComponent("leakreport").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }()

    private final class BundleToken {}

    private static let buildDirectory: URL = {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("leaktrace-tests-\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    private static let buildLock = NSLock()
    private static var built: [String: String] = [:]

    /// Compiles `Programs/<name>.c` (or `.cpp`) once per test run with `-g -O0` plus `flags`
    /// and returns the executable's path. `output` names the executable when the same source is
    /// built twice with different flags.
    static func build(_ name: String, flags: [String] = [], output: String? = nil) throws -> String {
        let outName = output ?? name
        buildLock.lock()
        defer { buildLock.unlock() }
        if let path = built[outName] { return path }
        let cSource = programsDirectory.appendingPathComponent("\(name).c")
        let cppSource = programsDirectory.appendingPathComponent("\(name).cpp")
        let isCpp = FileManager.default.fileExists(atPath: cppSource.path)
        let source = isCpp ? cppSource : cSource
        let exe = buildDirectory.appendingPathComponent(outName).path
        var args = ["-g", "-O0", "-Wall", "-o", exe, source.path, "-I", repositoryRoot.appendingPathComponent("CShim/include").path]
        args += flags
        args += ["-pthread", "-ldl"]
        let result = try run(executable: isCpp ? "/usr/bin/c++" : "/usr/bin/cc", arguments: args, environment: [:], timeout: 120)
        guard result.status == 0 else {
            throw TestFailure("compiling \(name) failed:\n\(result.stderr)")
        }
        built[outName] = exe
        return exe
    }

    /// Compiles a shared library from `Programs/<name>.c` and returns its path.
    static func buildLibrary(_ name: String, flags: [String] = []) throws -> String {
        try build(name, flags: ["-shared", "-fPIC"] + flags, output: "lib\(name).so")
    }

    /// A fresh, empty directory for one test's traces.
    static func makeTraceDirectory() throws -> URL {
        let dir = buildDirectory.appendingPathComponent("traces-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `executable` with the tracer preloaded; traces go to a fresh directory.
    static func trace(_ executable: String, arguments: [String] = [], environment: [String: String] = [:],
                      timeout: TimeInterval = 120, verifyUnwind: Bool = true) throws -> TracedRun {
        guard FileManager.default.fileExists(atPath: shimPath) else {
            throw TestFailure("\(shimPath) is missing: run Scripts/build.sh first")
        }
        let dir = try makeTraceDirectory()
        var env = environment
        env["LD_PRELOAD"] = shimPath
        if env["LEAKTRACE_OUTPUT"] == nil { env["LEAKTRACE_OUTPUT"] = dir.appendingPathComponent("trace.%p.lt").path }
        if verifyUnwind && env["LEAKTRACE_UNWIND"] == nil { env["LEAKTRACE_UNWIND"] = "verify" }
        // Tests that read the trace's records expect every event: folding is asked for by the
        // tests that check it (TracerFoldTests, HazardFoldTests).
        if env["LEAKTRACE_EVENTS"] == nil { env["LEAKTRACE_EVENTS"] = "all" }
        // The tests count the C runtime's own blocks (stdout's buffer) and the program's marks as
        // the program left them: the runtimes' cleanup at exit (which frees those blocks and
        // writes a mark of its own) is asked for by the tests of reachability, and runs in the
        // hazard cases, which launch programs as users do.
        if env["LEAKTRACE_FREERES"] == nil { env["LEAKTRACE_FREERES"] = "0" }
        var result = try run(executable: executable, arguments: arguments, environment: env, timeout: timeout)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        result.traces = files.filter { $0.contains(".lt") }.sorted().map { dir.appendingPathComponent($0).path }
        result.traceDirectory = dir
        return result
    }

    /// Runs a program without the tracer, to compare.
    static func runPlain(_ executable: String, arguments: [String] = [], environment: [String: String] = [:],
                         timeout: TimeInterval = 120) throws -> TracedRun {
        try run(executable: executable, arguments: arguments, environment: environment, timeout: timeout)
    }

    /// A process for `executable` with this process's environment less LD_PRELOAD and the
    /// LEAKTRACE_ variables, plus `environment`; standard input from /dev/null, standard output
    /// and error into pipes.
    static func makeProcess(executable: String, arguments: [String],
                            environment: [String: String]) -> (Process, stdout: Pipe, stderr: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "LD_PRELOAD")
        for key in env.keys where key.hasPrefix("LEAKTRACE_") { env.removeValue(forKey: key) }
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        return (process, outPipe, errPipe)
    }

    /// Runs a process to completion, capturing stdout and stderr, killing it after `timeout`
    /// seconds (a hang is a test failure with a message, never a stuck suite).
    static func run(executable: String, arguments: [String], environment: [String: String],
                    timeout: TimeInterval, currentDirectory: URL? = nil) throws -> TracedRun {
        let (process, outPipe, errPipe) = makeProcess(executable: executable, arguments: arguments,
                                                      environment: environment)
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let outData = DataCollector(outPipe.fileHandleForReading)
        let errData = DataCollector(errPipe.fileHandleForReading)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        // Process starts the program in a process group of its own: on a timeout the whole group
        // goes, so a hung child of the program cannot keep the test waiting either.
        let group = -process.processIdentifier
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                kill(group, SIGKILL)
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(2000)
        }
        process.waitUntilExit()
        // A child that outlives the program keeps the pipes open: wait for them until the
        // deadline (at least a few seconds), then kill what is left of the group.
        let pipesDeadline = max(deadline, Date().addingTimeInterval(5))
        var strayChildren = false
        if !outData.wait(until: pipesDeadline) || !errData.wait(until: pipesDeadline) {
            strayChildren = true
            kill(group, SIGKILL)
        }
        let stdout = outData.finish(), stderr = errData.finish()
        if timedOut {
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) hung for \(Int(timeout)) s and was killed")
        }
        if strayChildren {
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) exited but left a child holding its "
                              + "output past the \(Int(timeout)) s timeout (killed)")
        }
        return TracedRun(stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self),
                         status: process.terminationStatus,
                         terminatedBySignal: process.terminationReason == .uncaughtSignal)
    }
}

/// Reads a pipe on a background thread so a chatty child never blocks on a full pipe.
final class DataCollector {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }
    func finish() -> Data {
        done.wait()
        done.signal()
        return data
    }

    /// True once the pipe reached end of file; false if `deadline` passed first.
    func wait(until deadline: Date) -> Bool {
        let seconds = max(0, deadline.timeIntervalSinceNow)
        guard done.wait(timeout: .now() + seconds) == .success else { return false }
        done.signal()
        return true
    }
}

struct TracedRun {
    var stdout: String
    var stderr: String
    var status: Int32
    var terminatedBySignal: Bool
    var traces: [String] = []
    var traceDirectory: URL?
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Every record of a trace, with its context, plus how reading ended: small traces only.
struct DecodedTrace {
    var header: TraceHeader
    var records: [(record: TraceRecord, context: RecordContext)] = []
    var endState: TraceEndState?
    var endedByExec: String?
    var stacks: StackTable
    var moduleMaps: ModuleMapHistory

    init(path: String) throws {
        let reader = try TraceReader(path: path)
        var collected: [(TraceRecord, RecordContext)] = []
        reader.forEachRecord { record, context in collected.append((record, context)) }
        header = reader.header
        records = collected.map { (record: $0.0, context: $0.1) }
        endState = reader.endState
        endedByExec = reader.endedByExec
        stacks = reader.stacks
        moduleMaps = reader.moduleMaps
    }

    var allocs: [(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64, stack: UInt32, tid: UInt64)] {
        records.compactMap {
            if case let .alloc(function, path, address, size, stack) = $0.record {
                return (function, path, address, size, stack, $0.context.tid)
            }
            return nil
        }
    }

    var frees: [UInt64] {
        records.compactMap { if case let .free(address) = $0.record { return address }; return nil }
    }

    var isComplete: Bool {
        if case .complete = endState { return true }
        return false
    }

    var notes: [String] {
        records.compactMap { if case let .note(_, text) = $0.record { return text }; return nil }
    }

    /// The name of the function containing `address`, from the module's ELF symbol table via
    /// `addr2line` (an independent oracle for the frames the tracer recorded).
    func functionName(at address: UInt64, snapshot: Int? = nil) -> String? {
        let index = snapshot ?? max(0, moduleMaps.count - 1)
        guard let module = moduleMaps.module(containing: address, snapshot: index) else { return nil }
        let offset = address - 1 - module.bias
        guard let result = try? TracedProgram.run(
            executable: "/usr/bin/addr2line", arguments: ["-f", "-e", module.path, String(format: "0x%llx", offset)],
            environment: [:], timeout: 30) else { return nil }
        return result.stdout.split(separator: "\n").first.map(String.init)
    }

    /// Function names of a stack, innermost first.
    func functionNames(ofStack id: UInt32, limit: Int = 8) -> [String] {
        stacks.frames(id, limit: limit).map { functionName(at: $0) ?? "?" }
    }

    /// A count from the verification note the tracer writes under LEAKTRACE_UNWIND=verify
    /// (`checked`: cache hits, `walks`: cache-filling walks, `backtraces`, `mismatches`).
    func unwindCount(_ name: String) -> Int? {
        for note in notes where note.hasPrefix("unwind-verify") {
            for field in note.split(separator: " ") where field.hasPrefix(name + "=") {
                return Int(field.dropFirst(name.count + 1))
            }
        }
        return nil
    }

    /// The verification note the tracer writes under LEAKTRACE_UNWIND=verify.
    var unwindMismatches: Int? {
        for note in notes where note.hasPrefix("unwind-verify") {
            if let range = note.range(of: "mismatches=") { return Int(note[range.upperBound...]) }
        }
        return nil
    }
}
