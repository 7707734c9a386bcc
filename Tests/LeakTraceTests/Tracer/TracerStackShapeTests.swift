import Foundation
import XCTest
import TraceFormat

/// The capture path on hard stack shapes (issue 10): Programs/many_paths.c reaches two
/// allocation sites through 64 outer call paths each at the same stack depth (one stack-cache
/// key, 64 stacks), recurses 5 to 80 frames deep through two functions in varying order, and
/// does both on the main thread and two more threads at once. It leaks an exactly known set of
/// blocks, each identified by its size, on stacks the program's design names frame by frame.
/// The same program is traced in the three unwind modes; every run must report exactly the
/// designed leaks on exactly the designed stacks, and the three must agree frame for frame.
final class TracerStackShapeTests: XCTestCase {

    /// The most frames recorded per stack (LEAKTRACE_DEPTH, passed explicitly): the deepest
    /// descents are longer, so their stacks are cut there, the same way in every mode.
    static let depthLimit = 64

    // MARK: - the program's design (Programs/many_paths.c)

    struct ExpectedStack {
        var frames: [String]      // function names, innermost first, up to the depth limit
        var truncated: Bool       // the program's own frames went past the depth limit
        var blocks = 0
        var bytes = 0
    }

    static let contexts = ["main", "thread_one", "thread_two"]

    private static func xorshift(_ s: inout UInt64) -> UInt64 {
        s ^= s << 13
        s ^= s >> 7
        s ^= s << 17
        return s
    }

    /// Every leaking stack of the design, keyed by its frames, with its blocks and bytes.
    /// Stacks cut at the depth limit lose the frame that names the thread, so the same cut
    /// stack of the three contexts is one stack holding three blocks.
    static func expectedLeaks() -> [String: ExpectedStack] {
        var expected: [String: ExpectedStack] = [:]
        func add(_ programFrames: [String], size: Int, blocks: Int) {
            let truncated = programFrames.count > depthLimit
            let frames = Array(programFrames.prefix(depthLimit))
            let key = frames.joined(separator: " < ")
            var entry = expected[key] ?? ExpectedStack(frames: frames, truncated: truncated)
            entry.blocks += blocks
            entry.bytes += blocks * size
            expected[key] = entry
        }
        for (context, entry) in contexts.enumerated() {
            let base = context * 20000
            for path in 0..<64 {
                let outer = ["P3_\((path >> 4) & 3)", "P2_\((path >> 2) & 3)", "P1_\(path & 3)",
                             "enter", "paths_phase", "run_all", entry]
                add(["site_malloc"] + outer, size: base + 1000 + path, blocks: 1 + path % 3)
                add(["site_calloc"] + outer, size: base + 3000 + path, blocks: 1)
            }
            for j in 0..<16 {
                let depth = 5 + 5 * j
                var seed = 0x9E37_79B9_7F4A_7C15 &* UInt64(j + 1)
                let pattern = [xorshift(&seed), xorshift(&seed)]
                let levels = (0..<depth).map { level in
                    (pattern[level / 64] >> UInt64(level % 64)) & 1 == 1 ? "rec_b" : "rec_a"
                }
                add(["rec_leaf"] + levels.reversed() + ["descend", "recursion_phase", "run_all", entry],
                    size: base + 5000 + j, blocks: 1)
            }
        }
        return expected
    }

    // MARK: - one traced run, read through the report

    struct LeakingStack {
        var functions: [String]   // innermost first, inlined frames left out
        var offsets: [String]     // module+offset of each of those frames
        var blocks: Int
        var bytes: Int
        var smallest: Int
        var largest: Int
    }

    struct Run {
        var mode: String
        var trace: DecodedTrace
        var tracePath: String
        var leakedBlocks: Int
        var leakedBytes: Int
        var stacks: [LeakingStack]
    }

    private func traceRun(mode: String) throws -> Run {
        let exe = try TracedProgram.build("many_paths", flags: ["-O2"])
        let run = try TracedProgram.trace(exe, environment: ["LEAKTRACE_UNWIND": mode,
                                                              "LEAKTRACE_DEPTH": String(Self.depthLimit)])
        XCTAssertEqual(run.status, 0, "\(mode): \(run.stderr)")
        XCTAssertEqual(run.stdout, "ok 621\n", mode)
        XCTAssertEqual(run.traces.count, 1, mode)
        guard let path = run.traces.first else { throw TestFailure("\(mode): no trace") }
        let trace = try DecodedTrace(path: path)
        XCTAssertTrue(trace.isComplete, "\(mode): \(String(describing: trace.endState))")

        let root = try LeakReportRunner.json([path, "--group-by", "stack", "--top", "100000"])
        let leaked = root.object("summary").object("leaked")
        var stacks: [LeakingStack] = []
        for group in root.objects("groups") {
            let frames = group.object("biggest").objects("stack").filter { ($0["inlined"] as? Bool) != true }
            stacks.append(LeakingStack(
                functions: frames.map { $0.string("function") ?? "?" },
                offsets: frames.map { frame in
                    let module = (frame.string("module") ?? "?").split(separator: "/").last.map(String.init) ?? "?"
                    return "\(module)+\(frame.string("moduleOffset") ?? frame.string("address") ?? "?")"
                },
                blocks: group.int("blocks") ?? -1, bytes: group.int("bytes") ?? -1,
                smallest: group.int("smallest") ?? -1, largest: group.int("largest") ?? -1))
        }
        XCTAssertEqual(stacks.count, root.object("summary").int("groups"), "\(mode): every group listed")
        return Run(mode: mode, trace: trace, tracePath: path, leakedBlocks: leaked.int("blocks") ?? -1,
                   leakedBytes: leaked.int("bytes") ?? -1, stacks: stacks)
    }

    /// Checks one run against the design: totals, one reported stack per designed stack with
    /// its blocks and bytes, and each stack's functions in the designed order.
    private func checkAgainstDesign(_ run: Run, file: StaticString = #filePath, line: UInt = #line) {
        let expected = Self.expectedLeaks()
        let mode = run.mode
        XCTAssertEqual(expected.count, 3 * 128 + 3 * 11 + 5, "the design itself: 11 of the 16 descents fit in 64 frames",
                       file: file, line: line)
        XCTAssertEqual(run.leakedBlocks, expected.values.reduce(0) { $0 + $1.blocks }, "\(mode): leaked blocks", file: file, line: line)
        XCTAssertEqual(run.leakedBlocks, 621, "\(mode): leaked blocks", file: file, line: line)
        XCTAssertEqual(run.leakedBytes, expected.values.reduce(0) { $0 + $1.bytes }, "\(mode): leaked bytes", file: file, line: line)
        XCTAssertEqual(run.stacks.count, expected.count, "\(mode): distinct leaking stacks", file: file, line: line)

        let lengths = Set(expected.values.map(\.frames.count)).sorted()
        var matched = Set<String>()
        var failures: [String] = []
        for stack in run.stacks {
            XCTAssertLessThanOrEqual(stack.functions.count, Self.depthLimit, "\(mode): \(stack.functions)", file: file, line: line)
            // The designed stack this one starts with. Only program frames are designed: what
            // lies beyond main or a thread's entry function (libc's start frames) is not.
            let candidates = lengths.compactMap { length -> (String, ExpectedStack)? in
                guard stack.functions.count >= length else { return nil }
                let key = stack.functions.prefix(length).joined(separator: " < ")
                return expected[key].map { (key, $0) }
            }
            guard candidates.count == 1, let match = candidates.first else {
                failures.append("no designed stack matches \(stack.functions) (\(stack.blocks) blocks, \(stack.smallest)-\(stack.largest) bytes)")
                continue
            }
            let (key, design) = match
            if design.truncated && stack.functions.count != Self.depthLimit {
                failures.append("cut stack has \(stack.functions.count) frames, not \(Self.depthLimit): \(stack.functions)")
            }
            if !matched.insert(key).inserted { failures.append("two reported stacks for \(key)") }
            if stack.blocks != design.blocks || stack.bytes != design.bytes {
                failures.append("\(key): \(stack.blocks) blocks, \(stack.bytes) bytes; designed \(design.blocks), \(design.bytes)")
            }
        }
        XCTAssertEqual(matched.count, expected.count, "\(mode): designed stacks found", file: file, line: line)
        XCTAssertEqual(failures, [], "\(mode): \(failures.prefix(5).joined(separator: "\n"))", file: file, line: line)
    }

    // MARK: - tests

    func testManyPathsPerSiteAndDeepRecursionGiveTheDesignedLeaksInEveryUnwindMode() throws {
        let verify = try traceRun(mode: "verify")
        let note = verify.trace.notes.first { $0.hasPrefix("unwind-verify") } ?? "no unwind-verify note"
        XCTAssertEqual(verify.trace.unwindMismatches, 0, "cache hits that disagreed with libunwind: \(note)")
        let cached = try traceRun(mode: "cached")
        let libunwind = try traceRun(mode: "libunwind")
        for run in [verify, cached, libunwind] { checkAgainstDesign(run) }

        // The three modes record the same stacks, return address for return address (as
        // module offsets: each run has its own load addresses), with the same blocks.
        func byFrames(_ run: Run) -> [String: [Int]] {
            Dictionary(run.stacks.map { ($0.offsets.joined(separator: " "), [$0.blocks, $0.bytes, $0.smallest, $0.largest]) },
                       uniquingKeysWith: { a, _ in a })
        }
        let reference = byFrames(libunwind)
        XCTAssertEqual(reference.count, libunwind.stacks.count)
        for run in [verify, cached] {
            let mine = byFrames(run)
            XCTAssertEqual(Set(mine.keys).subtracting(reference.keys).count, 0, "\(run.mode): stacks libunwind did not record")
            XCTAssertEqual(Set(reference.keys).subtracting(mine.keys).count, 0, "\(run.mode): stacks libunwind recorded and \(run.mode) did not")
            XCTAssertTrue(mine == reference, "\(run.mode): blocks per stack differ from libunwind's")
        }

        // The trace itself, without the report: replaying it leaves exactly the designed
        // blocks live (identified by size), on as many distinct stack ids as designed stacks.
        let expected = Self.expectedLeaks()
        var designedSizes = Set<UInt64>()
        for context in 0..<3 {
            let base = UInt64(context * 20000)
            for path in 0..<64 as Range<UInt64> { designedSizes.insert(base + 1000 + path); designedSizes.insert(base + 3000 + path) }
            for j in 0..<16 as Range<UInt64> { designedSizes.insert(base + 5000 + j) }
        }
        for run in [verify, cached, libunwind] {
            var live: [UInt64: (size: UInt64, stack: UInt32)] = [:]
            for (record, _) in run.trace.records {
                switch record {
                case let .alloc(_, _, address, size, stack): live[address] = (size, stack)
                case let .free(address), let .reallocRelease(address): live.removeValue(forKey: address)
                default: break
                }
            }
            let designed = live.values.filter { designedSizes.contains($0.size) }
            XCTAssertEqual(designed.count, 621, run.mode)
            XCTAssertEqual(Set(designed.map(\.stack)).count, expected.count, "\(run.mode): distinct leaking stack ids")
        }

        // An independent symbolizer (addr2line on the executable) agrees with the report on
        // a sample: paths of both sites in each context, a descent of 40 levels and one cut at
        // the depth limit. Compared: the program's own frames (up to main or the thread's entry).
        let trace = cached.trace
        var checked = 0
        for size: UInt64 in [1037, 23021, 43063, 45007, 5015] {
            guard let block = trace.allocs.last(where: { $0.size == size }),
                  let report = cached.stacks.first(where: { $0.smallest == Int(size) || $0.largest == Int(size) }) else {
                XCTFail("no allocation or reported stack of \(size) bytes")
                continue
            }
            let programFrames = report.functions.firstIndex(where: Self.contexts.contains).map { $0 + 1 } ?? report.functions.count
            let names = trace.functionNames(ofStack: block.stack, limit: Self.depthLimit)
            XCTAssertEqual(Array(names.prefix(programFrames)), Array(report.functions.prefix(programFrames)), "\(size) bytes")
            XCTAssertGreaterThanOrEqual(programFrames, 8, "\(size) bytes: \(report.functions)")
            checked += 1
        }
        XCTAssertEqual(checked, 5)
    }
}
