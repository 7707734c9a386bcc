// Test support for the symbolization tests: compiling the C/C++ test programs, and reading the
// expected answers off the binaries with binutils (nm, objdump, readelf, addr2line), which act
// as an independent oracle for what the symbolizer must find.

import Foundation
import TraceFormat
import XCTest

/// Everything the symbolization tests share, in one namespace so that helpers of other test
/// files in this target cannot clash with these names.
enum SymbolizationTestKit {
    struct ToolFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs a tool found on PATH and returns its standard output; throws if it exits non-zero.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], in directory: String? = nil) throws -> String {
        let process = Process()
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Drain stderr on another thread so neither pipe can fill up and stall the tool.
        let errorText = CollectedOutput()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errorText.data = errors.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errorText.data, as: UTF8.self)
            throw SymbolizationTestKit.ToolFailure(description: "\(tool) \(arguments.joined(separator: " ")) failed: \(message)")
        }
        return String(decoding: outputData, as: UTF8.self)
    }

    /// A fresh directory under the system temporary directory, removed when `testCase` ends
    /// (kept for the process when there is no test case, as for the shared binaries).
    static func scratchDirectory(_ label: String, removedAfter testCase: XCTestCase? = nil) throws -> String {
        let path = NSTemporaryDirectory() + "leaktrace-symbolization-\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        testCase?.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Splits `binary` into a stripped copy and a debug file, in a fresh directory; with
    /// `debugLink`, the copy names the debug file in a .gnu_debuglink section.
    static func splitDebugInfo(of binary: String, label: String, debugLink: Bool,
                               removedAfter testCase: XCTestCase) throws -> (directory: String, binary: String, debug: String) {
        let directory = try scratchDirectory(label, removedAfter: testCase)
        let stripped = directory + "/" + URL(fileURLWithPath: binary).lastPathComponent
        let debug = stripped + ".debug"
        try run("objcopy", ["--only-keep-debug", binary, debug])
        try run("strip", ["--strip-all", "-o", stripped, binary])
        if debugLink {
            // objcopy records the link's base name and the CRC of the file as it is now.
            try run("objcopy", ["--add-gnu-debuglink=\(debug)", stripped])
        }
        return (directory, stripped, debug)
    }

    /// Moves `debug` to `root`/.build-id/xx/rest.debug, named by `binary`'s build-id; returns
    /// the new path.
    @discardableResult
    static func moveToBuildIDDirectory(_ debug: String, of binary: String, root: String) throws -> String {
        let hex = try Oracle.buildID(binary).map { String(format: "%02x", $0) }.joined()
        let directory = root + "/.build-id/" + hex.prefix(2)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/" + hex.dropFirst(2) + ".debug"
        try FileManager.default.moveItem(atPath: debug, toPath: path)
        return path
    }

    // MARK: - Test programs

    enum Programs {
        static let directory = TracedProgram.programsDirectory.path

        static func source(_ name: String) -> String { directory + "/" + name }

        /// The line holding `/* MARK:<marker> */` (or `// MARK:<marker>`) in a test program's source.
        static func line(of marker: String, in sourceName: String) throws -> Int {
            let text = try String(contentsOfFile: source(sourceName), encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let matches = lines.indices.filter {
                lines[$0].hasSuffix("MARK:\(marker) */") || lines[$0].hasSuffix("MARK:\(marker)")
            }
            guard matches.count == 1 else {
                throw SymbolizationTestKit.ToolFailure(description: "marker \(marker) found \(matches.count) times in \(sourceName)")
            }
            return matches[0] + 1
        }

        /// Compiles a test program (by absolute source path, so DWARF records absolute file names).
        static func compile(_ sourceName: String, compiler: String, flags: [String], output: String) throws {
            try run(compiler, flags + [source(sourceName), "-o", output])
        }
    }

    // MARK: - Reading binaries

    /// Facts about an ELF file read with binutils.
    enum Oracle {
        /// Defined symbols by their raw (mangled) names, with their values.
        static func symbols(_ binary: String, dynamic: Bool = false) throws -> [String: UInt64] {
            var table: [String: UInt64] = [:]
            let output = try SymbolizationTestKit.run("nm", (dynamic ? ["-D"] : []) + ["--defined-only", binary])
            for line in output.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count == 3, let value = UInt64(fields[0], radix: 16) else { continue }
                table[String(fields[2])] = value
            }
            return table
        }

        static func symbol(_ name: String, in binary: String) throws -> UInt64 {
            guard let value = try symbols(binary)[name] else {
                throw SymbolizationTestKit.ToolFailure(description: "no symbol \(name) in \(binary)")
            }
            return value
        }

        /// Function symbols (FUNC and IFUNC) with their sizes: name, start, size.
        static func sizedFunctions(_ binary: String, dynamic: Bool) throws -> [(name: String, start: UInt64, size: UInt64)] {
            let output = try SymbolizationTestKit.run("nm", (dynamic ? ["-D"] : []) + ["-S", "--defined-only", binary])
            var functions: [(String, UInt64, UInt64)] = []
            for line in output.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count == 4, ["T", "t", "W", "w", "i"].contains(fields[2]),
                      let start = UInt64(fields[0], radix: 16), let size = UInt64(fields[1], radix: 16), size > 0
                else { continue }
                // nm -D prints versioned names (malloc@@GLIBC_2.2.5); the symbol's own name is before the @.
                let name = fields[3].split(separator: "@", maxSplits: 1).first.map(String.init) ?? String(fields[3])
                functions.append((name, start, size))
            }
            return functions
        }

        /// The return address of the call from `function` to `callee`: the address of the
        /// instruction after the `call`, read from objdump's disassembly.
        static func returnAddress(afterCallTo callee: String, in function: String, binary: String) throws -> UInt64 {
            let output = try SymbolizationTestKit.run("objdump", ["-d", "--no-show-raw-insn", binary])
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
            guard let start = lines.firstIndex(where: { $0.hasSuffix("<\(function)>:") }) else {
                throw SymbolizationTestKit.ToolFailure(description: "no function \(function) in \(binary)")
            }
            var index = start + 1
            while index + 1 < lines.count, !lines[index].isEmpty {
                let line = lines[index]
                if line.contains("call"), line.contains("<\(callee)") {
                    return try instructionAddress(lines[index + 1])
                }
                index += 1
            }
            throw SymbolizationTestKit.ToolFailure(description: "no call to \(callee) in \(function)")
        }

        private static func instructionAddress(_ line: Substring) throws -> UInt64 {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard let colon = text.firstIndex(of: ":"), let address = UInt64(text[..<colon], radix: 16) else {
                throw SymbolizationTestKit.ToolFailure(description: "not an instruction line: \(line)")
            }
            return address
        }

        /// The module a trace would record for `binary` loaded at `bias`: PT_LOAD segments from
        /// `readelf -lW`, build-id from `readelf -n`.
        static func module(_ binary: String, bias: UInt64, path: String? = nil) throws -> Module {
            var segments: [ModuleSegment] = []
            for line in try SymbolizationTestKit.run("readelf", ["-lW", binary]).split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.first == "LOAD", fields.count >= 8,
                      let virtualAddress = UInt64(fields[2].dropFirst(2), radix: 16),
                      let memorySize = UInt64(fields[5].dropFirst(2), radix: 16) else { continue }
                let flagLetters = fields[6 ..< fields.count - 1].joined()
                var flags: UInt64 = 0
                if flagLetters.contains("E") { flags |= 1 }
                if flagLetters.contains("W") { flags |= 2 }
                if flagLetters.contains("R") { flags |= 4 }
                segments.append(ModuleSegment(start: bias + virtualAddress, size: memorySize, flags: flags))
            }
            return Module(path: path ?? binary, bias: bias, buildID: try buildID(binary), segments: segments)
        }

        static func buildID(_ binary: String) throws -> [UInt8] {
            let notes = try SymbolizationTestKit.run("readelf", ["-n", binary])
            guard let line = notes.split(separator: "\n").first(where: { $0.contains("Build ID:") }),
                  let hex = line.split(separator: " ").last else { return [] }
            var bytes: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex),
                  let byte = UInt8(hex[index ..< next], radix: 16) {
                bytes.append(byte)
                index = next
            }
            return bytes
        }

        /// addr2line's view of `offset` with inlines (`-f -i -C`): innermost first.
        static func addr2line(_ binary: String, offset: UInt64) throws -> [(function: String, file: String, line: Int)] {
            let output = try SymbolizationTestKit.run("addr2line", ["-f", "-i", "-C", "-e", binary, "0x" + String(offset, radix: 16)])
            let lines = output.split(separator: "\n").map(String.init)
            var frames: [(String, String, Int)] = []
            var index = 0
            while index + 1 < lines.count {
                // "file:line" or "file:line (discriminator N)"; the path itself may contain spaces.
                var location = lines[index + 1]
                if let note = location.range(of: " (discriminator ") { location = String(location[..<note.lowerBound]) }
                if let colon = location.lastIndex(of: ":"), let line = Int(location[location.index(after: colon)...]) {
                    frames.append((lines[index], String(location[..<colon]), line))
                }
                index += 2
            }
            return frames
        }
    }

    /// The load bias the tests pretend every module was loaded at (a typical PIE bias under gdb).
    static let bias: UInt64 = 0x5555_5555_4000

    /// The return address in `plain_caller` after its call to `plain_leaf` (found in `binary`
    /// by objdump), with `binary` or its stand-in `loadedAs` loaded at `bias`.
    static func plainCallSite(in binary: String, loadedAs loaded: String? = nil) throws -> (address: UInt64, module: Module) {
        let offset = try Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller", binary: binary)
        return (bias + offset, try Oracle.module(loaded ?? binary, bias: bias))
    }
}

extension SymbolizationTestKit.Oracle {
    /// llvm-symbolizer's view of `offset` (it ships with the Swift toolchain): innermost first,
    /// with columns, which addr2line does not print.
    static func llvmSymbolizer(_ binary: String, offset: UInt64)
        throws -> [(function: String, file: String, line: Int, column: Int)] {
        let output = try SymbolizationTestKit.run("llvm-symbolizer", ["--obj=" + binary, "0x" + String(offset, radix: 16)])
        let lines = output.split(separator: "\n").map(String.init)
        var frames: [(String, String, Int, Int)] = []
        var index = 0
        while index + 1 < lines.count {
            // "file:line:column"; the path may itself contain colons, so split from the end.
            let parts = lines[index + 1].split(separator: ":", omittingEmptySubsequences: false)
            if parts.count >= 3, let line = Int(parts[parts.count - 2]), let column = Int(parts[parts.count - 1]) {
                frames.append((lines[index], parts.dropLast(2).joined(separator: ":"), line, column))
            }
            index += 2
        }
        return frames
    }
}

/// Bytes read by a helper thread; the DispatchGroup wait orders the write before the read.
private final class CollectedOutput: @unchecked Sendable {
    var data = Data()
}
