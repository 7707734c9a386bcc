import Foundation
import XCTest
import TraceFormat
import LiveSet
import Symbolization
import LeakAnalysis
@testable import Reports

final class ReportTests: XCTestCase {
    private var stacks = StackTrie()
    private var symbolizer = TableSymbolizer()
    private var replay = Replayer(header: TraceHeader())

    override func setUp() {
        stacks = StackTrie()
        symbolizer = TableSymbolizer()
        symbolizer.define(0x2100, "make_node", file: "tree.c", line: 10)
        symbolizer.define(0x2300, "main", file: "main.c", line: 5)
        symbolizer.table[0x2200] = [
            SymbolizedFrame(address: 0x2200, module: "/app", moduleOffset: 0x1200, function: "inline_helper",
                          file: "h.h", line: 2, isInlined: true),
            SymbolizedFrame(address: 0x2200, module: "/app", moduleOffset: 0x1200, function: "outer;fn",
                          file: "o.c", line: 9),
        ]
        var header = TraceHeader()
        header.pageSize = 4096
        replay = Replayer(header: header)
    }

    private func makeReport(collectStacks: Bool = false) -> LeakReport {
        var options = AnalysisOptions()
        options.collectStacks = collectStacks
        let facts = TraceFacts(path: "/tmp/t.lt", header: TraceHeader(),
                               outcome: ReadingOutcome(isComplete: false, stoppedAtOffset: 812, stopReason: "file ends inside a chunk"),
                               replay: replay, parentReplayed: false)
        return LeakAnalyzer(options: options).analyze(replay: replay, stacks: stacks, modules: SingleModule(),
                                                      symbolizer: symbolizer, facts: facts, warnings: ["w1"])
    }

    private func populate() {
        let nodeStack = stacks.intern(frames: [0x2100, 0x2300])
        let inlineStack = stacks.intern(frames: [0x2200, 0x2300])
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x5555_0000_1000, size: 4000, stack: nodeStack), tid: 1, time: 1_000)
        replay.apply(.alloc(function: .calloc, path: .threadArena, address: 0x7fff_0000_2000, size: 96, stack: nodeStack), tid: 2, time: 2_000)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x5555_0000_3000, size: 10, stack: inlineStack), tid: 1, time: 3_000)
        replay.apply(.free(address: 0xdead0), tid: 1, time: 4_000)
    }

    func testJSONHasExactValues() throws {
        populate()
        let text = try JSONDocument.render(makeReport())
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(root["schemaVersion"] as? Int, 1)
        XCTAssertEqual(root["groupBy"] as? String, "callsite")
        let trace = try XCTUnwrap(root["trace"] as? [String: Any])
        let outcome = try XCTUnwrap(trace["outcome"] as? [String: Any])
        XCTAssertEqual(outcome["isComplete"] as? Bool, false)
        XCTAssertEqual(outcome["stoppedAtOffset"] as? Int, 812)
        let summary = try XCTUnwrap(root["summary"] as? [String: Any])
        XCTAssertEqual((summary["leaked"] as? [String: Any])?["bytes"] as? Int, 4106)
        XCTAssertEqual((summary["leaked"] as? [String: Any])?["blocks"] as? Int, 3)
        let byPath = try XCTUnwrap(summary["byPath"] as? [String: [String: Int]])
        XCTAssertEqual(byPath, ["heap": ["blocks": 2, "bytes": 4010], "thread-arena": ["blocks": 1, "bytes": 96]])
        XCTAssertEqual(summary["unknownFrees"] as? Int, 1)
        let example = try XCTUnwrap((summary["unknownFreeExamples"] as? [[String: Any]])?.first)
        XCTAssertEqual(example["address"] as? String, "0xdead0")
        XCTAssertEqual(example["timeUs"] as? Int, 4000)
        let groups = try XCTUnwrap(root["groups"] as? [[String: Any]])
        XCTAssertEqual(groups.count, 2)
        XCTAssertEqual(groups[0]["name"] as? String, "make_node (tree.c:10)")
        XCTAssertEqual(groups[0]["bytes"] as? Int, 4096)
        XCTAssertEqual(groups[0]["smallest"] as? Int, 96)
        XCTAssertEqual(groups[0]["largest"] as? Int, 4000)
        XCTAssertEqual(groups[0]["firstAllocationUs"] as? Int, 1000)
        XCTAssertEqual(groups[0]["lastAllocationUs"] as? Int, 2000)
        let callsite = try XCTUnwrap(groups[0]["callsite"] as? [String: Any])
        XCTAssertEqual(callsite["function"] as? String, "make_node")
        XCTAssertEqual(callsite["file"] as? String, "tree.c")
        XCTAssertEqual(callsite["line"] as? Int, 10)
        XCTAssertEqual(callsite["moduleOffset"] as? String, "0x1100")
        let biggest = try XCTUnwrap(groups[0]["biggest"] as? [String: Any])
        XCTAssertEqual(biggest["address"] as? String, "0x555500001000")
        XCTAssertEqual((biggest["stack"] as? [[String: Any]])?.compactMap { $0["function"] as? String }, ["make_node", "main"])
        // The inline frame is the call site of the second group and is marked.
        let second = try XCTUnwrap(groups[1]["callsite"] as? [String: Any])
        XCTAssertEqual(second["function"] as? String, "inline_helper")
        XCTAssertEqual(second["inlined"] as? Bool, true)
        XCTAssertEqual(root["warnings"] as? [String], ["w1"])
    }

    func testTextReportSaysIncompleteAndShowsStacks() {
        populate()
        let text = TextReport().render(makeReport())
        XCTAssertTrue(text.contains("TRACE INCOMPLETE: reading stopped at byte 812 (file ends inside a chunk)"), text)
        XCTAssertTrue(text.contains("#1  4.00 KiB in 2 blocks  make_node (tree.c:10)"), text)
        XCTAssertTrue(text.contains("      #0 [inlined] inline_helper (h.h:2)\n      #1 outer;fn (o.c:9)\n      #2 main (main.c:5)"), text)
        XCTAssertTrue(text.contains("unknown frees"), text)
        XCTAssertFalse(text.contains("\u{1B}["), "no colour unless asked")
        var coloured = TextReportOptions()
        coloured.color = true
        XCTAssertTrue(TextReport(options: coloured).render(makeReport()).contains("\u{1B}[1m"))
    }

    func testTextReportListsMappingsBreakGrowthAndThreshold() {
        let site = stacks.intern(frames: [0x2100, 0x2300])
        replay.apply(.mmap(addressArgument: 0, length: 8192, prot: 3, flags: 0x01, fd: 4, offset: 0,
                           result: 0x7f00_0000_0000, errno: 0, path: "/var/db/cache", stack: site), tid: 1, time: 10)
        replay.apply(.sbrk(increment: 12288, result: 0x9000_0000, breakAfter: 0x9000_3000, stack: site), tid: 1, time: 20)
        replay.apply(.alloc(function: .malloc, path: .mmapThreshold, address: 0x7e00_0000_0000, size: 1_000_000, stack: site), tid: 1, time: 30)
        replay.apply(.free(address: 0x7e00_0000_0000), tid: 1, time: 2_000_000)
        let text = TextReport().render(makeReport())
        XCTAssertTrue(text.contains("Direct mappings still mapped\n  0x7f0000000000  8.00 KiB   shared-file /var/db/cache  make_node (tree.c:10)\n"), text)
        XCTAssertTrue(text.contains("Program break moved by the program (brk/sbrk)\n  12.0 KiB     in 1 call  make_node (tree.c:10)\n"), text)
        XCTAssertTrue(text.contains("    2.000s  128.0 KiB -> 980.0 KiB  free of a 1000000-byte mmapped block (chunk 1003520 bytes)\n"), text)
        XCTAssertTrue(text.contains("    shared file mappings          8.00 KiB in 1 block\n"), text)
        XCTAssertTrue(text.contains("    brk growth                    12.0 KiB\n"), text)
    }

    func testRandomRecordsNeverTrapAndTotalsStayExact() throws {
        var generator = SeededGenerator(seed: 7)
        func pick(_ values: [UInt64]) -> UInt64 { values[Int(generator.next() % UInt64(values.count))] }
        let addresses: [UInt64] = [0x1000, 0x1010, 0x2000, 0x7fff_ffff_f000, .max, .max - 4095, 1, 0]
        let sizes: [UInt64] = [0, 1, 24, 200_000, 1 << 32, UInt64(UInt32.max), .max, .max / 2]
        let stack = stacks.intern(frames: [0x2100, 0x2300])
        for step in 0..<20_000 {
            let time = UInt64(step) * 97
            let record: TraceRecord
            switch generator.next() % 9 {
            case 0, 1:
                record = .alloc(function: .malloc, path: AllocPath(rawValue: UInt8(generator.next() % 4)) ?? .heap,
                                address: pick(addresses), size: pick(sizes), stack: UInt32(generator.next() % 4))
            case 2: record = .free(address: pick(addresses))
            case 3: record = .reallocRelease(address: pick(addresses))
            case 4:
                record = .realloc(status: ReallocStatus(rawValue: UInt8(generator.next() % 3)) ?? .failed, path: .mmapThreshold,
                                  isReallocarray: false, old: pick(addresses), new: pick(addresses), size: pick(sizes), stack: stack)
            case 5:
                record = .mmap(addressArgument: 0, length: pick(sizes), prot: 3, flags: generator.next() % 64, fd: -1, offset: 0,
                               result: pick(addresses), errno: 0, path: "", stack: stack)
            case 6:
                record = .munmap(address: pick(addresses), length: pick(sizes), result: 0, errno: 0, stack: stack)
            case 7:
                record = .mremap(oldAddress: pick(addresses), oldSize: pick(sizes), newSize: pick(sizes), flags: generator.next() % 8,
                                 newAddressArgument: 0, result: pick(addresses), errno: 0, stack: stack)
            default:
                record = .mallopt(parameter: Int64(bitPattern: generator.next() % 9) - 8, value: Int64(bitPattern: generator.next()), result: 1)
            }
            replay.apply(record, tid: generator.next() % 3, time: time)
        }
        let blocks = replay.live.allBlocks
        XCTAssertEqual(replay.live.count, blocks.count)
        XCTAssertEqual(replay.live.totalBytes, blocks.reduce(0) { $0 &+ $1.size })
        XCTAssertFalse(blocks.contains { $0.address == 0 })
        var options = AnalysisOptions()
        options.collectStacks = true
        let facts = TraceFacts(path: "fuzz.lt", header: TraceHeader(), outcome: ReadingOutcome(isComplete: true),
                               replay: replay, parentReplayed: false)
        let report = LeakAnalyzer(options: options).analyze(replay: replay, stacks: stacks, modules: SingleModule(),
                                                            symbolizer: symbolizer, facts: facts)
        XCTAssertEqual(report.summary.byPath[.heap].blocks + report.summary.byPath[.mmapThreshold].blocks
                       + report.summary.byPath[.threadArena].blocks + report.summary.byPath[.unknown].blocks, blocks.count)
        XCTAssertFalse(TextReport().render(report).isEmpty)
        XCTAssertFalse(try JSONDocument.render(report).isEmpty)
        _ = FoldedReport.render(report)
    }

    func testFoldedLines() {
        populate()
        XCTAssertEqual(FoldedReport.render(makeReport(collectStacks: true)),
                       "main;make_node 4096\nmain;outer:fn;inline_helper 10\n")
    }

    func testMtraceExportMatchesGlibcScript() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("anl-mtrace-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("export.txt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        let output = BufferedOutput(descriptor: handle.fileDescriptor)
        let site = stacks.intern(frames: [0x2100])
        // An inherited block, then a mix of everything replay handles.
        let parentStacks = StackTrie()
        var parent = Replayer(header: TraceHeader())
        parent.apply(.alloc(function: .malloc, path: .heap, address: 0x9000, size: 0x30, stack: parentStacks.intern(frames: [0x2300])), tid: 1, time: 0)
        replay.inherit(from: parent, parentStacks: parentStacks)
        let export = MtraceExport(output: output, stacks: stacks, inheritedStacks: replay.inheritedStacks) { _ in
            SingleModule().module
        }
        export.begin(with: replay)
        replay.observer = { export.handle($0) }
        let records: [TraceRecord] = [
            .alloc(function: .malloc, path: .heap, address: 0x1000, size: 100, stack: site),
            .alloc(function: .malloc, path: .heap, address: 0x2000, size: 200, stack: site),
            .free(address: 0x1000),
            .free(address: 0x7777),                                          // unknown
            .alloc(function: .malloc, path: .heap, address: 0x2000, size: 50, stack: site),   // duplicate
            .reallocRelease(address: 0x2000),
            .realloc(status: .movedOrResized, path: .heap, isReallocarray: false, old: 0x2000, new: 0x3000, size: 400, stack: site),
            .reallocRelease(address: 0x3000),
            .realloc(status: .failed, path: .unknown, isReallocarray: false, old: 0x3000, new: 0, size: 1 << 40, stack: site),
            .alloc(function: .malloc, path: .heap, address: 0x4000, size: 8, stack: site),
            .free(address: 0x9000),                                          // the inherited block
            .alloc(function: .malloc, path: .heap, address: 0x9100, size: 0x10, stack: site),
        ]
        for record in records { replay.apply(record, tid: 1, time: 0) }
        export.finish()
        try handle.close()
        let exported = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(exported.hasPrefix("= Start\n@ /app:[0x1300] + 0x9000 0x30\n@ /app:[0x1100] + 0x1000 0x64\n"), exported)
        XCTAssertTrue(exported.hasSuffix("= End\n"))

        // glibc's script must find exactly the blocks replay left live: 400 + 8 + 16 bytes.
        let script = Process()
        script.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        script.arguments = ["/usr/bin/mtrace", path]
        let pipe = Pipe()
        script.standardOutput = pipe
        try script.run()
        let scriptOutput = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        script.waitUntilExit()
        let unfreed = Self.unfreedBytes(fromMtraceOutput: scriptOutput)
        XCTAssertEqual(unfreed.blocks, replay.live.count, scriptOutput)
        XCTAssertEqual(unfreed.bytes, replay.live.totalBytes, scriptOutput)
        XCTAssertEqual(unfreed.bytes, 400 + 8 + 16)
    }

    /// Sums the "Memory not freed" table of glibc's mtrace script.
    static func unfreedBytes(fromMtraceOutput output: String) -> (blocks: Int, bytes: UInt64) {
        var blocks = 0
        var bytes: UInt64 = 0
        var inTable = false
        for line in output.split(separator: "\n") {
            if line.hasPrefix("Memory not freed") { inTable = true; continue }
            guard inTable else { continue }
            let fields = line.split(separator: " ")
            guard fields.count >= 2, fields[0].hasPrefix("0x"), fields[1].hasPrefix("0x"),
                  let size = UInt64(fields[1].dropFirst(2), radix: 16) else { continue }
            blocks += 1
            bytes += size
        }
        return (blocks, bytes)
    }
}
