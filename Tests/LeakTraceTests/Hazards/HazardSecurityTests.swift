// The tracer's security properties (docs/security.md): a program that gained privileges is
// never traced, and a trace file is created private and new, never through a name someone else
// planted in a shared directory.

import Foundation
import XCTest
import TraceFormat

final class HazardSecurityTests: HazardTestCase {
    /// A setgid program started by someone outside its group runs with privileges it did not
    /// have: it is never traced (no file appears) and runs unchanged. Needs root, to make the
    /// program setgid to a group root is not running as. With LD_PRELOAD naming a path (a
    /// slash), the loader itself refuses the library in secure mode, so this checks the
    /// loader, not the tracer: the test above reaches the tracer's own check.
    func testSetgidProgramIsNeverTraced() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to make a setgid program of another group") }
        let built = try HazardKit.build("hazard_bootstrap")
        let directory = try HazardKit.scratchDirectory()
        let exe = directory.appendingPathComponent("setgid_program").path
        try FileManager.default.copyItem(atPath: built, toPath: exe)
        // chmod on a file the tests own; group 65534 (nogroup) is not root's.
        XCTAssertEqual(chown(exe, 0, 65534), 0)
        XCTAssertEqual(chmod(exe, 0o2755), 0)
        let traceDirectory = try HazardKit.scratchDirectory()
        let plain = try TracedProgram.runPlain(exe)
        let traced = try TracedProgram.run(
            executable: exe, arguments: [],
            environment: ["LD_PRELOAD": try HazardKit.shim(),
                          "LEAKTRACE_OUTPUT": traceDirectory.appendingPathComponent("%p.lt").path],
            timeout: 60)
        XCTAssertEqual(traced.stdout, plain.stdout)
        XCTAssertEqual(traced.stdout, "main: early=1 kept=1 copy=bootstrap\n")
        XCTAssertEqual(traced.stderr, plain.stderr)
        XCTAssertEqual(traced.status, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: traceDirectory.path), [],
                       "a program running with gained privileges wrote a trace")
    }

    /// The tracer's own AT_SECURE check, reached: for a program in secure-execution mode glibc
    /// preloads only a bare library name found in a system library directory, and only if the
    /// file is set-user-ID (ld.so(8)). A copy of the library installed so, preloaded by name into
    /// a setgid program, is loaded (the program sees it in its maps) and writes no trace, in the
    /// directory given or in the working directory (where the default name would go, since
    /// LEAKTRACE_OUTPUT is read with secure_getenv). The same copy preloaded into the same
    /// program without the setgid bit traces it: the file is a working tracer, so only the
    /// check keeps the setgid run from writing. Needs root (CI runs as root).
    func testSecureModeProgramLoadsTheLibraryAndTheTracerRefuses() throws {
        guard getuid() == 0 else {
            if runningInCI { throw TestFailure("CI is set and the secure-mode test needs root") }
            throw XCTSkip("needs root to install a set-user-ID library and make a setgid program")
        }
        let name = "libleaktrace-secure-test-\(getpid()).so"
        let installed = "/usr/lib/x86_64-linux-gnu/" + name
        try? FileManager.default.removeItem(atPath: installed)
        try FileManager.default.copyItem(atPath: try HazardKit.shim(), toPath: installed)
        defer { try? FileManager.default.removeItem(atPath: installed) }
        XCTAssertEqual(chmod(installed, 0o4755), 0)
        let built = try HazardKit.build("secure_probe")
        let directory = try HazardKit.scratchDirectory()
        let exe = directory.appendingPathComponent("secure_probe").path
        try FileManager.default.copyItem(atPath: built, toPath: exe)

        func run(setgid: Bool) throws -> (run: TracedRun, files: [String]) {
            XCTAssertEqual(chown(exe, 0, setgid ? 65534 : 0), 0)
            XCTAssertEqual(chmod(exe, setgid ? 0o2755 : 0o755), 0)
            let traces = try HazardKit.scratchDirectory(), workingDirectory = try HazardKit.scratchDirectory()
            let result = try TracedProgram.run(
                executable: exe, arguments: [name],
                environment: ["LD_PRELOAD": name, "LEAKTRACE_OUTPUT": traces.appendingPathComponent("%p.lt").path],
                timeout: 60, currentDirectory: workingDirectory)
            let files = try FileManager.default.contentsOfDirectory(atPath: traces.path).map { traces.path + "/" + $0 }
                + FileManager.default.contentsOfDirectory(atPath: workingDirectory.path).map { workingDirectory.path + "/" + $0 }
            return (result, files)
        }

        let privileged = try run(setgid: true)
        XCTAssertEqual(privileged.run.stdout, "secure=1 mapped=1 kept=1\n", "the loader did not preload the library")
        XCTAssertEqual(privileged.run.status, 0)
        XCTAssertEqual(privileged.run.stderr, "")
        XCTAssertEqual(privileged.files, [], "a program running with gained privileges wrote a trace")

        let ordinary = try run(setgid: false)
        XCTAssertEqual(ordinary.run.stdout, "secure=0 mapped=1 kept=1\n")
        XCTAssertEqual(ordinary.files.count, 1, "the installed copy did not trace an ordinary program")
        if let path = ordinary.files.first {
            let trace = try HazardTraceSummary(path: path)
            XCTAssertTrue(trace.isComplete)
            XCTAssertEqual(trace.liveBlocks(ofSize: 4444).count, 1)
        }
    }

    /// In a world-writable sticky directory (like /tmp), names planted before the program starts
    /// are never followed or truncated: a symlink to a file and an existing file under the trace's
    /// name both keep their contents, and the trace goes to a new name with mode 0600 whatever
    /// the umask.
    func testPlantedNamesInASharedDirectoryAreNeverWrittenThrough() throws {
        let exe = try HazardKit.build("hazard_bootstrap")
        let shared = try HazardKit.scratchDirectory()
        XCTAssertEqual(chmod(shared.path, 0o1777), 0)
        let victim = try HazardKit.scratchDirectory().appendingPathComponent("victim.txt").path
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        let name = shared.appendingPathComponent("trace.lt").path
        try FileManager.default.createSymbolicLink(atPath: name, withDestinationPath: victim)
        let planted = name + ".1"
        try "planted\n".write(toFile: planted, atomically: true, encoding: .utf8)

        // umask 000 for the program only: the shell that sets it is not traced.
        let run = try TracedProgram.run(
            executable: "/bin/sh", arguments: ["-c", "umask 000; LD_PRELOAD=\"$0\" LEAKTRACE_OUTPUT=\"$1\" exec \"$2\"",
                                               try HazardKit.shim(), name, exe],
            environment: [:], timeout: 60)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stdout, "main: early=1 kept=1 copy=bootstrap\n")
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious\n")
        XCTAssertEqual(try String(contentsOfFile: planted, encoding: .utf8), "planted\n")
        let written = name + ".2"
        let attributes = try FileManager.default.attributesOfItem(atPath: written)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let trace = try HazardTraceSummary(path: written)
        XCTAssertTrue(trace.isComplete)
        XCTAssertEqual(trace.liveBlocks(ofSize: 3333).count, 1)
    }
}
