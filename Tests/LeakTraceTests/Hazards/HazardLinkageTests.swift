// Hazard case 12 (docs/reliability.md): linkage. A static program under the wrapper, dlopen with
// RTLD_DEEPBIND, a library found through the caller's $ORIGIN RUNPATH, binaries linked with
// -z now, and free called through function pointers.

import Foundation
import XCTest
import TraceFormat
import Symbolization

final class HazardLinkageTests: HazardTestCase {
    /// A static program cannot be traced: the wrapper says so in one line and runs it unchanged;
    /// preloaded directly, the tracer is simply never loaded.
    func testCase12aStaticProgramUnderTheWrapper() throws {
        let exe = try HazardKit.build("hazard_linkage", flags: ["-static"], output: "hazard_linkage_static")
        let wrapper = TracedProgram.repositoryRoot.appendingPathComponent("Scripts/leaktrace").path
        for run in 1...HazardKit.runsPerCase {
            let label = "run \(run)"
            let plain = try TracedProgram.runPlain(exe, arguments: ["plain"])
            let traceDirectory = try HazardKit.scratchDirectory()
            let wrapped = try TracedProgram.run(
                executable: wrapper, arguments: ["-o", traceDirectory.appendingPathComponent("%p.lt").path, "--", exe, "plain"],
                environment: ["LEAKTRACE_LIB": try HazardKit.shim()], timeout: 60)
            XCTAssertEqual(wrapped.stdout, plain.stdout, label)
            XCTAssertEqual(wrapped.stdout, "plain kept=1\n", label)
            XCTAssertEqual(wrapped.status, plain.status, label)
            XCTAssertEqual(wrapped.stderr, "leaktrace: \(exe) is statically linked and cannot be traced; running it untraced\n", label)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: traceDirectory.path), [], label)

            let runs = try HazardKit.runBoth(HazardKit.Invocation(exe, ["plain"]), label: "\(label), LD_PRELOAD")
            XCTAssertEqual(runs.traces, [], "\(label): a static program loads no preload library")
        }
    }

    /// RTLD_DEEPBIND would bind the library's malloc and free to libc ahead of the tracer; the
    /// tracer drops the flag, so the library's allocation and free are both in the trace.
    func testCase12bDlopenWithDeepbind() throws {
        let library = try TracedProgram.buildLibrary("hazard_linkage_lib")
        let exe = try HazardKit.build("hazard_linkage")
        let makeLine = try HazardKit.line(of: "make", in: "hazard_linkage_lib.c")
        try HazardKit.eachRun(HazardKit.Invocation(exe, ["deepbind", library]),
                              stdout: "deepbind kept=1\n") { runs, label in
            let trace = try singleCompleteTrace(runs, label)
            XCTAssertEqual(trace.liveBlocks(ofSize: 6201).count, 1, label)
            XCTAssertEqual(trace.allocationsBySize[6202], 1, label)
            XCTAssertEqual(trace.freesBySize[6202], 1, "\(label): the library's free reached the tracer")
            if let block = trace.liveBlocks(ofSize: 6201).first {
                let frame = trace.symbolize(block, with: Symbolizer(), limit: 1).first
                XCTAssertEqual(frame?.function, "linkage_lib_make", label)
                XCTAssertEqual(frame?.line, makeLine, label)
                XCTAssertEqual(frame?.module, library, label)
            }
        }
    }

    /// The program finds its library by bare name through `$ORIGIN/...` in its own RUNPATH:
    /// the tracer's dlopen must leave the program as the caller the loader resolves against.
    func testCase12cLibraryFoundThroughOriginRunpath() throws {
        let library = try TracedProgram.buildLibrary("hazard_linkage_lib")
        let exe = try HazardKit.build("hazard_linkage", flags: ["-Wl,-rpath,$ORIGIN/hazard-origin-libs", "-Wl,--enable-new-dtags"],
                                      output: "hazard_linkage_origin")
        let libraries = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("hazard-origin-libs")
        try FileManager.default.createDirectory(at: libraries, withIntermediateDirectories: true)
        let placed = libraries.appendingPathComponent("libhazard_linkage_lib.so")
        if !FileManager.default.fileExists(atPath: placed.path) {
            try FileManager.default.copyItem(atPath: library, toPath: placed.path)
        }
        let dynamic = try TracedProgram.run(executable: "/usr/bin/readelf", arguments: ["-d", exe], environment: [:], timeout: 30)
        XCTAssertTrue(dynamic.stdout.contains("(RUNPATH)") && dynamic.stdout.contains("$ORIGIN/hazard-origin-libs"), dynamic.stdout)
        try HazardKit.eachRun(HazardKit.Invocation(exe, ["origin", "libhazard_linkage_lib.so"]),
                              stdout: "origin kept=1\n", otherwise: "the library was not found") { runs, label in
            let trace = try singleCompleteTrace(runs, label)
            XCTAssertEqual(trace.liveBlocks(ofSize: 6301).count, 1, label)
            if let block = trace.liveBlocks(ofSize: 6301).first {
                let frame = trace.symbolize(block, with: Symbolizer(), limit: 1).first
                XCTAssertEqual(frame?.function, "linkage_lib_make", label)
                XCTAssertEqual(frame?.module, placed.path, label)
            }
        }
    }

    /// Binaries linked with -z now (every symbol bound at start, before the tracer's constructor
    /// ran), and free called through function pointers (a pointer taken at compile time and one
    /// found with dlsym).
    func testCase12dBindNowAndFreeThroughFunctionPointers() throws {
        let lazy = try HazardKit.build("hazard_linkage")
        let now = try HazardKit.build("hazard_linkage", flags: ["-Wl,-z,now"], output: "hazard_linkage_now")
        let dynamic = try TracedProgram.run(executable: "/usr/bin/readelf", arguments: ["-d", now], environment: [:], timeout: 30)
        XCTAssertTrue(dynamic.stdout.contains("BIND_NOW") || dynamic.stdout.contains("Flags: NOW"), dynamic.stdout)
        for run in 1...HazardKit.runsPerCase {
            for exe in [lazy, now] {
                let label = "run \(run), \(URL(fileURLWithPath: exe).lastPathComponent)"
                let plain = try HazardKit.runBoth(HazardKit.Invocation(exe, ["plain"]), label: label)
                XCTAssertEqual(plain.traced.stdout, "plain kept=1\n", label)
                let plainTrace = try singleCompleteTrace(plain, label)
                XCTAssertEqual(plainTrace.liveBlocks(ofSize: 6501).count, 1, label)
                XCTAssertEqual(plainTrace.allocationsBySize[6502], 1, label)
                XCTAssertEqual(plainTrace.freesBySize[6502], 1, label)

                let pointers = try HazardKit.runBoth(HazardKit.Invocation(exe, ["pointers"]), label: "\(label), pointers")
                XCTAssertEqual(pointers.traced.stdout, "pointers kept=1\n", label)
                let pointerTrace = try singleCompleteTrace(pointers, label)
                XCTAssertEqual(pointerTrace.freesBySize[6401], 1, "\(label): free through a pointer")
                XCTAssertEqual(pointerTrace.freesBySize[6402], 1, "\(label): free through dlsym's pointer")
                XCTAssertEqual(pointerTrace.liveBlocks(ofSize: 6403).count, 1, label)
            }
        }
    }

    /// The one complete trace a run wrote, with its END checked, read by leakreport too.
    private func singleCompleteTrace(_ runs: HazardKit.Comparison, _ label: String,
                                     file: StaticString = #filePath, line: UInt = #line) throws -> HazardTraceSummary {
        let trace = try HazardKit.singleCompleteTrace(runs, label, file: file, line: line)
        try HazardKit.readWithLeakreport(trace.path, label: label)
        return trace
    }
}
