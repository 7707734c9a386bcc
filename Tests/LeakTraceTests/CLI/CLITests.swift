import Foundation
import XCTest
import TraceFormat

final class CLITests: XCTestCase {
    // MARK: Synthetic traces

    /// The program's module: /usr/bin/sample-app loaded at 0x400000 (the file does not exist,
    /// so frames are module+offset).
    static let sampleModules = TraceRecord.modules(generation: 1, modules: [
        Module(path: "/usr/bin/sample-app", bias: 0x400000, buildID: [1, 2, 3],
               segments: [ModuleSegment(start: 0x400000, size: 0x10000, flags: 5)]),
    ])

    /// Stacks: 1 = [0x401000], 2 = [0x402000 <- 0x401000].
    static func sampleRecords(leakedSizes: [UInt64] = [100, 200], time: UInt64 = 0) -> [TraceRecord] {
        var records: [TraceRecord] = [
            .thread(tid: 7), .time(microseconds: time), sampleModules,
            .stack(id: 1, parent: 0, ip: 0x401000), .stack(id: 2, parent: 1, ip: 0x402000),
            .alloc(function: .malloc, path: .heap, address: 0x10000, size: 64, stack: 1),
            .free(address: 0x10000),
        ]
        for (index, size) in leakedSizes.enumerated() {
            records.append(.alloc(function: .malloc, path: .heap, address: 0x20000 + UInt64(index) * 0x1000,
                                  size: size, stack: index % 2 == 0 ? 1 : 2))
        }
        return records
    }

    static let sampleEnd = TraceRecord.end(TraceEnd(allocs: 3, frees: 1, reallocs: 0, mappings: 0, stacks: 2, chunks: 1, untraced: 0))

    static func writeTrace(_ chunks: [[TraceRecord]], header: TraceHeader = TraceBuilder.sampleHeader,
                           name: String = "trace.lt") throws -> (path: String, builder: TraceBuilder) {
        var builder = TraceBuilder(header: header)
        for chunk in chunks { builder.appendChunk(chunk) }
        return (try temporaryFile(builder.bytes, name: name), builder)
    }

    func testJSONReportOfSyntheticTrace() throws {
        let (path, _) = try Self.writeTrace([Self.sampleRecords() + [Self.sampleEnd]])
        let root = try LeakReportRunner.json([path])
        XCTAssertEqual(root.int("schemaVersion"), 1)
        let summary = root.object("summary")
        XCTAssertEqual(summary.object("leaked").int("bytes"), 300)
        XCTAssertEqual(summary.object("leaked").int("blocks"), 2)
        XCTAssertEqual(summary.int("peakLiveBytes"), 300)
        XCTAssertEqual(root.object("trace").object("outcome")["isComplete"] as? Bool, true)
        XCTAssertEqual(root.objects("groups").map { $0.int("bytes") }, [200, 100])
        XCTAssertEqual(root.objects("groups").first?.object("callsite").string("address"), "0x402000")
    }

    /// The text report's call counts by call site: stack 1 allocated twice, stack 2 once.
    func testAllocationCallsBySiteInTheTextReport() throws {
        let (path, _) = try Self.writeTrace([Self.sampleRecords() + [Self.sampleEnd]])
        let text = try LeakReportRunner.run([path]).stdout
        let section = text.components(separatedBy: "Most allocation calls by callsite").last ?? ""
        let rows = section.split(separator: "\n").filter { $0.hasPrefix("  #") }
            .map { $0.split(separator: " ", omittingEmptySubsequences: true).prefix(3).joined(separator: " ") }
        XCTAssertEqual(rows, ["#1 2 calls", "#2 1 call"], text)
    }

    func testFailOnLeakExitStatus() throws {
        let (path, _) = try Self.writeTrace([Self.sampleRecords() + [Self.sampleEnd]])
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-leak"]).status, 3)
        XCTAssertEqual(try LeakReportRunner.run(["--fail-on-leak", path]).status, 3, "bare flag before the trace")
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-leak=299"]).status, 3)
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-leak=300"]).status, 0)
        XCTAssertEqual(try LeakReportRunner.run([path, "--fail-on-leak=1K"]).status, 0)
        XCTAssertEqual(try LeakReportRunner.run([path]).status, 0)
        // Suppressed leaks do not count.
        let suppressions = try temporaryFile(Array("leak:sample-app\n".utf8), name: "all.supp")
        let suppressed = try LeakReportRunner.run([path, "--fail-on-leak", "--suppressions", suppressions])
        XCTAssertEqual(suppressed.status, 0, suppressed.stdout)
        XCTAssertTrue(suppressed.stdout.contains("suppressed            300 B in 2 blocks"), suppressed.stdout)
    }

    func testBadInputIsOneLineAndStatusTwo() throws {
        let directory = try temporaryDirectory()
        let empty = try temporaryFile([], name: "empty.lt")
        let foreign = try temporaryFile(Array("hello, this is not a trace\n".utf8), name: "foreign.lt")
        let (valid, _) = try Self.writeTrace([Self.sampleRecords() + [Self.sampleEnd]])
        var newer = TraceBuilder(header: TraceBuilder.sampleHeader, version: 9)
        newer.appendChunk(Self.sampleRecords())
        let newerPath = try temporaryFile(newer.bytes, name: "newer.lt")
        let badSuppressions = try temporaryFile(Array("race:foo\n".utf8), name: "bad.supp")
        let cases: [[String]] = [
            ["/nonexistent/trace.lt"], [directory], [empty], [foreign], [newerPath], ["/dev/null"],
            [], ["--bogus", valid], [valid, "--format", "xml"], [valid, "--top", "many"], [valid, "--top", "-3"],
            [valid, "--group-by", "color"], [valid, "--at", "yesterday"], [valid, "--min-bytes", "lots"],
            [valid, "--fail-on-leak=much"], [valid, "--suppressions", badSuppressions],
            [valid, "--suppressions", "/nonexistent.supp"], ["--format", "json", valid, valid],
            ["dump"], ["dump", empty],
        ]
        for arguments in cases {
            let result = try LeakReportRunner.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.terminatedBySignal, "\(arguments)")
            let lines = result.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("leakreport: error: "), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(arguments)")
        }
        XCTAssertEqual(try LeakReportRunner.run([empty]).stderr.contains("empty"), true)
    }

    func testTruncatedTraceStillReports() throws {
        let (_, builder) = try Self.writeTrace([Self.sampleRecords(leakedSizes: [100]),
                                                Self.sampleRecords(leakedSizes: [5000, 7000]) + [Self.sampleEnd]])
        // Cut the file in the middle of the second chunk.
        let cutAt = builder.chunkOffsets[1] + 20
        let cut = try temporaryFile(Array(builder.bytes[..<cutAt]), name: "cut.lt")
        let text = try LeakReportRunner.run([cut])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("TRACE INCOMPLETE: reading stopped at byte"), text.stdout)
        let root = try LeakReportRunner.json([cut])
        XCTAssertEqual(root.object("trace").object("outcome")["isComplete"] as? Bool, false)
        XCTAssertEqual(root.object("summary").object("leaked").int("bytes"), 100)
        // Garbage in place of the second chunk's records: same outcome, never a crash.
        var damaged = builder.bytes
        for index in (builder.chunkOffsets[1] + 16)..<(builder.chunkOffsets[1] + 24) { damaged[index] = 0x3F }
        let damagedPath = try temporaryFile(damaged, name: "damaged.lt")
        let damagedReport = try LeakReportRunner.run([damagedPath])
        XCTAssertEqual(damagedReport.status, 0, damagedReport.stderr)
        XCTAssertTrue(damagedReport.stdout.contains("TRACE INCOMPLETE"), damagedReport.stdout)
    }

    func testRandomDamageNeverCrashes() throws {
        let (_, builder) = try Self.writeTrace([Self.sampleRecords(), Self.sampleRecords(leakedSizes: [1, 2, 3]) + [Self.sampleEnd]])
        var generator = SeededGenerator(seed: 99)
        let directory = try temporaryDirectory()
        for round in 0..<24 {
            var bytes = builder.bytes
            for _ in 0..<(1 + round % 4) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[index] = UInt8.random(in: 0...255, using: &generator)
            }
            if round % 5 == 0 { bytes = Array(bytes[..<Int.random(in: 1..<bytes.count, using: &generator)]) }
            let path = directory + "/mutant\(round).lt"
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            for format in ["text", "json", "mtrace", "folded"] {
                let result = try LeakReportRunner.run([path, "--format", format], timeout: 30)
                XCTAssertFalse(result.terminatedBySignal, "round \(round) \(format)")
                XCTAssertTrue(result.status == 0 || result.status == 2, "round \(round) \(format): \(result.status) \(result.stderr)")
            }
        }
    }

    func testAtTimeAndMark() throws {
        let records: [TraceRecord] = [
            .thread(tid: 1), .time(microseconds: 1_000_000), .stack(id: 1, parent: 0, ip: 0x401000),
            .alloc(function: .malloc, path: .heap, address: 0x1000, size: 10, stack: 1),
            .time(microseconds: 2_000_000),
            .alloc(function: .malloc, path: .heap, address: 0x2000, size: 20, stack: 1),
            .mark(name: "checkpoint", source: 0),
            .free(address: 0x1000),
            .time(microseconds: 3_000_000),
            .alloc(function: .malloc, path: .heap, address: 0x3000, size: 40, stack: 1),
            Self.sampleEnd,
        ]
        let (path, _) = try Self.writeTrace([records])
        func leaked(_ arguments: [String]) throws -> Int? {
            try LeakReportRunner.json([path] + arguments).object("summary").object("leaked").int("bytes")
        }
        XCTAssertEqual(try leaked([]), 60)
        XCTAssertEqual(try leaked(["--at", "1.5s"]), 10)
        XCTAssertEqual(try leaked(["--at", "2000ms"]), 20)
        XCTAssertEqual(try leaked(["--at", "mark:checkpoint"]), 30)
        let root = try LeakReportRunner.json([path, "--at", "1.5s"])
        XCTAssertEqual(root.object("trace").object("outcome").int("replayedUntilUs"), 1_000_000)
    }

    func testDumpPrintsHeaderRecordsAndEnd() throws {
        let (path, _) = try Self.writeTrace([Self.sampleRecords(leakedSizes: [100]) + [Self.sampleEnd]])
        let result = try LeakReportRunner.run(["dump", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "format-version: 1")
        XCTAssertTrue(lines.contains("program: \"/usr/bin/sample-app\""), result.stdout)
        let records = Self.sampleRecords(leakedSizes: [100]) + [Self.sampleEnd]
        XCTAssertEqual(Array(lines.suffix(records.count + 1).dropLast()), records.map(\.dumpLine))
        XCTAssertEqual(lines.last, "# complete: 3 allocs, 1 frees, 0 reallocs, 0 mapping calls, 2 stacks, 1 chunks, 0 untraced")
    }

    func testInfoCountsRecords() throws {
        let (path, _) = try Self.writeTrace([Self.sampleRecords(time: 70), Self.sampleRecords(leakedSizes: [9], time: 90) + [Self.sampleEnd]])
        let result = try LeakReportRunner.run(["info", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = Set(result.stdout.split(separator: "\n").map(String.init))
        // 3 + 2 ALLOC and 1 + 1 FREE records.
        for expected in ["complete yes", "calls 7", "allocs 5", "frees 2", "reallocs 0", "duration-us 90",
                         "threads 1", "chunks 2", "module-snapshots 2"] {
            XCTAssertTrue(lines.contains(expected), "\(expected) in \(result.stdout)")
        }
        XCTAssertEqual(try LeakReportRunner.run(["info", "/nonexistent.lt"]).status, 2)
    }

    func testForkChildJoinsParentTrace() throws {
        let directory = try temporaryDirectory()
        let parentPath = directory + "/parent.lt"
        var parent = TraceBuilder()
        parent.appendChunk([.thread(tid: 1), .time(microseconds: 0), .stack(id: 1, parent: 0, ip: 0x401000),
                            .alloc(function: .malloc, path: .heap, address: 0x1000, size: 11, stack: 1),
                            .alloc(function: .malloc, path: .heap, address: 0x2000, size: 22, stack: 1)])
        let forkOffset = parent.appendChunk([.thread(tid: 1), .time(microseconds: 5),
                                             .alloc(function: .malloc, path: .heap, address: 0x3000, size: 33, stack: 1)])
        XCTAssertTrue(FileManager.default.createFile(atPath: parentPath, contents: Data(parent.bytes)))
        var header = TraceBuilder.sampleHeader
        header.parentTrace = parentPath
        header.parentForkOffset = UInt64(forkOffset)
        // The child's stack 1 is another place: ids are per trace.
        let (childPath, _) = try Self.writeTrace([[.thread(tid: 2), .time(microseconds: 0), .stack(id: 1, parent: 0, ip: 0x409000),
                                                   .free(address: 0x2000),
                                                   .alloc(function: .malloc, path: .heap, address: 0x4000, size: 44, stack: 1)]],
                                                 header: header, name: "child.lt")
        let root = try LeakReportRunner.json([childPath])
        let summary = root.object("summary")
        XCTAssertEqual(summary.object("leaked").int("bytes"), 55)
        XCTAssertEqual(summary.object("inherited").int("bytes"), 11)
        XCTAssertEqual(summary.int("unknownFrees"), 0)
        let groups = root.objects("groups")
        XCTAssertEqual(groups.map { $0.object("callsite").string("address") }, ["0x409000", "0x401000"])
        XCTAssertEqual(groups.map { $0.object("inherited").int("bytes") }, [0, 11])
        XCTAssertEqual(root.object("trace")["parentReplayed"] as? Bool, true)

        // Without the parent file the child is still reported, with a warning.
        try FileManager.default.removeItem(atPath: parentPath)
        let alone = try LeakReportRunner.json([childPath])
        XCTAssertEqual(alone.object("summary").object("leaked").int("bytes"), 44)
        XCTAssertEqual(alone.object("summary").int("unknownFrees"), 1)
        XCTAssertEqual((alone["warnings"] as? [String])?.first?.hasPrefix("parent trace cannot be read"), true)
    }

    func testFoldedAndMtraceFormats() throws {
        let (path, _) = try Self.writeTrace([Self.sampleRecords() + [Self.sampleEnd]])
        let folded = try LeakReportRunner.run([path, "--format", "folded"])
        XCTAssertEqual(folded.stdout, "sample-app+0x1000;sample-app+0x2000 200\nsample-app+0x1000 100\n")
        let mtrace = try LeakReportRunner.run([path, "--format", "mtrace"])
        XCTAssertEqual(mtrace.stdout, """
            = Start
            @ /usr/bin/sample-app:[0x1000] + 0x10000 0x40
            @ /usr/bin/sample-app:[0x1000] - 0x10000
            @ /usr/bin/sample-app:[0x1000] + 0x20000 0x64
            @ /usr/bin/sample-app:[0x2000] + 0x21000 0xc8
            = End

            """)
    }
}
