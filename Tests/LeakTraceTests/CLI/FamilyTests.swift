import Foundation
@testable import LeakReportCommands
import XCTest

/// A command that runs through wrappers: `#!/bin/sh` scripts that exec through /usr/bin/env
/// into Programs/exec_chain_target.c, which forks one leaking child. The run writes six traces
/// (sh, env, sh, env, the target, its child); the target's own leaks are known from its source:
/// 3 blocks of 4000 bytes from chain_leak, and its child's 2222 bytes from child_leak.
final class FamilyTests: XCTestCase {
    struct ChainRun {
        let directory: URL
        /// The trace of the first process, the one the user's command started.
        let first: String
        let target: String
    }

    /// Writes the two wrapper scripts and runs the chain with every trace going to
    /// `directory/chain.lt` (so the traces are chain.lt, chain.lt.1, ...).
    static func runChain(in directory: URL) throws -> TracedRun {
        let target = try TracedProgram.build("exec_chain_target")
        let outer = directory.appendingPathComponent("outer.sh").path
        let inner = directory.appendingPathComponent("inner.sh").path
        try "#!/bin/sh\nexec /usr/bin/env sh \(inner) \"$@\"\n".write(toFile: outer, atomically: true, encoding: .utf8)
        try "#!/bin/sh\nexec /usr/bin/env \(target) \"$@\"\n".write(toFile: inner, atomically: true, encoding: .utf8)
        for script in [outer, inner] { chmod(script, 0o755) }
        let run = try TracedProgram.run(executable: outer, arguments: [], environment: [
            "LD_PRELOAD": TracedProgram.shimPath,
            "LEAKTRACE_OUTPUT": directory.appendingPathComponent("chain.lt").path,
        ], timeout: 120)
        guard run.status == 0, run.stdout == "chain target 1 0\n" else {
            throw TestFailure("the chain exited \(run.status): \(run.stdout) \(run.stderr)")
        }
        return run
    }

    static func realPath(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }

    func testReportFollowsTheExecChainToTheProgramThatRanLast() throws {
        let directory = try TracedProgram.makeTraceDirectory()
        _ = try Self.runChain(in: directory)
        let first = directory.appendingPathComponent("chain.lt").path
        let target = try TracedProgram.build("exec_chain_target")

        let report = try GrowthSupport.json([first, "--top", "100"])
        XCTAssertEqual(report.object("trace").string("program"), target)
        XCTAssertEqual(report.object("summary").object("leaked").int("bytes"), 12000)
        XCTAssertEqual(report.object("summary").object("leaked").int("blocks"), 3)
        let group = CLIEndToEndTests.group(report, function: "chain_leak")
        XCTAssertEqual(group.int("blocks"), 3)
        XCTAssertEqual(group.int("bytes"), 12000)
        XCTAssertEqual(group.object("callsite").int("line"),
                       try CLIEndToEndTests.line(of: "@chain", in: "exec_chain_target.c"))
        // The four images before it, in order, with what each exec'd.
        let shell = Self.realPath("/bin/sh"), env = Self.realPath("/usr/bin/env")
        let chain = report.objects("execChain")
        XCTAssertEqual(chain.compactMap { $0.string("program") }, [shell, env, shell, env])
        XCTAssertEqual(chain.compactMap { $0.string("executed") }, ["/usr/bin/env", "sh", "/usr/bin/env", target])
        XCTAssertEqual(chain.first?.string("trace"), first)

        let text = try LeakReportRunner.run([first])
        XCTAssertTrue(text.stdout.contains("exec chain: \(shell) (\(first)) -> \(env)"), text.stdout)

        // growth, timeline and diff follow the chain too, and say so in a warning.
        for command in [["growth", first], ["timeline", first], ["diff", first, first]] {
            let document = try GrowthSupport.json(command)
            let facts = command[0] == "diff" ? document.object("new") : document.object("trace")
            XCTAssertEqual(facts.string("program"), target, "\(command)")
            let warnings = document["warnings"] as? [String] ?? []
            XCTAssertTrue(warnings.contains { $0.hasPrefix("\(first) ended by exec: read ") }, "\(command): \(warnings)")
        }
        let growth = try GrowthSupport.json(["growth", first])
        XCTAssertEqual(growth.object("total").object("atTo").int("bytes"), 12000)

        // --no-follow-exec: the first image itself, which ended by exec.
        let own = try GrowthSupport.json([first, "--no-follow-exec"])
        XCTAssertEqual(own.object("trace").string("program"), shell)
        XCTAssertEqual(own.object("trace").object("outcome").string("endedByExec"), "/usr/bin/env")
        XCTAssertEqual(own.objects("execChain").count, 0)
    }

    /// Following the exec chain (every report does) opens only the files written since the named
    /// trace started; `family`, which also looks for the traces before it, opens every one.
    func testFollowingExecSkipsFilesWrittenBeforeTheTraceStarted() throws {
        let directory = try TracedProgram.makeTraceDirectory()
        _ = try Self.runChain(in: directory)
        let first = directory.appendingPathComponent("chain.lt").path
        let all = try TraceDirectory(around: first)
        XCTAssertEqual(all.traces.count, 6, "\(all.traces.map(\.path))")
        let later = try TraceDirectory(around: first, laterOnly: true)
        XCTAssertEqual(later.traces.map(\.path), all.traces.map(\.path))

        // One of the run's traces last written an hour before the first started, another in
        // the second it started (within the margin kept for the kernel's coarser file times).
        let start = try XCTUnwrap(all.traces[all.named].header.startRealtimeMicroseconds) / 1_000_000
        let old = directory.appendingPathComponent("chain.lt.5").path
        let recent = directory.appendingPathComponent("chain.lt.4").path
        for (path, seconds) in [(old, start - 3600), (recent, start)] {
            var times = [timeval(tv_sec: Int(seconds), tv_usec: 0), timeval(tv_sec: Int(seconds), tv_usec: 0)]
            XCTAssertEqual(utimes(path, &times), 0)
        }
        let skipping = try TraceDirectory(around: first, laterOnly: true)
        XCTAssertEqual(skipping.traces.map(\.path), all.traces.map(\.path).filter { $0 != old })
        XCTAssertEqual(try TraceDirectory(around: first).traces.map(\.path), all.traces.map(\.path))
    }

    func testFamilyListsEveryTraceOfTheRunBiggestLeakerFirst() throws {
        let directory = try TracedProgram.makeTraceDirectory()
        _ = try Self.runChain(in: directory)
        // A second run into the same directory is another family.
        _ = try Self.runChain(in: directory)
        let first = directory.appendingPathComponent("chain.lt").path
        let target = try TracedProgram.build("exec_chain_target")

        let family = try GrowthSupport.json(["family", first])
        let traces = family.objects("traces")
        XCTAssertEqual(traces.count, 6, "\(traces.map { $0.string("trace") ?? "" })")
        XCTAssertEqual(Set(traces.compactMap { $0.string("trace") }).count, 6)
        let bytes = traces.compactMap { $0.object("leaked").int("bytes") }
        XCTAssertEqual(bytes, bytes.sorted(by: >), "biggest leaker first")
        XCTAssertEqual(family.object("leaked").int("bytes"), bytes.reduce(0, +))

        let top = traces[0]
        XCTAssertEqual(top.string("program"), target)
        XCTAssertEqual(top.string("origin"), "exec")
        XCTAssertEqual(top.string("ended"), "exit")
        XCTAssertEqual(top.object("leaked").int("bytes"), 12000)
        XCTAssertEqual(family.string("reported"), top.string("trace"))

        let child = try XCTUnwrap(traces.first { $0.string("origin") == "fork" })
        XCTAssertEqual(child.string("program"), target)
        XCTAssertEqual(child.string("from"), top.string("trace"))
        XCTAssertEqual(child.object("leaked").int("bytes"), 2222)
        XCTAssertEqual(child.object("leaked").int("blocks"), 1)
        XCTAssertEqual(child.int("ppid"), top.int("pid"))

        let start = try XCTUnwrap(traces.first { $0.string("origin") == "start" })
        XCTAssertEqual(start.string("trace"), first)
        XCTAssertEqual(start.string("ended"), "exec /usr/bin/env")
        // The five traces of the exec chain share one pid; the child has its own.
        XCTAssertEqual(Set(traces.filter { $0.string("origin") != "fork" }.compactMap { $0.int("pid") }).count, 1)
        XCTAssertEqual(traces.filter { $0.string("origin") == "exec" }.count, 4)

        // The second run's family is its own six traces, with other pids.
        let secondFirst = directory.appendingPathComponent("chain.lt.6").path
        let second = try GrowthSupport.json(["family", secondFirst]).objects("traces")
        XCTAssertEqual(second.count, 6)
        XCTAssertTrue(Set(second.compactMap { $0.string("trace") }).isDisjoint(with: traces.compactMap { $0.string("trace") }))

        // --family --merge: the whole family merged, the sum of the members' leaks.
        let merged = try GrowthSupport.json([first, "--family", "--merge"])
        XCTAssertEqual(merged.objects("traces").count, 6)
        XCTAssertEqual(merged.object("leaked").int("bytes"), family.object("leaked").int("bytes"))
    }

    /// The wrapper lists the family it wrote, the program that leaked most first.
    func testWrapperPrintsTheFamily() throws {
        let directory = try TracedProgram.makeTraceDirectory()
        let target = try TracedProgram.build("exec_chain_target")
        let wrapper = TracedProgram.repositoryRoot.appendingPathComponent("Scripts/leaktrace").path
        let run = try TracedProgram.run(executable: wrapper, arguments: [
            "-o", directory.appendingPathComponent("w.%p.lt").path, target,
        ], environment: ["LEAKTRACE_LIB": TracedProgram.shimPath, "LEAKTRACE_REPORT": LeakReportRunner.executable,
                         "NO_COLOR": "1"], timeout: 120)
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stderr.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("family of ") }, run.stderr)
        XCTAssertTrue(lines[header].contains("2 traces, 2 processes"), run.stderr)
        XCTAssertTrue(lines[header + 2].contains("start") && lines[header + 2].contains(target), run.stderr)
        XCTAssertTrue(lines[header + 3].contains("fork of") && lines[header + 3].hasPrefix("  2.17 KiB"), run.stderr)
    }

    /// gcc starts cc1 and as by posix_spawn/vfork: the wrapper lists one family of three traces,
    /// named after gcc's (the process it started), and tells the user to read that trace, not the
    /// first in name order (cc1's).
    func testWrapperNamesTheProcessItStartedWhenTheProgramSpawns() throws {
        let directory = try TracedProgram.makeTraceDirectory()
        let source = directory.appendingPathComponent("unit.c")
        try "int f(int x) { return x * 2; }\n".write(to: source, atomically: true, encoding: .utf8)
        let wrapper = TracedProgram.repositoryRoot.appendingPathComponent("Scripts/leaktrace").path
        let run = try TracedProgram.run(executable: wrapper, arguments: [
            "-o", directory.appendingPathComponent("t.%e.%p.lt").path, "gcc", "-c", source.path,
            "-o", directory.appendingPathComponent("unit.o").path,
        ], environment: ["LEAKTRACE_LIB": TracedProgram.shimPath, "LEAKTRACE_REPORT": LeakReportRunner.executable,
                         "NO_COLOR": "1"], timeout: 120)
        XCTAssertEqual(run.status, 0, run.stderr)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".lt") }.sorted()
        XCTAssertEqual(names.count, 3, "gcc, cc1 and as: \(names)")
        XCTAssertTrue(names.first?.hasPrefix("t.cc1.") ?? false, "\(names)")
        let gcc = try XCTUnwrap(names.first { $0.contains("gcc") }, "\(names)")
        let gccTrace = directory.appendingPathComponent(gcc).path
        let lines = run.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("family of ") }, ["family of \(gccTrace): 3 traces, 3 processes, "
            + (lines.first { $0.hasPrefix("family of ") }?.components(separatedBy: "3 processes, ").last ?? "")], run.stderr)
        XCTAssertEqual(lines.filter { $0.contains("spawned by") }.count, 2, run.stderr)
        XCTAssertEqual(Array(lines.suffix(2)), ["leaktrace: read with: \(LeakReportRunner.executable) \(gccTrace)",
                                                "leaktrace: the whole run: \(LeakReportRunner.executable) --family --merge \(gccTrace)"],
                       run.stderr)
    }

    /// A process that died of a signal says so in the family listing, as its report does.
    func testFamilySaysWhichSignalEndedAProcess() throws {
        let program = try TracedProgram.build("fatal_signals")
        let run = try TracedProgram.trace(program, arguments: ["term"])
        XCTAssertTrue(run.terminatedBySignal, "the program must die of SIGTERM: \(run.stderr)")
        let trace = try XCTUnwrap(run.traces.first, run.stderr)
        let family = try GrowthSupport.json(["family", trace])
        let member = try XCTUnwrap(family.objects("traces").first)
        XCTAssertEqual(member.string("ended"), "died of SIGTERM")
        XCTAssertEqual(member.object("leaked").int("bytes"), 1000)
    }

    /// Programs/hazard_spawn.c starts itself by fork+execve, posix_spawn and system() (whose
    /// shell runs the command in a vfork child), and each child keeps a block of its own size:
    /// 5001, 5002 and 5003 bytes, the parent 5000. The spawned programs' traces name no parent
    /// trace; they are found by their ppid, and the whole run is one family of six traces.
    func testSpawnedProgramsJoinTheirParentsFamily() throws {
        let program = try TracedProgram.build("hazard_spawn")
        let directory = try TracedProgram.makeTraceDirectory()
        let run = try TracedProgram.run(executable: program, arguments: [], environment: [
            "LD_PRELOAD": TracedProgram.shimPath,
            "LEAKTRACE_OUTPUT": directory.appendingPathComponent("spawn.%p.lt").path,
        ], timeout: 120)
        XCTAssertEqual(run.status, 0, run.stderr)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".lt") }
        // The parent's trace: its program ran without arguments (as did its forked child until
        // it exec'd, but that trace names its parent's).
        let parent = try XCTUnwrap(names.map { directory.appendingPathComponent($0).path }.first {
            guard let header = try? TraceDirectory(around: $0).traces[0].header else { return false }
            return header.arguments.count == 1 && header.parentTrace == nil
        })
        let shell = Self.realPath("/bin/sh")

        let family = try GrowthSupport.json(["family", parent])
        let traces = family.objects("traces")
        XCTAssertEqual(traces.count, 6, "\(traces.map { $0.string("trace") ?? "" })")
        func member(leaking bytes: Int) -> [String: Any]? {
            traces.first { $0.object("leaked").int("bytes") == bytes && $0.string("program") == program }
        }
        func trace(_ entry: [String: Any]?) -> String? { entry?.string("trace") }
        let start = try XCTUnwrap(member(leaking: 5000))
        XCTAssertEqual(start.string("origin"), "start")
        XCTAssertEqual(start.string("trace"), parent)
        // fork + execve: the forked child (its trace ends by exec), then the program it ran.
        let execed = try XCTUnwrap(member(leaking: 5001))
        XCTAssertEqual(execed.string("origin"), "exec")
        let forked = try XCTUnwrap(traces.first { $0.string("trace") == execed.string("from") })
        XCTAssertEqual(forked.string("origin"), "fork")
        XCTAssertEqual(forked.string("from"), parent)
        // posix_spawn: spawned by the parent.
        let spawned = try XCTUnwrap(member(leaking: 5002))
        XCTAssertEqual(spawned.string("origin"), "spawn")
        XCTAssertEqual(spawned.string("from"), parent)
        XCTAssertEqual(spawned.int("ppid"), start.int("pid"))
        // system(): the shell spawned by the parent, the command spawned by the shell.
        let sh = try XCTUnwrap(traces.first { $0.string("program") == shell })
        XCTAssertEqual(sh.string("origin"), "spawn")
        XCTAssertEqual(sh.string("from"), parent)
        let command = try XCTUnwrap(member(leaking: 5003))
        XCTAssertEqual(command.string("origin"), "spawn")
        XCTAssertEqual(command.string("from"), trace(sh))

        // Any trace of the run gives the same family; its report stays its own.
        let fromCommand = try GrowthSupport.json(["family", try XCTUnwrap(trace(command))]).objects("traces")
        XCTAssertEqual(Set(fromCommand.compactMap { $0.string("trace") }), Set(traces.compactMap { $0.string("trace") }))
        let report = try GrowthSupport.json([try XCTUnwrap(trace(spawned))])
        XCTAssertEqual(report.object("trace").string("program"), program)
        XCTAssertEqual(report.objects("execChain").count, 0)
    }

}

/// The family's path helpers replace NSString's (Foundation, with its ICU data, is not linked
/// into leakreport): the same answers on the paths a trace can be named by.
final class FamilyPathTests: XCTestCase {
    func testFileNameAndDirectoryAnswerAsNSString() {
        let paths = ["/tmp/rp/perl.1.lt", "perl.1.lt", "./perl.1.lt", "/tmp/rp//perl.1.lt", "/perl.1.lt", "/",
                     "dir/", "/tmp/dir//", "a/b/c", "", "//x", "../up/t.lt"]
        for path in paths {
            XCTAssertEqual(TraceDirectory.fileName(of: path), (path as NSString).lastPathComponent, path)
            XCTAssertEqual(TraceDirectory.directory(of: path), (path as NSString).deletingLastPathComponent, path)
        }
    }
}
