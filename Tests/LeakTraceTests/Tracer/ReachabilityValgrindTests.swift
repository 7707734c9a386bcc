import Foundation
import XCTest

/// Reachability at exit (issue 14) against two independent truths: the test programs' design
/// (Programs/reach_cases.c, Programs/reach_cxx.cpp say what each case leaves, by call site) and
/// valgrind memcheck's leak summary on the same program, which must agree with the tracer's
/// category totals to the byte and the block.
final class ReachabilityValgrindTests: XCTestCase {

    /// Blocks and bytes of each category.
    struct Categories: Equatable, CustomStringConvertible {
        var definite = Amount(), indirect = Amount(), possible = Amount(), reachable = Amount()
        var description: String {
            "definite \(definite), indirect \(indirect), possible \(possible), reachable \(reachable)"
        }
    }

    struct Amount: Equatable, CustomStringConvertible {
        var blocks = 0, bytes = 0
        var description: String { "\(bytes) B in \(blocks)" }
    }

    // MARK: - the two sides

    /// memcheck's LEAK SUMMARY for `executable arguments` (all zero when it says every block was freed).
    static func valgrind(_ executable: String, _ arguments: [String], diesOfSignal: Bool = false) throws -> Categories {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/valgrind") else {
            throw missingTool("valgrind", package: "valgrind")
        }
        let run = try TracedProgram.run(executable: "/usr/bin/valgrind",
                                        arguments: ["--leak-check=full", "--show-leak-kinds=all", executable] + arguments,
                                        environment: [:], timeout: 300)
        guard (run.status == 0) != diesOfSignal else {
            throw TestFailure("valgrind exited \(run.status): \(run.stderr.suffix(2000))")
        }
        var result = Categories()
        for line in run.stderr.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard let bytesAt = words.firstIndex(of: "bytes"), bytesAt > 0, words.count > bytesAt + 2 else { continue }
            let amount = Amount(blocks: Int(words[bytesAt + 2].replacingOccurrences(of: ",", with: "")) ?? -1,
                                bytes: Int(words[bytesAt - 1].replacingOccurrences(of: ",", with: "")) ?? -1)
            if line.contains("definitely lost:") { result.definite = amount }
            if line.contains("indirectly lost:") { result.indirect = amount }
            if line.contains("possibly lost:") { result.possible = amount }
            if line.contains("still reachable:") { result.reachable = amount }
        }
        return result
    }

    static func categories(_ reachability: [String: Any]) -> Categories {
        func amount(_ key: String) -> Amount {
            let object = reachability.object(key)
            return Amount(blocks: object.int("blocks") ?? -1, bytes: object.int("bytes") ?? -1)
        }
        return Categories(definite: amount("definitelyLost"), indirect: amount("indirectlyLost"),
                          possible: amount("possiblyLost"), reachable: amount("stillReachable"))
    }

    struct TracedReport {
        var summary: Categories
        /// Per group of one full stack: the functions of its stack, and its categories.
        var stacks: [(functions: [String], categories: Categories)]
        var mappings: [[String: Any]]
        /// The scan's facts (`summary.reachability.scan`).
        var scan: [String: Any]

        /// The categories of the blocks allocated by `function` itself (`anywhere`: by it or by
        /// anything it called, as C++ containers allocate).
        func blocks(of function: String, anywhere: Bool = false) -> Categories {
            var total = Categories()
            // C names exactly; C++ names with their parameter lists
            let named = { (name: String) in name == function || name.hasPrefix(function + "(") }
            for group in stacks where anywhere ? group.functions.contains(where: named) : group.functions.first.map(named) ?? false {
                total.definite.blocks += group.categories.definite.blocks
                total.definite.bytes += group.categories.definite.bytes
                total.indirect.blocks += group.categories.indirect.blocks
                total.indirect.bytes += group.categories.indirect.bytes
                total.possible.blocks += group.categories.possible.blocks
                total.possible.bytes += group.categories.possible.bytes
                total.reachable.blocks += group.categories.reachable.blocks
                total.reachable.bytes += group.categories.reachable.bytes
            }
            return total
        }
    }

    /// Traces `executable arguments` and reads the report's reachability.
    static func traced(_ executable: String, _ arguments: [String], diesOfSignal: Bool = false) throws -> TracedReport {
        // As users run it: the runtimes' cleanup at exit included, as memcheck does it.
        let run = try TracedProgram.trace(executable, arguments: arguments, environment: ["LEAKTRACE_FREERES": "1"])
        guard (run.status == 0) != diesOfSignal, let trace = run.traces.first else {
            throw TestFailure("traced run exited \(run.status) with \(run.traces.count) traces: \(run.stderr)")
        }
        // Every block, as memcheck counts them: the built-in suppressions (stdio's buffer) off.
        let document = try LeakReportRunner.json([trace, "--group-by", "stack", "--top", "10000", "--show-reachable",
                                                  "--no-default-suppressions"])
        let summary = document.object("summary")
        guard let reachability = summary["reachability"] as? [String: Any] else {
            throw TestFailure("the report does not know reachability: \(summary)")
        }
        let stacks = document.objects("groups").map { group -> ([String], Categories) in
            let frames = group.object("biggest").objects("stack")
            return (frames.compactMap { $0.string("function") }, categories(group.object("reachability")))
        }
        return TracedReport(summary: categories(reachability), stacks: stacks, mappings: document.objects("mappings"),
                            scan: reachability.object("scan"))
    }

    // MARK: - C cases

    private func checkCase(_ name: String, design: Categories, againstValgrind: Bool = true, diesOfSignal: Bool = false,
                           scanSays fact: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let exe = try TracedProgram.build("reach_cases")
        let plugin = try TracedProgram.buildLibrary("reach_plugin")
        let arguments = [name, plugin]
        let report = try Self.traced(exe, arguments, diesOfSignal: diesOfSignal)
        let function = ["dlopen": "dl_open", "killed": "overwritten", "crash": "overwritten", "realloc": "grow",
                        "thread_stack": "hold_on_stack"][name] ?? name
        XCTAssertEqual(report.blocks(of: function), design, "\(name): the program's own blocks", file: file, line: line)
        XCTAssertEqual(report.scan["scanned"] as? Bool, true, "\(name): \(report.scan)", file: file, line: line)
        if let fact { XCTAssertEqual(report.scan[fact] as? Bool, true, "\(name): \(report.scan)", file: file, line: line) }
        if againstValgrind {
            XCTAssertEqual(report.summary, try Self.valgrind(exe, arguments, diesOfSignal: diesOfSignal),
                           "\(name): totals against memcheck", file: file, line: line)
        }
    }

    private func amount(_ blocks: Int, _ bytes: Int) -> Amount { Amount(blocks: blocks, bytes: bytes) }

    func testGlobalPointerKeepsItsBlock() throws {
        try checkCase("global", design: Categories(reachable: amount(1, 100)), scanSays: "libcFreeres")
    }

    func testBlockReachableOnlyThroughAnother() throws {
        try checkCase("chain", design: Categories(reachable: amount(2, 128)))
    }

    func testOverwrittenPointerLosesItsBlock() throws {
        try checkCase("overwritten", design: Categories(definite: amount(1, 120), reachable: amount(1, 130)))
    }

    func testDroppedListHeadIsDefiniteAndItsNodesIndirect() throws {
        try checkCase("list", design: Categories(definite: amount(1, 40), indirect: amount(4, 160)))
    }

    func testLostCycleHasOneDefiniteBlock() throws {
        try checkCase("cycle", design: Categories(definite: amount(1, 56), indirect: amount(1, 56)))
    }

    func testInteriorPointerMakesPossiblyLost() throws {
        try checkCase("interior", design: Categories(possible: amount(1, 72)))
    }

    func testThreadLocalStorageIsARoot() throws {
        try checkCase("tls", design: Categories(reachable: amount(1, 96)))
    }

    func testDlopenedLibraryDataIsARoot() throws {
        try checkCase("dlopen", design: Categories(reachable: amount(1, 104)))
    }

    func testXoredPointerIsNoPointer() throws {
        try checkCase("xor", design: Categories(definite: amount(1, 112)))
    }

    /// The live set follows realloc: a block moved to its own mapping, and one shrunk.
    func testReallocatedBlocksKeepTheirCategories() throws {
        try checkCase("realloc", design: Categories(definite: amount(1, 24), reachable: amount(1, 200_000)))
    }

    /// A blocked thread's stack holds the only pointer. The totals are not memcheck's: with a
    /// thread still running the tracer does not call glibc's cleanup (memcheck does, having
    /// stopped every thread), so glibc's buffers stay; the case's own block must be reachable,
    /// and the trace must say other threads were running.
    func testOtherThreadsStackIsARoot() throws {
        try checkCase("thread_stack", design: Categories(reachable: amount(1, 88)), againstValgrind: false,
                      scanSays: "otherThreadsRunning")
    }

    /// A process that dies of a signal is scanned from the signal's handler: the interrupted
    /// thread's registers and its stack from the interrupted stack pointer, as memcheck scans it
    /// (neither calls glibc's cleanup then, so their totals agree, stdio's buffer included).
    func testProcessKilledBySignalIsScannedFromTheHandler() throws {
        let design = Categories(definite: amount(1, 120), reachable: amount(1, 130))
        try checkCase("killed", design: design, diesOfSignal: true, scanSays: "inFatalSignalHandler")
        try checkCase("crash", design: design, diesOfSignal: true, scanSays: "inFatalSignalHandler")
    }

    /// Direct mappings are classified too (memcheck does not track them): one kept by a global,
    /// one whose address was dropped; and the two pieces left of a mapping whose middle page
    /// was unmapped, only the first kept.
    func testDirectMappingsAreClassified() throws {
        let exe = try TracedProgram.build("reach_cases")
        for (name, size) in [("mapping", 65536), ("pieces", 4096)] {
            let report = try Self.traced(exe, [name])
            let categories = report.mappings.compactMap { $0["reachability"] as? String }.sorted()
            XCTAssertEqual(report.mappings.map { $0.int("size") ?? -1 }, [size, size], "\(name): \(report.mappings)")
            XCTAssertEqual(categories, ["definitely-lost", "still-reachable"], "\(name): \(report.mappings)")
        }
    }

    // MARK: - C++

    func testCxxObjectGraphAgreesWithMemcheck() throws {
        let exe = try TracedProgram.build("reach_cxx")
        let report = try Self.traced(exe, [])
        // The leaked Graph (16 B) is definite; its two Nodes (2 x 56 B), their strings' buffers
        // (41 and 51 B) and vectors' arrays (20 and 24 B) are indirect.
        XCTAssertEqual(report.blocks(of: "leaked_graph", anywhere: true),
                       Categories(definite: amount(1, 16), indirect: amount(6, 2 * 56 + 41 + 51 + 20 + 24)))
        XCTAssertEqual(report.blocks(of: "kept_array", anywhere: true), Categories(reachable: amount(1, 8 + 3 * 8)))
        XCTAssertEqual(report.blocks(of: "kept_second", anywhere: true), Categories(reachable: amount(1, 40)))
        let index = report.blocks(of: "kept_index", anywhere: true)
        XCTAssertEqual(index.definite, Amount())
        XCTAssertEqual(index.possible, Amount())
        XCTAssertGreaterThanOrEqual(index.reachable.blocks, 1 + 3 * 3, "the map, and per entry a node, a key buffer, an array")
        XCTAssertEqual(report.summary, try Self.valgrind(exe, []), "totals against memcheck")
    }
}
