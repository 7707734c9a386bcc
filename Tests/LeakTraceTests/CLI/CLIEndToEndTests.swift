import Foundation
import XCTest
import TraceFormat

/// Traces the fixture programs in Programs/analysis_* with the real preload library and checks
/// leakreport's JSON: exact counts, bytes, paths, call-site functions and file:line.
final class CLIEndToEndTests: XCTestCase {
    /// The line of `marker` (e.g. "@list") in a fixture source, so that expectations follow the file.
    static func line(of marker: String, in source: String) throws -> Int {
        let path = TracedProgram.programsDirectory.appendingPathComponent(source).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where line.hasSuffix(" \(marker) */") || line.hasSuffix(" \(marker)") || line.contains(" \(marker) */") {
            return index + 1
        }
        throw TestFailure("no \(marker) in \(source)")
    }

    /// Traces `program` and returns the single trace written.
    static func traceOne(_ program: String, arguments: [String] = [], flags: [String] = [],
                         output: String? = nil, environment: [String: String] = [:]) throws -> String {
        let executable = try TracedProgram.build(program, flags: flags, output: output)
        let run = try TracedProgram.trace(executable, arguments: arguments, environment: environment)
        guard run.status == 0, !run.terminatedBySignal else {
            throw TestFailure("\(program) exited \(run.status): \(run.stderr)")
        }
        guard let trace = run.traces.first, run.traces.count == 1 else {
            throw TestFailure("expected one trace from \(program), got \(run.traces)")
        }
        return trace
    }

    /// The group whose call site is `function` (exactly one).
    static func group(_ root: [String: Any], function: String, file: StaticString = #filePath,
                      line: UInt = #line) -> [String: Any] {
        let matches = root.objects("groups").filter { $0.object("callsite").string("function") == function }
        XCTAssertEqual(matches.count, 1, "groups with call site \(function)", file: file, line: line)
        return matches.first ?? [:]
    }

    func testLeaksByPathWithCallSites() throws {
        let trace = try Self.traceOne("analysis_leaks")
        let root = try LeakReportRunner.json([trace, "--top", "100"])
        let source = "analysis_leaks.c"

        func check(_ function: String, marker: String, blocks: Int, bytes: Int, path: String,
                   line: UInt = #line) throws {
            let group = Self.group(root, function: function, line: line)
            XCTAssertEqual(group.int("blocks"), blocks, function, line: line)
            XCTAssertEqual(group.int("bytes"), bytes, function, line: line)
            XCTAssertEqual(group.object("byPath").object(path).int("bytes"), bytes, function, line: line)
            let callsite = group.object("callsite")
            XCTAssertEqual(callsite.int("line"), try Self.line(of: marker, in: source), function, line: line)
            XCTAssertEqual(callsite.string("file").map { URL(fileURLWithPath: $0).lastPathComponent }, source, line: line)
        }
        // xmalloc and strdup are wrappers: the call sites are their callers.
        try check("make_list", marker: "@list", blocks: 10, bytes: 1000, path: "heap")
        try check("copy_name", marker: "@name", blocks: 1, bytes: 10, path: "heap")
        try check("pin_heap", marker: "@pin", blocks: 1, bytes: 10000, path: "heap")
        try check("big_after_raise", marker: "@big", blocks: 1, bytes: 200_000, path: "heap")
        try check("grown", marker: "@realloc", blocks: 1, bytes: 3000, path: "heap")
        try check("thread_main", marker: "@thread", blocks: 1, bytes: 1000, path: "thread-arena")
        // 100000 bytes after mallopt(M_MMAP_THRESHOLD, 65536): glibc still serves it from the
        // free heap memory that pin_heap left (mmap is tried only when nothing free fits).
        try check("after_mallopt", marker: "@mmapped", blocks: 1, bytes: 100_000, path: "heap")
        XCTAssertEqual(Self.group(root, function: "make_list").object("biggest").objects("stack")
            .compactMap { $0.string("function") }.prefix(3), ["xmalloc", "make_list", "main"])

        // The threshold: raised by the free of the 300000-byte mmapped block, then set by mallopt.
        let threshold = root.object("summary").object("mmapThreshold")
        XCTAssertEqual(threshold.int("initial"), 131_072)
        XCTAssertEqual(threshold.int("final"), 65536)
        XCTAssertEqual(threshold["dynamic"] as? Bool, false)
        XCTAssertEqual(threshold.objects("moves").map { $0.int("to") }, [303_104, 65536])
        XCTAssertEqual(threshold.objects("moves").map { $0.string("reason") }, ["free-of-mmapped-block", "mallopt"])
        XCTAssertEqual(threshold.objects("moves").first?.int("freedBlockSize"), 300_000)
        XCTAssertEqual(threshold.object("largeBlocksFromHeap").int("bytes"), 200_000)
        XCTAssertEqual(Self.group(root, function: "big_after_raise").string("thresholdNote")?
            .hasPrefix("this 200000-byte block came from the heap: the mmap threshold was raised to 303104 bytes at "), true)

        // Program break growth by the program's own sbrk.
        let breakGrowth = root.objects("breakGrowth")
        XCTAssertEqual(breakGrowth.map { $0.int("netBytes") }, [8192])
        XCTAssertEqual(breakGrowth.first?.object("callsite").int("line"), try Self.line(of: "@sbrk", in: source))
        XCTAssertEqual(root.object("summary").object("byPath").object("brk-growth").int("bytes"), 8192)

        // The heap hole: the pin_heap block sits above the 19 freed ones.
        let hole = root.object("summary").object("heapHole")
        let start = try XCTUnwrap(hole.string("heapStart").flatMap { UInt64($0.dropFirst(2), radix: 16) })
        let top = try XCTUnwrap(hole.string("top").flatMap { UInt64($0.dropFirst(2), radix: 16) })
        let live = try XCTUnwrap(hole.object("liveHeap").int("bytes"))
        XCTAssertEqual(hole.int("pinnedBytes"), Int(top - start) - live)
        XCTAssertGreaterThanOrEqual(hole.int("pinnedBytes") ?? 0, 19 * 10000 - 100_000 - 3000)

        // The totals are the sum of the groups (every group shown with --top 100).
        let summary = root.object("summary")
        let groupBytes = root.objects("groups").compactMap { $0.int("bytes") }.reduce(0, +)
        XCTAssertEqual(summary.object("leaked").int("bytes"), groupBytes + 8192)
        XCTAssertEqual(summary.object("leaked").int("blocks"), root.objects("groups").compactMap { $0.int("blocks") }.reduce(0, +))
        XCTAssertEqual(summary.int("unknownFrees"), 0)
        XCTAssertEqual(root.object("trace").object("outcome")["isComplete"] as? Bool, true)
    }

    func testMappingsAfterPartialUnmapsRemapsAndFixed() throws {
        let scratch = try temporaryDirectory() + "/mapped.bin"
        let trace = try Self.traceOne("analysis_mappings", arguments: [scratch])
        let root = try LeakReportRunner.json([trace])
        let source = "analysis_mappings.c"
        let summary = root.object("summary").object("byPath")
        XCTAssertEqual(summary.object("private-anonymous").int("bytes"), 6 * 4096)
        XCTAssertEqual(summary.object("private-anonymous").int("blocks"), 4)
        XCTAssertEqual(summary.object("shared-anonymous").int("bytes"), 2 * 4096)
        XCTAssertEqual(summary.object("private-file").int("bytes"), 3 * 4096)
        XCTAssertEqual(summary.object("shared-file").int("bytes"), 4096)
        XCTAssertNil(summary["heap"] as? [String: Any])
        let mappings = root.objects("mappings")
        func mapped(_ marker: String) throws -> [[String: Any]] {
            let line = try Self.line(of: marker, in: source)
            return mappings.filter { $0.object("callsite").int("line") == line }
        }
        // 5 pages, pages 1 and 4 unmapped, page 2 replaced by a MAP_FIXED mapping.
        XCTAssertEqual(try mapped("@anon").map { $0.int("size") }, [4096, 4096])
        XCTAssertEqual(try mapped("@fixed").map { $0.int("size") }, [4096])
        XCTAssertEqual(try mapped("@grow").map { $0.int("size") }, [3 * 4096])
        XCTAssertEqual(try mapped("@shared").map { $0.string("kind") }, ["shared-anonymous"])
        XCTAssertEqual(try mapped("@privfile").map { $0.string("file") }, [scratch])
        XCTAssertEqual(try mapped("@sharedfile").map { $0.string("kind") }, ["shared-file"])
        XCTAssertEqual(try mapped("@sharedfile").map { $0.string("file") }, [scratch])
        XCTAssertEqual(mappings.count, 7)
    }

    func testCxxNamesAreDemangled() throws {
        let trace = try Self.traceOne("analysis_cxx")
        let root = try LeakReportRunner.json([trace])
        let widget = Self.group(root, function: "shapes::make_widget()")
        XCTAssertEqual(widget.int("blocks"), 3)
        XCTAssertEqual(widget.int("bytes"), 96)
        XCTAssertEqual(widget.object("callsite").int("line"), try Self.line(of: "@widget", in: "analysis_cxx.cpp"))
        XCTAssertEqual(widget.object("biggest").objects("stack").first?.string("function"), "operator new(unsigned long)")
        let array = Self.group(root, function: "long* shapes::make_array<long>(unsigned long)")
        XCTAssertEqual(array.int("bytes"), 128)
        XCTAssertEqual(array.object("callsite").int("line"), try Self.line(of: "@array", in: "analysis_cxx.cpp"))
    }

    /// Programs/cxx_containers.cpp: a vector, a string, a map and a shared_ptr leaked with their
    /// holder; each group's call site is fill()'s line that used the container (the library's
    /// headers and libstdc++ are part of the allocation), with the bytes the program's design
    /// and libstdc++'s layout give.
    func testCxxContainerCallSitesAreTheProgramsOwnLines() throws {
        let trace = try Self.traceOne("cxx_containers")
        let root = try LeakReportRunner.json([trace, "--show-reachable", "--top", "100"])
        let groups = root.objects("groups").filter { $0.object("callsite").string("function") == "fill()" }
        var byLine: [Int: [Int]] = [:]
        for group in groups {
            byLine[group.object("callsite").int("line") ?? 0] = [group.int("blocks") ?? 0, group.int("bytes") ?? 0]
        }
        func line(_ marker: String) throws -> Int { try Self.line(of: marker, in: "cxx_containers.cpp") }
        XCTAssertEqual(byLine, [try line("@holder"): [1, 24 + 32 + 48 + 16], try line("@vector"): [1, 512],
                                try line("@string"): [1, 201], try line("@map"): [5, 5 * 40], try line("@shared"): [1, 24]],
                       "\(root.objects("groups").map { $0.object("callsite") })")
        let callsites = root.objects("groups").compactMap { $0.object("callsite").string("file") }
        XCTAssertEqual(callsites.filter { $0.contains("/include/c++/") }, [])
    }

    /// Programs/rust_leaks.rs, built by the rustc on PATH (Debian's 1.63 in CI, whose standard
    /// library is legacy-mangled; 1.95 builds it v0-mangled): every leak's call site is the
    /// program's own function and line, not alloc::alloc::alloc or RawVec's growth.
    func testRustCallSitesAreTheProgramsOwnFunctions() throws {
        let directory = try TracedProgram.makeTraceDirectory()
        let program = directory.appendingPathComponent("rust_leaks").path
        let source = TracedProgram.programsDirectory.appendingPathComponent("rust_leaks.rs").path
        let compiled = try TracedProgram.run(executable: "/usr/bin/env", arguments: [
            "rustc", "-g", "-C", "opt-level=0", "--crate-name", "rust_leaks", "-o", program, source,
        ], environment: [:], timeout: 300)
        XCTAssertEqual(compiled.status, 0, "rustc (Scripts/setup.sh installs it): \(compiled.stderr)")
        let run = try TracedProgram.trace(program)
        XCTAssertEqual(run.status, 0, run.stderr)
        let trace = try XCTUnwrap(run.traces.first, run.stderr)
        let root = try LeakReportRunner.json([trace, "--show-reachable", "--top", "100"])
        func site(_ function: String) -> (bytes: Int?, blocks: Int?, line: Int?) {
            let group = Self.group(root, function: function)
            return (group.int("bytes"), group.int("blocks"), group.object("callsite").int("line"))
        }
        // make_list: two call sites, the first node's line and the loop's.
        let list = root.objects("groups").filter { $0.object("callsite").string("function") == "rust_leaks::make_list" }
            .map { [$0.object("callsite").int("line") ?? 0, $0.int("blocks") ?? 0, $0.int("bytes") ?? 0] }
        XCTAssertEqual(Set(list), [[try Self.line(of: "@list_first", in: "rust_leaks.rs"), 1, 72],
                                   [try Self.line(of: "@list_rest", in: "rust_leaks.rs"), 4, 4 * 72]])
        let buffer = site("rust_leaks::make_buffer")
        XCTAssertEqual(buffer.bytes, 512)
        XCTAssertEqual(buffer.line, try Self.line(of: "@buffer", in: "rust_leaks.rs"))
        let text = site("rust_leaks::make_text")
        XCTAssertEqual(text.bytes, 256)
        XCTAssertEqual(text.line, try Self.line(of: "@text", in: "rust_leaks.rs"))
        let collected = site("rust_leaks::main")
        XCTAssertEqual(collected.bytes, 80)
        XCTAssertEqual(collected.line, try Self.line(of: "@collect", in: "rust_leaks.rs"))
        let callsites = root.objects("groups").compactMap { $0.object("callsite").string("function") }
        XCTAssertEqual(callsites.filter { $0.hasPrefix("alloc::") || $0.hasPrefix("<alloc::") || $0.hasPrefix("_R") }, [])
    }

    func testStrippedBinaryIsGroupedByModuleOffset() throws {
        let trace = try Self.traceOne("analysis_leaks", flags: ["-s"], output: "analysis_leaks_stripped")
        let root = try LeakReportRunner.json([trace, "--top", "100"])
        // Without symbols the wrapper cannot be recognised: the call site is inside xmalloc, still
        // one group of exactly the ten list blocks, named module+offset.
        let tenBlocks = root.objects("groups").filter { $0.int("blocks") == 10 }
        XCTAssertEqual(tenBlocks.count, 1)
        let callsite = tenBlocks.first?.object("callsite") ?? [:]
        XCTAssertNil(callsite.string("function"))
        XCTAssertEqual(callsite.string("module").map { URL(fileURLWithPath: $0).lastPathComponent }, "analysis_leaks_stripped")
        XCTAssertEqual(tenBlocks.first?.string("name")?.hasPrefix("analysis_leaks_stripped+0x"), true)
        XCTAssertEqual(tenBlocks.first?.int("bytes"), 1000)
        XCTAssertEqual(root.objects("groups").filter { $0.int("bytes") == 200_000 }.count, 1)
    }

    func testBinaryChangedSinceTheTraceIsNotTrusted() throws {
        let executable = try TracedProgram.build("analysis_cxx", output: "analysis_cxx_rebuilt")
        let run = try TracedProgram.trace(executable)
        let trace = try XCTUnwrap(run.traces.first)
        // Rebuild the same path from the same source with other flags: another build-id.
        let source = TracedProgram.programsDirectory.appendingPathComponent("analysis_cxx.cpp").path
        let rebuild = try TracedProgram.run(executable: "/usr/bin/c++", arguments: ["-g", "-O1", "-DREBUILT=1", "-o", executable, source],
                                            environment: [:], timeout: 120)
        XCTAssertEqual(rebuild.status, 0, rebuild.stderr)
        let root = try LeakReportRunner.json([trace])
        let warnings = (root["warnings"] as? [String] ?? []).filter { $0.contains(executable) }
        XCTAssertEqual(warnings.count, 1, "\(root["warnings"] ?? [])")
        // Frames of the changed binary are module+offset; the three widgets still group together.
        let threeBlocks = root.objects("groups").filter { $0.int("blocks") == 3 }
        XCTAssertEqual(threeBlocks.count, 1)
        XCTAssertNil(threeBlocks.first?.object("callsite").string("function"))
        XCTAssertEqual(threeBlocks.first?.object("callsite").string("module"), executable)
        XCTAssertEqual(threeBlocks.first?.int("bytes"), 96)
    }

    func testMtraceExportAgreesWithGlibcScript() throws {
        let executable = try TracedProgram.build("analysis_leaks")
        let trace = try Self.traceOne("analysis_leaks")
        let export = try LeakReportRunner.run([trace, "--format", "mtrace"])
        XCTAssertEqual(export.status, 0, export.stderr)
        let exportPath = try temporaryFile(Array(export.stdout.utf8), name: "export.mtrace")
        // glibc's mtrace knows no suppressions: compare with every unfreed block.
        let root = try LeakReportRunner.json([trace, "--no-default-suppressions"])
        let byPath = root.object("summary").object("byPath")
        let blockBytes = ["heap", "mmap-threshold", "thread-arena", "unknown"]
            .compactMap { byPath.object($0).int("bytes") }.reduce(0, +)
        let blockCount = ["heap", "mmap-threshold", "thread-arena", "unknown"]
            .compactMap { byPath.object($0).int("blocks") }.reduce(0, +)
        for arguments in [[exportPath], [executable, exportPath]] {
            let script = try TracedProgram.run(executable: "/usr/bin/perl", arguments: ["/usr/bin/mtrace"] + arguments,
                                               environment: [:], timeout: 120)
            let unfreed = ReportTests.unfreedBytes(fromMtraceOutput: script.stdout)
            XCTAssertEqual(unfreed.bytes, UInt64(blockBytes), script.stdout)
            XCTAssertEqual(unfreed.blocks, blockCount, script.stdout)
        }
    }

    func testForkChildReportsInheritedBlocks() throws {
        let executable = try TracedProgram.build("forker")
        let run = try TracedProgram.trace(executable)
        XCTAssertEqual(run.status, 0, run.stderr)
        var child: [String: Any]?
        for trace in run.traces {
            let root = try LeakReportRunner.json([trace, "--top", "100"])
            if root.objects("groups").contains(where: { $0.object("callsite").string("function") == "child_leak" }) {
                child = root
            }
        }
        let root = try XCTUnwrap(child, "no trace has the child's leak: \(run.traces)")
        XCTAssertEqual(root.object("trace")["parentReplayed"] as? Bool, true)
        let childLeak = Self.group(root, function: "child_leak")
        XCTAssertEqual(childLeak.int("bytes"), 2222)
        XCTAssertEqual(childLeak.object("inherited").int("blocks"), 0)
        let parentLeak = Self.group(root, function: "parent_leak")
        XCTAssertEqual(parentLeak.int("bytes"), 1111)
        XCTAssertEqual(parentLeak.object("inherited").int("bytes"), 1111)
        // The 555-byte block was allocated by the parent and freed by the child: not unknown.
        XCTAssertEqual(root.object("summary").int("unknownFrees"), 0)
        XCTAssertEqual(root.objects("groups").filter { $0.int("bytes") == 555 }.count, 0)
    }

    func testSuppressionsAndFailOnLeakOnRealTrace() throws {
        let trace = try Self.traceOne("analysis_cxx")
        let suppressions = try temporaryFile(Array("leak:shapes::\nleak:dl-tls.c\n".utf8), name: "cxx.supp")
        let root = try LeakReportRunner.json([trace, "--suppressions", suppressions, "--no-default-suppressions"])
        XCTAssertEqual(root.objects("groups").filter { ($0.object("callsite").string("function") ?? "").contains("shapes::") }.count, 0)
        XCTAssertEqual(root.object("summary").objects("suppressions").first?.object("matched").int("bytes"), 96 + 128)
        let leaked = root.object("summary").object("leaked").int("bytes") ?? -1
        XCTAssertEqual(try LeakReportRunner.run([trace, "--suppressions", suppressions, "--no-default-suppressions",
                                                 "--fail-on-leak=\(leaked)"]).status, 0)
        XCTAssertEqual(try LeakReportRunner.run([trace, "--fail-on-leak"]).status, 3)
    }
}

extension CLIEndToEndTests {
    /// The built-in rules set aside the C runtime's own buffers: the stdout buffer printf
    /// allocates is suppressed by default and reported with --no-default-suppressions. (glibc's
    /// cleanup at exit frees it when it can run: it is not asked for here, as when other threads
    /// are still running at exit or the process dies of a signal.)
    func testBuiltInSuppressionsSetAsideTheStdioBuffer() throws {
        // prints, so stdout gets its buffer
        let trace = try Self.traceOne("paths", environment: ["LEAKTRACE_FREERES": "0"])
        let plain = try LeakReportRunner.json([trace, "--no-default-suppressions", "--top", "100"])
        let defaults = try LeakReportRunner.json([trace, "--top", "100"])
        let stdio = plain.objects("groups").filter { $0.object("callsite").string("function") == "_IO_file_doallocate" }
        XCTAssertEqual(stdio.count, 1, "the program prints, so stdout has a buffer")
        let bufferBytes = stdio.first?.int("bytes") ?? 0
        XCTAssertGreaterThan(bufferBytes, 0)
        XCTAssertEqual(defaults.objects("groups").filter { $0.object("callsite").string("function") == "_IO_file_doallocate" }.count, 0)
        let leakedPlain = plain.object("summary").object("leaked").int("bytes") ?? 0
        let leakedDefault = defaults.object("summary").object("leaked").int("bytes") ?? 0
        XCTAssertEqual(leakedPlain - leakedDefault, defaults.object("summary").object("suppressed").int("bytes"))
        XCTAssertGreaterThanOrEqual(defaults.object("summary").object("suppressed").int("bytes") ?? 0, bufferBytes)
    }
}

final class ReportDeterminismTests: XCTestCase {
    /// Eight stacks of one group tie for its biggest block: every run of leakreport (each with
    /// its own hash seed) shows the same one, the first allocated (caller_3, by the program's
    /// order, when the clock cannot tell them apart the lowest address).
    func testTiedBiggestBlocksAreShownTheSameEveryRun() throws {
        let trace = try CLIEndToEndTests.traceOne("tied_leaks")
        var outputs = Set<String>()
        var shownStacks = Set<String>()
        for _ in 0..<6 {
            let text = try LeakReportRunner.run([trace])
            XCTAssertEqual(text.status, 0)
            outputs.insert(text.stdout)
            let root = try LeakReportRunner.json([trace])
            let group = CLIEndToEndTests.group(root, function: "leaf")
            XCTAssertEqual(group.int("blocks"), 8)
            let frames = group.object("biggest").objects("stack").compactMap { $0.string("function") }
            shownStacks.insert(frames.joined(separator: " < "))
        }
        XCTAssertEqual(outputs.count, 1, "the text report differs between runs")
        XCTAssertEqual(shownStacks.count, 1, "the shown stack differs between runs: \(shownStacks)")
    }

    /// Grouped by stack, the eight stacks are eight groups that tie on bytes, blocks and name
    /// (leaf's call site): every run lists them in the same order, the trace's.
    func testGroupsThatTieAreListedTheSameEveryRun() throws {
        let trace = try CLIEndToEndTests.traceOne("tied_leaks")
        var orders = Set<[String]>()
        var sites = Set<String>()
        for _ in 0..<6 {
            let root = try LeakReportRunner.json([trace, "--group-by", "stack"])
            let groups = root.objects("groups").filter { $0.object("callsite").string("function") == "leaf" }
            XCTAssertEqual(groups.count, 8)
            orders.insert(groups.map { group in
                group.object("biggest").objects("stack").compactMap { $0.string("function") }.joined(separator: " < ")
            })
            sites.insert(try LeakReportRunner.run([trace, "--group-by", "stack", "--top", "20"]).stdout)
        }
        XCTAssertEqual(orders.count, 1, "the order of tied groups differs between runs: \(orders)")
        XCTAssertEqual(sites.count, 1, "the text report (its allocation sites) differs between runs")
    }
}
