import Foundation
import XCTest
import TraceFormat

/// Frames the library's own stack walker must step correctly or hand to libunwind
/// (Programs/walker_edges.c): an rbp-based CFA after stack realignment, a signal frame, a CFA
/// given as a DWARF expression, a recursion deeper than the stack cache holds, and two plugins
/// loaded in turn at one address whose same code needs different unwind rules. Each leaks one
/// block of a size of its own, and each block's stack is checked against the program's design
/// with addr2line, besides the verify mode's frame-by-frame comparison with libunwind.
final class TracerWalkerEdgeTests: XCTestCase {

    func testWalkerEdgeCasesGiveTheDesignedStacks() throws {
        // -O2: frame sizes then show in rsp-based CFA offsets (at -O0 every frame is rbp-based
        // and the two plugins would need the same rule).
        let pluginA = try TracedProgram.build("walker_plugin", flags: ["-O2", "-shared", "-fPIC", "-DFRAME_BYTES=1024"],
                                              output: "libwalker_a.so")
        let pluginB = try TracedProgram.build("walker_plugin", flags: ["-O2", "-shared", "-fPIC", "-DFRAME_BYTES=4096"],
                                              output: "libwalker_b.so")
        let exe = try TracedProgram.build("walker_edges", flags: ["-rdynamic"])
        let run = try TracedProgram.trace(exe, arguments: [pluginA, pluginB], environment: ["LEAKTRACE_DEPTH": "256"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stdout, "40\n")
        XCTAssertEqual(run.stderr, "", "the tracer says nothing (a verify mismatch would be reported here)")
        guard let path = run.traces.first else { return XCTFail("no trace") }
        let trace = try DecodedTrace(path: path)
        XCTAssertTrue(trace.isComplete)
        XCTAssertEqual(trace.unwindMismatches, 0)
        // The signal frame and the expression CFA are the only frames the walker hands over.
        XCTAssertEqual(trace.unwindCount("fallbacks"), 2)

        func names(ofSize size: UInt64, limit: Int = 8) -> [String] {
            guard let block = trace.allocs.first(where: { $0.size == size }) else { return [] }
            return trace.functionNames(ofStack: block.stack, limit: limit)
        }
        XCTAssertEqual(Array(names(ofSize: 7001).prefix(3)), ["alloc_from_main", "realigned", "main"])
        let fromHandler = names(ofSize: 7002, limit: 12)
        XCTAssertEqual(fromHandler.first, "on_signal")
        XCTAssertTrue(fromHandler.contains("main"), "the stack goes on past the signal frame: \(fromHandler)")
        XCTAssertEqual(Array(names(ofSize: 7004).prefix(4)), ["alloc_from_main", "through_expression", "expr_frame", "main"])
        let deep = names(ofSize: 7003, limit: 256)
        XCTAssertEqual(deep.filter { $0 == "recurse" }.count, 150)
        XCTAssertEqual(deep.last, "_start")

        // Plugin rounds alternate A and B, loaded at the same address: each block's stack runs
        // through plugin_alloc and on to main (with A's rule used for B's frame, or B's for A's,
        // the walk read a return address out of the frame's locals and the stack ended there).
        let rounds = trace.allocs.filter { $0.size >= 7100 && $0.size < 7140 }
        XCTAssertEqual(rounds.count, 40)
        let pluginBases = Set(trace.moduleMaps.snapshots.flatMap { $0 }.filter { $0.path == pluginA || $0.path == pluginB }.map(\.bias))
        XCTAssertEqual(pluginBases.count, 1, "both plugins loaded at one address, so the same code address needs two rules")
        for block in rounds {
            let frames = trace.stacks.frames(block.stack, limit: 3)
            XCTAssertEqual(frames.count, 3, "size \(block.size)")
            guard frames.count == 3 else { continue }
            let inPlugin = trace.moduleMaps.snapshots.indices.contains {
                let module = trace.moduleMaps.module(containing: frames[1], snapshot: $0)
                return module?.path == pluginA || module?.path == pluginB
            }
            XCTAssertTrue(inPlugin, "size \(block.size)")
            XCTAssertEqual(trace.functionName(at: frames[0]), "alloc_from_main", "size \(block.size)")
            XCTAssertEqual(trace.functionName(at: frames[2]), "main", "size \(block.size)")
        }
    }
}
