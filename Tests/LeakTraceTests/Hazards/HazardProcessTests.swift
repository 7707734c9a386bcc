// Hazard cases 4, 5 and 9 (docs/reliability.md): processes made and ended the hard ways: a fork
// storm from a threaded parent, exec and spawn, and abrupt exits.

import Foundation
import XCTest
import TraceFormat

final class HazardProcessTests: HazardTestCase {
    // MARK: - 4. Fork storm from a threaded parent

    /// Eight threads allocate while the main thread forks 200 times; each child allocates,
    /// frees and leaves with _exit. No child hangs (the parent waits for each one under the
    /// watchdog); each child's trace is its own and complete; the parent's holds no child event.
    func testCase04ForkStormFromAThreadedParent() throws {
        let exe = try HazardKit.build("hazard_forkstorm")
        let invocation = HazardKit.Invocation(exe, ["200"], timeout: 180)
        try HazardKit.eachRun(invocation, stdout: "forks=200 failures=0\n") { runs, label in
            XCTAssertEqual(runs.traces.count, 201, "\(label): the parent's trace and one per child")
            let traces = try runs.traces.map { try HazardTraceSummary(path: $0) }
            let parents = traces.filter { $0.header.parentTrace == nil }
            XCTAssertEqual(parents.count, 1, label)
            guard let parent = parents.first else { return }
            XCTAssertTrue(parent.isComplete, "\(label): \(String(describing: parent.endState))")
            parent.assertEndMatchesRecords(label)
            XCTAssertEqual(parent.forks.count, 200, label)
            XCTAssertNil(parent.allocationsBySize[4321], "\(label): a child's event in the parent's trace")
            XCTAssertNil(parent.allocationsBySize[4322], "\(label): a child's event in the parent's trace")
            XCTAssertEqual(parent.doubleLive, 0, label)

            let children = traces.filter { $0.header.parentTrace != nil }
            XCTAssertEqual(Set(children.compactMap(\.header.pid)), Set(parent.forks), "\(label): one trace per forked pid")
            for child in children {
                let childLabel = "\(label), child \(child.header.pid ?? 0)"
                XCTAssertEqual(child.header.parentTrace, parent.path, childLabel)
                XCTAssertEqual(child.header.ppid, parent.header.pid, childLabel)
                XCTAssertTrue(child.isComplete, "\(childLabel): \(String(describing: child.endState))")
                child.assertEndMatchesRecords(childLabel)
                XCTAssertEqual(child.allocs, 2, childLabel)
                XCTAssertEqual(child.frees, 1, childLabel)
                XCTAssertEqual(child.freesBySize[4321], 1, childLabel)
                XCTAssertEqual(child.liveBlocks(ofSize: 4322).count, 1, childLabel)
                XCTAssertEqual(child.threads, [child.header.pid ?? 0], "\(childLabel): only the forking thread exists in a child")
            }
            try HazardKit.readWithLeakreport(parent.path, label: label)
        }
    }

    // MARK: - 5. exec and spawn

    /// Children by fork+execve, posix_spawn, system() (whose /bin/sh runs the command in a vfork
    /// child after searching PATH) and posix_spawn with the environment reset. Each traced program
    /// writes its own trace; none is shared, truncated or written into by another process.
    func testCase05ExecAndSpawnWriteTheirOwnTraces() throws {
        let exe = try HazardKit.build("hazard_spawn")
        let expectedOutput = "child fork-execve 1\nchild posix-spawn 1\nchild system 1\nchild reset-env 1\n"
            + "parent failures=0 kept=1\n"
        try HazardKit.eachRun(HazardKit.Invocation(exe), stdout: expectedOutput) { runs, label in
            // The parent, the forked child up to its exec, the program it exec'd, the spawned
            // program, the shell of system() and its command. The child spawned with a reset
            // environment is not traced (LD_PRELOAD went with the environment).
            XCTAssertEqual(runs.traces.count, 6, "\(label): \(runs.traces)")
            let traces = try runs.traces.map { try HazardTraceSummary(path: $0) }
            func tagged(_ tag: String) -> [HazardTraceSummary] { traces.filter { $0.header.arguments.dropFirst(2).first == tag } }

            guard let parent = traces.first(where: { $0.header.arguments == [exe] && $0.header.parentTrace == nil }) else {
                XCTFail("\(label): no trace of the parent"); return
            }
            XCTAssertTrue(parent.isComplete, label)
            parent.assertEndMatchesRecords(label)
            XCTAssertEqual(parent.liveBlocks(ofSize: 5000).count, 1, label)
            XCTAssertEqual(parent.forks.count, 1, "\(label): posix_spawn and system do not fork through fork()")

            // The forked child: its own file, ending with the EXEC it made (a successful exec
            // leaves no chance to write END: the reader says it was cut there).
            let forked = traces.filter { $0.header.parentTrace != nil }
            XCTAssertEqual(forked.count, 1, label)
            if let child = forked.first {
                XCTAssertEqual(child.header.parentTrace, parent.path, label)
                XCTAssertEqual(child.execs, [exe], label)
                XCTAssertEqual(child.endState, .cut(atOffset: UInt64(fileSize(child.path)), reason: "no END record"), label)
            }
            for (tag, size) in [("fork-execve", UInt64(5001)), ("posix-spawn", 5002), ("system", 5003)] {
                let matching = tagged(tag)
                XCTAssertEqual(matching.count, 1, "\(label): traces of the \(tag) child")
                guard let child = matching.first else { continue }
                XCTAssertTrue(child.isComplete, "\(label), \(tag): \(String(describing: child.endState))")
                child.assertEndMatchesRecords("\(label), \(tag)")
                XCTAssertEqual(child.liveBlocks(ofSize: size).count, 1, "\(label), \(tag)")
                XCTAssertEqual(child.allocationsBySize[5000], nil, "\(label), \(tag): the parent's block")
            }
            XCTAssertTrue(tagged("reset-env").isEmpty, "\(label): the child without LD_PRELOAD was traced")
            // The exec'd program kept the forked child's pid, so its trace has its own name.
            if let execed = tagged("fork-execve").first, let child = forked.first {
                XCTAssertEqual(execed.header.pid, child.header.pid, label)
                XCTAssertNotEqual(execed.path, child.path, label)
            }
            // The shell exec'd nothing itself: its vfork child did, and wrote nothing here.
            let shells = traces.filter { $0.header.arguments.first == "sh" }
            XCTAssertEqual(shells.count, 1, label)
            if let shell = shells.first {
                XCTAssertTrue(shell.isComplete, "\(label): \(String(describing: shell.endState))")
                shell.assertEndMatchesRecords("\(label), sh")
                XCTAssertEqual(shell.execs, [], "\(label): a vfork child's exec was written into the shell's trace")
            }
            XCTAssertEqual(traces.filter { !$0.execs.isEmpty }.count, 1, label)
            for trace in traces { try HazardKit.readWithLeakreport(trace.path, label: label) }
        }
    }

    private func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? -1
    }

    // MARK: - 9. Abrupt exits

    /// Return from main with detached threads still allocating, exit() from another thread,
    /// _exit, _Exit and abort(). Every trace reads to its END; every allocation made before
    /// the exit call is in it.
    func testCase09AbruptExits() throws {
        let exe = try HazardKit.build("hazard_exits")
        let endings: [(how: String, status: Int32, bySignal: Bool)] = [
            ("return", 0, false), ("thread-exit", 3, false), ("_exit", 4, false), ("_Exit", 5, false),
            ("abort", SIGABRT, true),
        ]
        for run in 1...HazardKit.runsPerCase {
            for ending in endings {
                let label = "run \(run), \(ending.how)"
                let runs = try HazardKit.runBoth(HazardKit.Invocation(exe, [ending.how]), label: label)
                XCTAssertEqual(runs.traced.stdout, "ending \(ending.how)\n", label)
                XCTAssertEqual(runs.traced.status, ending.status, label)
                XCTAssertEqual(runs.traced.terminatedBySignal, ending.bySignal, label)
                let trace = try HazardKit.singleCompleteTrace(runs, label)
                let path = trace.path
                for size in UInt64(1000)..<1100 {
                    XCTAssertEqual(trace.liveBlocks(ofSize: size).count, 1, "\(label): block of \(size) bytes")
                }
                XCTAssertEqual(trace.allocationsBySize[7070], 1, "\(label): the block allocated just before the exit call")
                XCTAssertEqual(trace.doubleLive, 0, label)
                try HazardKit.readWithLeakreport(path, label: label)
            }
        }
    }
}
