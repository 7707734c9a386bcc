// Throughput of the symbolizer on large real modules, checked against binutils as it goes:
// libc and libpython (symbol tables only, as distributions ship them) and this test executable
// (full DWARF, Swift and C). The timings are printed; the assertions are about the answers.

import Foundation
import Symbolization
import TraceFormat
import XCTest

private typealias SymKit = SymbolizationTestKit

final class SymbolizationPerformanceTests: XCTestCase {
    private let addressCount = 10_000

    func testTenThousandAddressesInLibc() throws {
        try checkSymbolTableModule("/usr/lib/x86_64-linux-gnu/libc.so.6", package: "libc6")
    }

    func testTenThousandAddressesInLibpython() throws {
        try checkSymbolTableModule("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", package: "libpython3.11")
    }

    /// Every address inside a sized .dynsym function must come back named after one of the
    /// symbols covering it (libc has aliases such as malloc and __libc_malloc).
    private func checkSymbolTableModule(_ path: String, package: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw missingTool(path, package: package) }
        let module = try SymKit.Oracle.module(path, bias: 0x7f3a_1200_0000)
        let text = try XCTUnwrap(module.segments.first(where: \.isExecutable))
        let step = text.size / UInt64(addressCount)
        // +1 keeps every lookup (address - 1) inside the segment.
        let addresses = (0 ..< UInt64(addressCount)).map { text.start + $0 * step + 1 }
        let functions = try SymKit.Oracle.sizedFunctions(path, dynamic: true).sorted { $0.start < $1.start }
        let symbolizer = Symbolizer(options: SymbolizerOptions(debugDirectories: []))

        let (results, seconds) = timed { addresses.map { symbolizer.symbolize(address: $0, module: module, isReturnAddress: true) } }
        let (_, cachedSeconds) = timed { addresses.map { symbolizer.symbolize(address: $0, module: module, isReturnAddress: true) } }

        var covered = 0
        var matched = 0
        for (address, frames) in zip(addresses, results) {
            XCTAssertEqual(frames.count, 1)
            let names = coveringNames(address - module.bias - 1, in: functions)
            guard !names.isEmpty else { continue }
            covered += 1
            if let function = frames.last?.function, names.contains(function) { matched += 1 }
        }
        XCTAssertGreaterThan(covered, addressCount / 10, "a good part of the text is inside exported functions")
        XCTAssertEqual(matched, covered)
        XCTAssertEqual(symbolizer.statistics.cacheHits, addressCount)
        report(path, seconds: seconds, cachedSeconds: cachedSeconds, named: matched)
    }

    /// The test executable has full DWARF (Swift and C, inlined code included). Addresses inside
    /// its functions are checked against `addr2line -i` on a sample.
    func testTenThousandAddressesWithDWARFInThisTestExecutable() throws {
        let path = try XCTUnwrap(resolvedExecutablePath())
        let functions = try SymKit.Oracle.sizedFunctions(path, dynamic: false)
            .filter { $0.size >= 8 }.sorted { $0.start < $1.start }
        guard functions.count >= 1_000 else { throw XCTSkip("\(path) has too few functions to measure") }
        let module = try SymKit.Oracle.module(path, bias: 0x5612_0000_0000)
        // Spread the addresses over all functions, several per function when there are fewer
        // functions than addresses, each strictly inside its function.
        var offsets = Set<UInt64>()
        var round: UInt64 = 0
        while offsets.count < addressCount, round < 64 {
            for (index, function) in functions.enumerated() where offsets.count < addressCount {
                let inside = 1 + (UInt64(index) &* 7 &+ round &* 13) % (function.size - 1)
                offsets.insert(function.start + inside)
            }
            round += 1
        }
        let addresses = offsets.sorted().map { module.bias + $0 }
        XCTAssertEqual(addresses.count, addressCount)
        let symbolizer = Symbolizer(options: SymbolizerOptions(debugDirectories: []))

        let (results, seconds) = timed { addresses.map { symbolizer.symbolize(address: $0, module: module, isReturnAddress: false) } }

        let named = results.filter { $0.last?.function != nil }.count
        XCTAssertEqual(named, addressCount, "every address is inside a function symbol")
        XCTAssertEqual(symbolizer.warnings, [])
        try checkAgainstAddr2line(path, module: module, addresses: addresses, results: results)
        report(path, seconds: seconds, cachedSeconds: nil, named: named, extra: describe(results))
    }

    /// libc with the separate debug file from libc6-dbg (found by build-id under /usr/lib/debug,
    /// compressed sections): the realistic case for a leak report's innermost frames.
    func testTenThousandAddressesInLibcWithItsDebugFile() throws {
        let path = "/usr/lib/x86_64-linux-gnu/libc.so.6"
        guard FileManager.default.fileExists(atPath: path) else { throw missingTool(path, package: "libc6") }
        let hex = try SymKit.Oracle.buildID(path).map { String(format: "%02x", $0) }.joined()
        let debugFile = "/usr/lib/debug/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug"
        guard FileManager.default.fileExists(atPath: debugFile) else { throw missingTool("the debug file of \(path)", package: "libc6-dbg") }
        let module = try SymKit.Oracle.module(path, bias: 0x7f3a_1200_0000)
        let text = try XCTUnwrap(module.segments.first(where: \.isExecutable))
        let step = text.size / UInt64(addressCount)
        let addresses = (0 ..< UInt64(addressCount)).map { text.start + $0 * step + 1 }
        let symbolizer = Symbolizer()

        let (first, firstSeconds) = timed { symbolizer.symbolize(address: addresses[0], module: module, isReturnAddress: true) }
        let (rest, seconds) = timed { addresses.dropFirst().map { symbolizer.symbolize(address: $0, module: module, isReturnAddress: true) } }
        let results = [first] + rest
        print(String(format: "first libc address (opening the file and its debug file): %.1f ms", firstSeconds * 1e3))

        XCTAssertEqual(symbolizer.modulesWithoutDebugInfo, [])
        XCTAssertEqual(symbolizer.warnings, [])
        // The lookups were of address - 1: give addr2line the same addresses. Lines only: binutils
        // 2.40 joins glibc's relative directories differently (./iconv/./iconv/x.c) and, for GCC
        // 12's DWARF 5 tables, names the including file instead of file 1 of the line table
        // (wcstoul_l.c:459 for strtol_l.c:459, though wcstoul_l.c is a few lines long).
        try checkAgainstAddr2line(path, module: module, addresses: addresses.map { $0 - 1 }, results: results,
                                  compareFiles: false)
        let named = results.filter { $0.last?.function != nil }.count
        report(path + " + debug file", seconds: seconds, cachedSeconds: nil, named: named, extra: describe(results))
    }

    // MARK: Helpers

    /// Compares the file:line chains (or only the lines) of an evenly spread sample with
    /// `addr2line -i`: the same number of frames with the same positions.
    private func checkAgainstAddr2line(_ path: String, module: Module, addresses: [UInt64],
                                       results: [[SymbolizedFrame]], compareFiles: Bool = true) throws {
        let sample = Array(stride(from: 0, to: addresses.count, by: max(1, addresses.count / 200)))
        let oracle = try addr2lineBatch(path, offsets: sample.map { addresses[$0] - module.bias })
        var agreeing = 0
        for (position, index) in sample.enumerated() {
            let ours = results[index].map { frame -> String in
                let line = frame.line.map(String.init) ?? "?"
                guard compareFiles else { return line }
                guard frame.line != nil else { return "??:?" }
                return "\(frame.file ?? "??"):\(line)"
            }
            let theirs = oracle[position].map { location -> String in
                guard let colon = location.lastIndex(of: ":") else { return location }
                guard compareFiles else { return String(location[location.index(after: colon)...]) }
                // Without a line, addr2line still guesses a file from the symbol table's STT_FILE
                // symbols (crtstuff.c, X.swift.o) or prints ":?"; that is not line information.
                if location.hasSuffix(":?") { return "??:?" }
                // Swift's pseudo-file comes as "//<compiler-generated>"; we give the bare name.
                let file = location[..<colon]
                if let slash = file.lastIndex(of: "/"), file[file.index(after: slash)...].hasPrefix("<") {
                    return String(file[file.index(after: slash)...]) + location[colon...]
                }
                return location
            }
            if ours == theirs {
                agreeing += 1
            } else {
                print("addr2line differs at 0x\(String(addresses[index] - module.bias, radix: 16)): "
                      + "ours \(ours), addr2line \(theirs)")
            }
        }
        XCTAssertEqual(agreeing, sample.count, "source positions agreeing with addr2line")
    }

    private func fileName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    private func describe(_ results: [[SymbolizedFrame]]) -> String {
        let withLines = results.filter { $0.first?.line != nil }.count
        let inlined = results.filter { $0.count > 1 }.count
        return "\(withLines) with file:line, \(inlined) with inline chains"
    }

    private func coveringNames(_ offset: UInt64, in sorted: [(name: String, start: UInt64, size: UInt64)]) -> Set<String> {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle].start <= offset { low = middle + 1 } else { high = middle }
        }
        var names = Set<String>()
        var index = low - 1
        // Aliases share a start; nested symbols are rare and close. 64 entries back is plenty.
        while index >= 0, index >= low - 64 {
            let function = sorted[index]
            if offset - function.start < function.size { names.insert(function.name) }
            index -= 1
        }
        return names
    }

    /// addr2line's inline chains for many offsets at once, each as ["file:line", ...].
    private func addr2lineBatch(_ binary: String, offsets: [UInt64]) throws -> [[String]] {
        // With -a each answer starts with the queried address, which delimits the chains.
        let output = try SymKit.run("addr2line", ["-a", "-i", "-e", binary] + offsets.map { "0x" + String($0, radix: 16) })
        var chains: [[String]] = []
        for line in output.split(separator: "\n") {
            if line.hasPrefix("0x") { chains.append([]); continue }
            // Paths may contain spaces; only a trailing " (discriminator N)" is not part of the location.
            var location = String(line)
            if let note = location.range(of: " (discriminator ") { location = String(location[..<note.lowerBound]) }
            guard !chains.isEmpty else { continue }
            chains[chains.count - 1].append(location == "??:0" ? "??:?" : location)
        }
        return chains
    }

    private func resolvedExecutablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func timed<T>(_ body: () -> T) -> (T, Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    private func report(_ path: String, seconds: Double, cachedSeconds: Double?, named: Int, extra: String = "") {
        var line = "symbolize \(addressCount) addresses in \(lastComponent(path)): "
            + String(format: "%.3f s, %.1f µs/address", seconds, seconds * 1e6 / Double(addressCount))
        if let cachedSeconds {
            line += String(format: "; cached %.2f µs/address", cachedSeconds * 1e6 / Double(addressCount))
        }
        line += "; \(named) named" + (extra.isEmpty ? "" : ", " + extra)
        print(line)
    }

    private func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
