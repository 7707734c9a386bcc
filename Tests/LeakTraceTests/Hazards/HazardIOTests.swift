// Hazard cases 7 and 8 (docs/reliability.md): descriptors closed and reused under the tracer,
// and a trace that is cut by SIGKILL or cannot be written at all.

import Foundation
import XCTest
import TraceFormat

final class HazardIOTests: HazardTestCase {
    // MARK: - 7. Closed and reused descriptors

    /// A daemon-style program closes fds 3..1023, puts its own files on 3..127 with dup2 and
    /// writes known bytes into each, allocating (so unwinding) all along, in each unwind mode.
    func testCase07ClosedAndReusedDescriptors() throws {
        let exe = try HazardKit.build("hazard_fds")
        let modes = ["cached", "libunwind", "verify"]
        for run in 1...HazardKit.runsPerCase {
            let mode = modes[(run - 1) % modes.count]
            let label = "run \(run), LEAKTRACE_UNWIND=\(mode)"
            var invocation = HazardKit.Invocation(exe, ["{out}"])
            invocation.tracerEnvironment = ["LEAKTRACE_UNWIND": mode]
            let runs = try HazardKit.runBoth(invocation, label: label)
            XCTAssertEqual(runs.traced.stdout, "files=125 bad=0 kept=1\n", label)
            let files = try HazardKit.filesUnder(runs.tracedOutput)
            XCTAssertEqual(files.count, 125, label)
            XCTAssertEqual(files["fd042.txt"], Data("descriptor 42 holds exactly this line\n".utf8), label)
            let trace = try HazardKit.singleCompleteTrace(runs, label)
            let path = trace.path
            XCTAssertEqual(trace.liveBlocks(ofSize: 999).count, 1, label)
            // Every allocation of the program's loops, each freed (sizes in hazard_fds.c).
            for (sizes, count) in [(UInt64(5003)...5127, 1), (3000...3049, 125), (3100...3119, 125)] {
                for size in sizes {
                    XCTAssertEqual(trace.allocationsBySize[size], count, "\(label): \(size)")
                    XCTAssertEqual(trace.freesBySize[size], count, "\(label): \(size)")
                }
            }
            if mode == "verify" {
                XCTAssertTrue(trace.notes.contains { $0.hasPrefix("unwind-verify") && $0.hasSuffix(" mismatches=0") },
                              "\(label): \(trace.notes)")
            }
            try HazardKit.readWithLeakreport(path, label: label)
        }
    }

    // MARK: - 8. Killed and failing output

    /// SIGKILL after the program's allocations were flushed: the reader yields every record up
    /// to the cut, says where it ends, and has every allocation made before the flush.
    func testCase08aKilledAfterAFlush() throws {
        let exe = try HazardKit.build("hazard_output")
        for run in 1...HazardKit.runsPerCase {
            let label = "run \(run)"
            let plain = try HazardKit.runUntilLine("flushed", executable: exe, arguments: ["100000", "wait"], environment: [:])
            let traceDirectory = try HazardKit.scratchDirectory()
            let traced = try HazardKit.runUntilLine(
                "flushed", executable: exe, arguments: ["100000", "wait"],
                environment: ["LD_PRELOAD": try HazardKit.shim(), "LEAKTRACE_EVENTS": "all",
                              "LEAKTRACE_OUTPUT": traceDirectory.appendingPathComponent("%p.lt").path])
            XCTAssertEqual(traced.stdout, plain.stdout, label)
            XCTAssertEqual(traced.stdout, "allocated 100000\nflushed\n", label)
            XCTAssertEqual(traced.stderr, plain.stderr, label)
            XCTAssertTrue(traced.terminatedBySignal && plain.terminatedBySignal, label)
            XCTAssertEqual(traced.status, SIGKILL, label)
            let files = try FileManager.default.contentsOfDirectory(atPath: traceDirectory.path)
            XCTAssertEqual(files.count, 1, label)
            guard let name = files.first else { continue }
            let path = traceDirectory.appendingPathComponent(name).path
            let trace = try HazardTraceSummary(path: path)
            let size = UInt64((try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0)
            guard case let .cut(offset, reason)? = trace.endState else {
                XCTFail("\(label): a killed process's trace has no END: \(String(describing: trace.endState))"); continue
            }
            XCTAssertLessThanOrEqual(offset, size, label)
            XCTAssertFalse(reason.isEmpty, label)
            XCTAssertGreaterThanOrEqual(trace.allocationsBySize[100] ?? 0, 100_000, "\(label): allocations before the flush")
            XCTAssertGreaterThanOrEqual(trace.freesBySize[100] ?? 0, 50_000, label)
            try HazardKit.readWithLeakreport(path, label: label)
        }
    }

    /// LEAKTRACE_OUTPUT=/dev/full: one line on stderr, tracing stops, the program is unchanged.
    func testCase08bOutputToDevFull() throws {
        let exe = try HazardKit.build("hazard_output")
        var invocation = HazardKit.Invocation(exe, ["100000", "x", "{out}/program.txt"])
        invocation.traceOutput = "/dev/full"
        invocation.allowedTracerLines = ["cannot write trace file /dev/full: no space left on device"]
        try HazardKit.eachRun(invocation, stdout: "allocated 100000\n") { runs, label in
            XCTAssertEqual(runs.tracerLines.count, 1, "\(label): \(runs.tracerLines)")
            XCTAssertEqual(try HazardKit.filesUnder(runs.tracedOutput)["program.txt"], Data("program bytes\n".utf8), label)
        }
    }

    /// A full disk: the trace goes to a 64 KiB tmpfs mounted in a private mount namespace (so it
    /// needs the right to mount: root). Filled by the trace itself while the program runs, then
    /// full from the start. One stderr line each time, tracing stops, the program is unchanged;
    /// the trace cut by the full disk still reads up to the cut.
    func testCase08cFullDisk() throws {
        let exe = try HazardKit.build("hazard_output")
        try requirePrivateTmpfs()
        let script = """
            mnt=$1 keep=$2 fill=$3; shift 3
            mount -t tmpfs -o size=64k tmpfs "$mnt" || exit 90
            if [ "$fill" = 1 ]; then head -c 1000000 /dev/zero > "$mnt/filler" 2>/dev/null; fi
            LD_PRELOAD="$HAZARD_PRELOAD" "$@"
            status=$?
            for f in "$mnt"/*.lt*; do [ -f "$f" ] && cp "$f" "$keep/"; done
            exit $status
            """
        for run in 1...HazardKit.runsPerCase {
            for fullFromTheStart in [false, true] {
                let label = "run \(run), \(fullFromTheStart ? "full from the start" : "filled while tracing")"
                let mountPoint = try HazardKit.scratchDirectory()
                let kept = try HazardKit.scratchDirectory()
                var invocation = HazardKit.Invocation("/usr/bin/unshare", [
                    "-m", "/bin/sh", "-c", script, "sh", mountPoint.path, kept.path, fullFromTheStart ? "1" : "0",
                    exe, "200000", "x", "{out}/program.txt",
                ])
                invocation.preloadVariable = "HAZARD_PRELOAD"
                invocation.traceOutput = mountPoint.appendingPathComponent("%p.lt").path
                invocation.tracerEnvironment = ["LEAKTRACE_ZSTD_LEVEL": "0"] // raw chunks fill 64 KiB at once
                invocation.allowedTracerLines = ["cannot write trace"]
                let runs = try HazardKit.runBoth(invocation, label: label)
                XCTAssertEqual(runs.traced.stdout, "allocated 200000\n", label)
                XCTAssertEqual(runs.traced.status, 0, label)
                XCTAssertEqual(runs.tracerLines.count, 1, "\(label): \(runs.tracerLines)")
                XCTAssertTrue(runs.tracerLines.first?.hasSuffix(": no space left on device") ?? false, label)
                let traces = try FileManager.default.contentsOfDirectory(atPath: kept.path)
                XCTAssertEqual(traces.count, 1, "\(label): \(traces)")
                guard let name = traces.first else { continue }
                let path = kept.appendingPathComponent(name).path
                if fullFromTheStart {
                    // Not even the header fitted: the file cannot be read, and says so in one line.
                    XCTAssertThrowsError(try TraceReader(path: path), label) { error in
                        XCTAssertTrue(error is TraceError, label)
                        XCTAssertFalse("\(error)".contains("\n"), label)
                    }
                } else {
                    let trace = try HazardTraceSummary(path: path)
                    guard case .cut? = trace.endState else {
                        XCTFail("\(label): \(String(describing: trace.endState))"); continue
                    }
                    XCTAssertGreaterThan(trace.allocationsBySize[100] ?? 0, 1000, "\(label): the records before the cut")
                    XCTAssertEqual(trace.doubleLive, 0, label)
                }
            }
        }
    }

    /// Skips unless this process may mount a tmpfs in a private mount namespace.
    private func requirePrivateTmpfs() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
            throw missingTool("/usr/bin/unshare (the full-disk case)", package: "util-linux")
        }
        let probe = try HazardKit.scratchDirectory()
        let result = try TracedProgram.run(executable: "/usr/bin/unshare",
                                           arguments: ["-m", "/bin/sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$1\"", "sh", probe.path],
                                           environment: [:], timeout: 30)
        if result.status != 0 {
            throw XCTSkip("the full-disk case mounts a 64 KiB tmpfs in a private mount namespace; "
                          + "this process may not (run as root): \(result.stderr)")
        }
    }
}
