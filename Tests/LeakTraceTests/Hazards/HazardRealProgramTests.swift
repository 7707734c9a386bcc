// Hazard case 13 (docs/reliability.md): real programs nobody here wrote, from Debian's packages:
// python3, perl, git, sqlite3 and gcc. Output unchanged; every trace reads to its END; and where
// the program is deterministic, the leak totals are the same from run to run.

import Foundation
import XCTest
import TraceFormat

final class HazardRealProgramTests: HazardTestCase {
    func testCase13aPython3() throws {
        let python = try program("/usr/bin/python3", package: "python3")
        let script = """
            import json, collections, re
            data = [{"k": i, "v": str(i) * (i % 7)} for i in range(2000)]
            text = json.dumps(data, sort_keys=True)
            words = collections.Counter(re.findall(r"[0-9]+", text))
            print(len(text), len(words), words.most_common(3))
            """
        // -B: no bytecode files written next to the standard library; fixed hash seed.
        try checkRealProgram(python, ["-B", "-c", script], environment: ["PYTHONHASHSEED": "0"])
    }

    func testCase13bPerl() throws {
        let perl = try program("/usr/bin/perl", package: "perl")
        let script = """
            my %count; $count{$_}++ for map { $_ % 97 } 1 .. 20000;
            my @top = (sort { $count{$b} <=> $count{$a} || $a <=> $b } keys %count)[0 .. 4];
            open(my $out, '>', "$ARGV[0]/perl.txt") or die; print $out join(",", @top), "\\n"; close $out;
            print scalar(keys %count), " ", join(" ", @top), "\\n";
            """
        try checkRealProgram(perl, ["-e", script, "{out}"], environment: ["PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0"])
    }

    func testCase13cGit() throws {
        let git = try program("/usr/bin/git", package: "git")
        // Reading this repository's history (packs, zlib) and creating a new repository.
        let environment = ["GIT_CONFIG_NOSYSTEM": "1", "HOME": NSTemporaryDirectory(), "GIT_PAGER": "cat"]
        try checkRealProgram(git, ["-C", TracedProgram.repositoryRoot.path, "log", "-n", "20", "--format=%H %s", "HEAD"],
                             environment: environment)
        try checkRealProgram(git, ["-c", "init.defaultBranch=main", "init", "-q", "{out}/repository"], environment: environment)
    }

    func testCase13dSqlite3() throws {
        let sqlite = try program("/usr/bin/sqlite3", package: "sqlite3")
        let sql = """
            create table t(a integer primary key, b text);
            with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000)
            insert into t(b) select printf('row %d', i) from n;
            create index tb on t(b);
            select count(*), sum(a), max(b) from t;
            """
        try checkRealProgram(sqlite, ["{out}/database.sqlite", sql])
    }

    func testCase13eGcc() throws {
        let gcc = try program("/usr/bin/gcc", package: "gcc")
        let source = TracedProgram.programsDirectory.appendingPathComponent("hazard_bootstrap.c").path
        // The driver runs cc1, as, collect2 and ld: each writes its own trace.
        try checkRealProgram(gcc, ["-O1", "-o", "{out}/program", source], tracesAtLeast: 5, independentCount: false)
    }

    // MARK: - Helpers

    private func program(_ path: String, package: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw missingTool(path, package: package)
        }
        return path
    }

    /// Runs the program with and without the tracer (HazardKit.runBoth compares output, status
    /// and written files), reads every trace to its END, and compares the main program's leak
    /// totals from run to run. For a program that runs no other (`independentCount`), the
    /// trace's allocator calls are compared with glibc's own count of them (mtrace), made in
    /// one more run with the same environment and addresses.
    private func checkRealProgram(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                                  tracesAtLeast: Int = 1, independentCount: Bool = true,
                                  file: StaticString = #filePath, line: UInt = #line) throws {
        var totals: [String: Set<String>] = [:]
        let name = URL(fileURLWithPath: executable).lastPathComponent
        for run in 1...HazardKit.runsPerCase {
            let label = "\(name) \(arguments.prefix(3).joined(separator: " ")), run \(run)"
            var invocation = HazardKit.Invocation(executable, arguments)
            invocation.environment = environment
            invocation.timeout = 120
            // The same environment in the same order, and no address randomisation: GCC's hash
            // tables hash pointers (cc1 leaves a 32 KiB block more in some runs otherwise), and
            // perl's %ENV grows differently with the order of its entries.
            invocation.sameEnvironmentEveryRun = true
            invocation.fixedAddresses = true
            let runs = try HazardKit.runBoth(invocation, label: label, file: file, line: line)
            XCTAssertEqual(runs.traced.status, 0, "\(label): \(runs.traced.stderr)", file: file, line: line)
            if independentCount && run == 1, let path = runs.traces.first {
                let glibc = try HazardKit.mtraceCount(invocation)
                let trace = try HazardTraceSummary(path: path)
                XCTAssertEqual(runs.traces.count, 1, label, file: file, line: line)
                XCTAssertEqual(trace.allocs + trace.reallocs, glibc.allocationCalls,
                               "\(label): allocation calls, traced against glibc's mtrace", file: file, line: line)
                // mtrace also logs glibc's cleanup after the tracer's END: never fewer frees.
                XCTAssertLessThanOrEqual(trace.frees, glibc.frees, label, file: file, line: line)
                print("hazard 13: \(name): \(trace.allocs + trace.reallocs) allocation calls traced, "
                      + "\(glibc.allocationCalls) in glibc's mtrace; frees \(trace.frees) and \(glibc.frees)")
            }
            XCTAssertGreaterThanOrEqual(runs.traces.count, tracesAtLeast, label, file: file, line: line)
            for path in runs.traces {
                let trace = try HazardTraceSummary(path: path)
                let traceName = URL(fileURLWithPath: trace.header.program ?? "?").lastPathComponent
                XCTAssertTrue(trace.isComplete, "\(label), \(traceName): \(String(describing: trace.endState))", file: file, line: line)
                trace.assertEndMatchesRecords("\(label), \(traceName)", file: file, line: line)
                XCTAssertEqual(trace.doubleLive, 0, "\(label), \(traceName)", file: file, line: line)
                XCTAssertGreaterThan(trace.allocs, 0, "\(label), \(traceName)", file: file, line: line)
                totals[traceName, default: []].insert("\(trace.leakedBlocks) blocks, \(trace.leakedBytes) bytes")
                try HazardKit.readWithLeakreport(path, label: label, file: file, line: line)
            }
        }
        // With the same input, environment and addresses, each of these programs does the same
        // work every time: what it leaves allocated at exit must not change from run to run (a
        // lost or doubled event would show here).
        for (traceName, seen) in totals.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(seen.count, 1, "\(name): \(traceName) leak totals vary: \(seen.sorted())", file: file, line: line)
            print("hazard 13: \(name) -> \(traceName): \(seen.sorted().joined(separator: " | "))")
        }
    }
}
