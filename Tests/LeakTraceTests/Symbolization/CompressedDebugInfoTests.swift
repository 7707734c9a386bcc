// Debug files with compressed sections (Sources/Symbolization/DebugImage.swift): they are
// decompressed into an image before libdw reads them, and the frames must be those of the same
// program's uncompressed debug info, which addr2line reads as the independent answer. zstd
// sections, which libdw 0.188 cannot read at all, must resolve too. The images kept in the
// answer directory are reused, rewritten when damaged, replaced when their file changes, and
// kept under their budget.

import Foundation
import Symbolization
import TraceFormat
import XCTest

private typealias SymKit = SymbolizationTestKit

final class CompressedDebugInfoTests: XCTestCase {
    private func binaries() throws -> SymbolizationBinaries { try SymbolizationBinaries.shared.get() }

    /// Return addresses in symbolize_inline.c's binary whose frames have inline chains of one
    /// to three functions, and one in a function that inlines nothing.
    private func inlineCallSites(_ binary: String) throws -> [UInt64] {
        try [("inline_sink", "inline_outer"), ("inline_sink", "inline_nested_outer")].map {
            try SymKit.Oracle.returnAddress(afterCallTo: $0.0, in: $0.1, binary: binary)
        }
    }

    /// The names of the sections of `file` that readelf flags as compressed ("C").
    private func compressedSections(_ file: String) throws -> Set<String> {
        let table = try SymKit.run("readelf", ["-SW", file])
        var names = Set<String>()
        for line in table.split(separator: "\n") {
            guard let close = line.firstIndex(of: "]") else { continue }
            let fields = line[line.index(after: close)...].split(separator: " ")
            // name, type, address, offset, size, entry size, flags, ...
            if fields.count >= 7, fields[1] != "NULL", fields[6].contains("C") { names.insert(String(fields[0])) }
        }
        return names
    }

    private func sectionTypes(_ file: String) throws -> [String: String] {
        let table = try SymKit.run("readelf", ["-SW", file])
        var types: [String: String] = [:]
        for line in table.split(separator: "\n") {
            guard let close = line.firstIndex(of: "]") else { continue }
            let fields = line[line.index(after: close)...].split(separator: " ")
            if fields.count >= 2 { types[String(fields[0])] = String(fields[1]) }
        }
        return types
    }

    /// symbolize_inline's binary split into a stripped copy and a debug file compressed with
    /// `method`, placed in a build-id directory under the returned root.
    private func compressedSplit(_ method: String) throws -> (binary: String, root: String, debug: String) {
        let split = try SymKit.splitDebugInfo(of: try binaries().inline, label: "gz-" + method, debugLink: false,
                                              removedAfter: self)
        let compressed = split.debug + "." + method
        try SymKit.run("objcopy", ["--compress-debug-sections=" + method, split.debug, compressed])
        let root = split.directory + "/debug-root"
        let placed = try SymKit.moveToBuildIDDirectory(compressed, of: split.binary, root: root)
        XCTAssertTrue(try compressedSections(placed).isSuperset(of: [".debug_info", ".debug_line", ".debug_abbrev"]),
                      "objcopy did not compress the debug file with \(method)")
        return (split.binary, root, placed)
    }

    private func assertFramesMatchTheUncompressedBuild(binary: String, options: SymbolizerOptions,
                                                       file: StaticString = #filePath, line: UInt = #line) throws {
        let original = try binaries().inline
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        for offset in try inlineCallSites(original) {
            let frames = Symbolizer(options: options).symbolize(address: SymKit.bias + offset, module: module,
                                                                isReturnAddress: true)
            let truth = try SymKit.Oracle.addr2line(original, offset: offset - 1)
            XCTAssertGreaterThan(truth.count, 1, "the call site should be inlined", file: file, line: line)
            XCTAssertEqual(frames.compactMap(\.function), truth.map(\.function), file: file, line: line)
            XCTAssertEqual(frames.compactMap(\.line), truth.map(\.line), file: file, line: line)
            XCTAssertEqual(frames.compactMap(\.file).map { URL(fileURLWithPath: $0).lastPathComponent },
                           truth.map { URL(fileURLWithPath: $0.file).lastPathComponent }, file: file, line: line)
        }
    }

    func testZlibCompressedDebugFileGivesTheUncompressedFrames() throws {
        let split = try compressedSplit("zlib")
        try assertFramesMatchTheUncompressedBuild(binary: split.binary, options: SymbolizerOptions(debugDirectories: [split.root]))
    }

    /// libdw 0.188 cannot decompress zstd sections: without the image these frames had no lines.
    func testZstdCompressedDebugFileGivesTheUncompressedFrames() throws {
        let split = try compressedSplit("zstd")
        try assertFramesMatchTheUncompressedBuild(binary: split.binary, options: SymbolizerOptions(debugDirectories: [split.root]))
    }

    /// A binary built with -gz carries compressed DWARF in itself, with no separate debug file.
    func testBinaryWithCompressedDebugSectionsGivesTheUncompressedFrames() throws {
        let directory = try SymKit.scratchDirectory("gz-main", removedAfter: self)
        let binary = directory + "/symbolize_inline_gz"
        try SymKit.Programs.compile("symbolize_inline.c", compiler: "cc",
                                    flags: ["-g", "-O2", "-gz=zlib", "-fPIE", "-pie", "-Wl,--build-id"], output: binary)
        XCTAssertTrue(try compressedSections(binary).contains(".debug_info"))
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        for offset in try inlineCallSites(binary) {
            let frames = Symbolizer(options: SymbolizerOptions(debugDirectories: []))
                .symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
            let truth = try SymKit.Oracle.addr2line(binary, offset: offset - 1) // binutils reads zlib sections
            XCTAssertGreaterThan(truth.count, 1, "the call site should be inlined")
            XCTAssertEqual(frames.compactMap(\.function), truth.map(\.function))
            XCTAssertEqual(frames.compactMap(\.line), truth.map(\.line))
        }
    }

    /// A debug file whose compressed .debug_info is damaged: no image is kept, nothing crashes,
    /// and the frame still has its function's name from the debug file's symbol table.
    func testDamagedCompressedSectionFallsBackToTheSymbolTable() throws {
        let split = try compressedSplit("zlib")
        let table = try SymKit.run("readelf", ["-SW", split.debug])
        let row = try XCTUnwrap(table.split(separator: "\n").first { $0.contains(" .debug_info ") })
        let fields = row[row.index(after: try XCTUnwrap(row.firstIndex(of: "]")))...].split(separator: " ")
        let offset = try XCTUnwrap(Int(fields[3], radix: 16)), size = try XCTUnwrap(Int(fields[4], radix: 16))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: split.debug))
        for index in stride(from: offset + size / 4, to: offset + size / 2, by: 97) { bytes[index] ^= 0x5a }
        try bytes.write(to: URL(fileURLWithPath: split.debug))

        let answers = try SymKit.scratchDirectory("gz-damaged", removedAfter: self)
        let original = try binaries().inline
        let offsetInFile = try SymKit.Oracle.returnAddress(afterCallTo: "inline_sink", in: "inline_outer", binary: original)
        let module = try SymKit.Oracle.module(split.binary, bias: SymKit.bias)
        let frames = Symbolizer(options: SymbolizerOptions(debugDirectories: [split.root], answerDirectory: answers))
            .symbolize(address: SymKit.bias + offsetInFile, module: module, isReturnAddress: true)
        XCTAssertEqual(frames.map(\.function), ["inline_outer"])
        XCTAssertEqual(frames.compactMap(\.line), [])
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: answers + "/debug")) ?? [], [])
    }

    func testImageIsKeptReusedAndRewrittenWhenDamaged() throws {
        let split = try compressedSplit("zlib")
        let answers = try SymKit.scratchDirectory("gz-images", removedAfter: self)
        let options = SymbolizerOptions(debugDirectories: [split.root], answerDirectory: answers)
        try assertFramesMatchTheUncompressedBuild(binary: split.binary, options: options)

        let hex = try SymKit.Oracle.buildID(split.binary).map { String(format: "%02x", $0) }.joined()
        let kept = try FileManager.default.contentsOfDirectory(atPath: answers + "/debug")
        XCTAssertEqual(kept.count, 1)
        let image = answers + "/debug/" + (kept.first ?? "")
        XCTAssertTrue(kept.first?.hasPrefix(hex + "-") ?? false, "named by the build-id: \(kept)")
        // Stored plain, with the sections no report reads left out.
        XCTAssertEqual(try compressedSections(image), [])
        let types = try sectionTypes(image)
        XCTAssertEqual(types[".debug_info"], "PROGBITS")
        XCTAssertEqual(types[".debug_line"], "PROGBITS")
        XCTAssertEqual(types[".debug_loclists"], "NOBITS", "symbolize_inline.c at -O2 has location lists")
        let whole = try Data(contentsOf: URL(fileURLWithPath: image))

        // Reused: the next run opens the same file and does not write it again.
        let inode = try FileManager.default.attributesOfItem(atPath: image)[.systemFileNumber] as? Int
        try assertFramesMatchTheUncompressedBuild(binary: split.binary, options: options)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: image)[.systemFileNumber] as? Int, inode)

        // Cut short or emptied: not used, and written whole again.
        for damaged in [whole.prefix(whole.count / 2), whole.prefix(whole.count - 8), Data()] {
            try damaged.write(to: URL(fileURLWithPath: image))
            try assertFramesMatchTheUncompressedBuild(binary: split.binary, options: options)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: image)), whole, "rewritten whole")
        }
    }

    func testImageOfAnOlderDebugFileIsReplacedAndTheBudgetIsKept() throws {
        let split = try compressedSplit("zlib")
        let answers = try SymKit.scratchDirectory("gz-budget", removedAfter: self)
        let hex = try SymKit.Oracle.buildID(split.binary).map { String(format: "%02x", $0) }.joined()
        let debugDirectory = answers + "/debug"
        try FileManager.default.createDirectory(atPath: debugDirectory, withIntermediateDirectories: true)
        // An image of the same build-id's file as it was before (another size and time), and
        // an image of some other file, used long ago.
        let older = debugDirectory + "/\(hex)-1234-5678.debug"
        let other = debugDirectory + "/" + String(repeating: "ab", count: 20) + "-99-99.debug"
        try Data(count: 4096).write(to: URL(fileURLWithPath: older))
        try Data(count: 4096).write(to: URL(fileURLWithPath: other))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000)], ofItemAtPath: other)

        var options = SymbolizerOptions(debugDirectories: [split.root], answerDirectory: answers)
        try assertFramesMatchTheUncompressedBuild(binary: split.binary, options: options)
        var kept = try FileManager.default.contentsOfDirectory(atPath: debugDirectory).sorted()
        XCTAssertEqual(kept.count, 2, "the older image of the same file is gone: \(kept)")
        XCTAssertFalse(kept.contains(URL(fileURLWithPath: older).lastPathComponent))
        XCTAssertTrue(kept.contains(URL(fileURLWithPath: other).lastPathComponent))

        // A budget that holds the image but not the other one as well: writing the image again
        // removes the least recently used one and keeps the one just written.
        let image = try XCTUnwrap(kept.first { $0.hasPrefix(hex) })
        let imageSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: debugDirectory + "/" + image)[.size] as? Int)
        try FileManager.default.removeItem(atPath: debugDirectory + "/" + image)
        options.debugImageBudget = UInt64(imageSize + 4095)
        try assertFramesMatchTheUncompressedBuild(binary: split.binary, options: options)
        kept = try FileManager.default.contentsOfDirectory(atPath: debugDirectory).sorted()
        XCTAssertEqual(kept, [image])

        // An image larger than the whole budget is made in memory for the run, never kept.
        try FileManager.default.removeItem(atPath: debugDirectory + "/" + image)
        options.debugImageBudget = UInt64(imageSize - 1)
        try assertFramesMatchTheUncompressedBuild(binary: split.binary, options: options)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: debugDirectory), [])
    }
}

/// A real report through libc's compressed debug file from libc6-dbg: every libc frame of the
/// leaked stacks has the function and line that addr2line reads from that debug file itself, the
/// image is kept for the next report, and --no-symbol-cache keeps nothing on disk.
final class LibcDebugImageReportTests: XCTestCase {
    func testLibcFramesOfAReportAgreeWithAddr2lineOnTheDebugFile() throws {
        let libc = "/lib/x86_64-linux-gnu/libc.so.6"
        let hex = try SymKit.Oracle.buildID(libc).map { String(format: "%02x", $0) }.joined()
        let debugFile = "/usr/lib/debug/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug"
        guard FileManager.default.fileExists(atPath: debugFile) else {
            throw missingTool("the debug file of \(libc)", package: "libc6-dbg")
        }
        let cache = try SymKit.scratchDirectory("libc-image", removedAfter: self)
        let trace = try CLIEndToEndTests.traceOne("analysis_leaks")
        func report(_ extra: [String]) throws -> Data {
            let run = try TracedProgram.run(executable: LeakReportRunner.executable,
                                            arguments: ["--group-by", "stack", "--format", "json"] + extra + [trace],
                                            environment: ["LEAKTRACE_SYMBOL_CACHE": cache], timeout: 120)
            XCTAssertEqual(run.status, 0, run.stderr)
            return Data(run.stdout.utf8)
        }

        let inMemory = try report(["--no-symbol-cache"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache + "/debug"), "--no-symbol-cache kept an image")
        let kept = try report([])
        XCTAssertEqual(kept, inMemory)
        let images = try FileManager.default.contentsOfDirectory(atPath: cache + "/debug")
        XCTAssertTrue(images.contains { $0.hasPrefix(hex + "-") }, "libc's image was not kept: \(images)")

        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: kept) as? [String: Any])
        let groups = try XCTUnwrap(root["groups"] as? [[String: Any]])
        var checked = Set<String>()
        for group in groups {
            let stack = (group["biggest"] as? [String: Any])?["stack"] as? [[String: Any]] ?? []
            // An inlined call gives several frames at one address, innermost first, as addr2line -i.
            var chains: [(offset: String, lines: [Int?], functions: [String])] = []
            for frame in stack where frame["module"] as? String == libc {
                let offset = frame["moduleOffset"] as? String ?? ""
                if chains.last?.offset != offset { chains.append((offset, [], [])) }
                chains[chains.count - 1].lines.append(frame["line"] as? Int)
                chains[chains.count - 1].functions.append(frame["function"] as? String ?? "?")
            }
            for chain in chains {
                let offset = try XCTUnwrap(UInt64(chain.offset.dropFirst(2), radix: 16))
                let truth = try SymKit.Oracle.addr2line(debugFile, offset: offset - 1)
                XCTAssertEqual(chain.lines, truth.map(\.line), "\(chain)")
                checked.formUnion(chain.functions)
            }
        }
        // strdup is where the program's copied name was allocated; every stack starts in libc.
        XCTAssertTrue(checked.contains("__strdup"), "\(checked)")
        XCTAssertTrue(checked.contains("__libc_start_call_main"), "\(checked)")
    }
}
