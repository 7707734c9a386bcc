// The answers kept between runs (Sources/Symbolization/AnswerCache.swift): a later run gives the
// same frames without reading debug info, and never uses answers whose debug files changed,
// which were found in a way a later search could answer differently, or which do not read back.

import Foundation
import Symbolization
import TraceFormat
import XCTest

private typealias SymKit = SymbolizationTestKit

final class SymbolAnswerCacheTests: XCTestCase {
    private func binaries() throws -> SymbolizationBinaries { try SymbolizationBinaries.shared.get() }

    private func symbolizer(_ answers: String, debugDirectories: [String] = ["/usr/lib/debug"]) -> Symbolizer {
        Symbolizer(options: SymbolizerOptions(debugDirectories: debugDirectories, answerDirectory: answers))
    }

    /// The stored answer files, by name.
    private func storedFiles(_ answers: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: answers + "/symbols")) ?? []).sorted()
    }

    func testAnswersOfOneRunServeTheNextWithoutDebugInfo() throws {
        let answers = try SymKit.scratchDirectory("answers", removedAfter: self)
        let binary = try binaries().plain
        let (address, module) = try SymKit.plainCallSite(in: binary)
        let expected = Symbolizer().symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(expected.map(\.line), [try SymKit.Programs.line(of: "caller_calls_leaf", in: "symbolize_plain.c")])

        let first = symbolizer(answers)
        XCTAssertEqual(first.symbolize(address: address, module: module, isReturnAddress: true), expected)
        XCTAssertEqual(first.statistics.storedAnswers, 0)
        first.storeAnswers()
        let hex = try SymKit.Oracle.buildID(binary).map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(storedFiles(answers), [hex + ".answers"])

        // The same file at another bias (another run, ASLR): the stored answer, with its address.
        let moved = try SymKit.Oracle.module(binary, bias: SymKit.bias + 0x10_0000)
        let second = symbolizer(answers)
        let again = second.symbolize(address: address + 0x10_0000, module: moved, isReturnAddress: true)
        XCTAssertEqual(again.map(\.function), expected.map(\.function))
        XCTAssertEqual(again.map(\.line), expected.map(\.line))
        XCTAssertEqual(again.map(\.column), expected.map(\.column))
        XCTAssertEqual(again.map(\.address), [address + 0x10_0000])
        XCTAssertEqual(second.statistics.storedAnswers, 1)

        // An address the first run did not look up is read from the debug info, then kept too.
        let leaf = try SymKit.Oracle.symbols(binary)["plain_leaf"].map { SymKit.bias + $0 + 1 }
        let leafAddress = try XCTUnwrap(leaf)
        let leafFrames = second.symbolize(address: leafAddress, module: module, isReturnAddress: false)
        XCTAssertEqual(leafFrames.map(\.function), ["plain_leaf"])
        XCTAssertEqual(second.statistics.storedAnswers, 1)
        second.storeAnswers()
        let third = symbolizer(answers)
        XCTAssertEqual(third.symbolize(address: leafAddress, module: module, isReturnAddress: false), leafFrames)
        XCTAssertEqual(third.symbolize(address: address, module: module, isReturnAddress: true), expected)
        XCTAssertEqual(third.statistics.storedAnswers, 2)
    }

    func testDamagedOrCutAnswerFileIsIgnoredAndRewritten() throws {
        let answers = try SymKit.scratchDirectory("answers-damaged", removedAfter: self)
        let (address, module) = try SymKit.plainCallSite(in: try binaries().plain)
        let first = symbolizer(answers)
        let expected = first.symbolize(address: address, module: module, isReturnAddress: true)
        first.storeAnswers()
        let file = answers + "/symbols/" + (storedFiles(answers).first ?? "")
        let whole = try Data(contentsOf: URL(fileURLWithPath: file))

        var flipped = whole
        flipped[whole.count / 2] ^= 0x20
        for damaged in [flipped, whole.prefix(whole.count - 3), Data()] {
            try damaged.write(to: URL(fileURLWithPath: file))
            let reader = symbolizer(answers)
            XCTAssertEqual(reader.symbolize(address: address, module: module, isReturnAddress: true), expected)
            XCTAssertEqual(reader.statistics.storedAnswers, 0, "a damaged file was used")
            reader.storeAnswers()
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: file)), whole, "rewritten whole")
        }
    }

    func testAnswersFromABuildIDDebugFileLastWhileItIsUnchanged() throws {
        let answers = try SymKit.scratchDirectory("answers-buildid", removedAfter: self)
        let split = try SymKit.splitDebugInfo(of: try binaries().plain, label: "answers-split", debugLink: false,
                                              removedAfter: self)
        let root = split.directory + "/debug-root"
        let debugFile = try SymKit.moveToBuildIDDirectory(split.debug, of: split.binary, root: root)
        let (address, module) = try SymKit.plainCallSite(in: try binaries().plain, loadedAs: split.binary)

        let first = symbolizer(answers, debugDirectories: [root])
        let expected = first.symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(expected.map(\.function), ["plain_caller"])
        first.storeAnswers()
        let reader = symbolizer(answers, debugDirectories: [root])
        XCTAssertEqual(reader.symbolize(address: address, module: module, isReturnAddress: true), expected)
        XCTAssertEqual(reader.statistics.storedAnswers, 1)

        // The debug file is replaced (a newer -dbg package): the stored answers are not used.
        let later = Date().addingTimeInterval(60)
        try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: debugFile)
        let afterUpdate = symbolizer(answers, debugDirectories: [root])
        XCTAssertEqual(afterUpdate.symbolize(address: address, module: module, isReturnAddress: true), expected)
        XCTAssertEqual(afterUpdate.statistics.storedAnswers, 0)

        // Removed: the stored answers would name lines nobody can find any more; not used either.
        try FileManager.default.removeItem(atPath: debugFile)
        let afterRemoval = symbolizer(answers, debugDirectories: [root])
        let bare = afterRemoval.symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(bare.map(\.line), [nil])
        XCTAssertEqual(afterRemoval.statistics.storedAnswers, 0)
    }

    func testNoAnswersAreKeptForADebugFileFoundByItsDebugLink() throws {
        let answers = try SymKit.scratchDirectory("answers-debuglink", removedAfter: self)
        let split = try SymKit.splitDebugInfo(of: try binaries().plain, label: "answers-link", debugLink: true,
                                              removedAfter: self)
        let (address, module) = try SymKit.plainCallSite(in: try binaries().plain, loadedAs: split.binary)
        let first = symbolizer(answers, debugDirectories: [])
        XCTAssertEqual(first.symbolize(address: address, module: module, isReturnAddress: true).map(\.function),
                       ["plain_caller"])
        first.storeAnswers()
        XCTAssertEqual(storedFiles(answers), [])
    }

    /// A module without DWARF is answered from its symbol table; those answers are kept too,
    /// and dropped as soon as a debug file appears where the search would find it.
    func testSymbolTableAnswersLastUntilADebugFileCanBeFound() throws {
        let answers = try SymKit.scratchDirectory("answers-symtab", removedAfter: self)
        let split = try SymKit.splitDebugInfo(of: try binaries().plain, label: "answers-symtab-split", debugLink: false,
                                              removedAfter: self)
        let root = split.directory + "/debug-root"
        let (address, module) = try SymKit.plainCallSite(in: try binaries().plain, loadedAs: split.binary)

        let first = symbolizer(answers, debugDirectories: [root])
        let bare = first.symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(bare.map(\.line), [nil])
        first.storeAnswers()
        let hex = try SymKit.Oracle.buildID(split.binary).map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(storedFiles(answers), [hex + ".symtab-answers"])

        let second = symbolizer(answers, debugDirectories: [root])
        XCTAssertEqual(second.symbolize(address: address, module: module, isReturnAddress: true), bare)
        XCTAssertEqual(second.statistics.storedAnswers, 1)
        XCTAssertEqual(second.modulesWithoutDebugInfo, [split.binary])

        // The debug file installed where the search finds it: the lines it gives, not the answers.
        try SymKit.moveToBuildIDDirectory(split.debug, of: split.binary, root: root)
        let third = symbolizer(answers, debugDirectories: [root])
        let full = third.symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(full.map(\.function), ["plain_caller"])
        XCTAssertNotEqual(full.map(\.line), [nil])
        XCTAssertEqual(third.statistics.storedAnswers, 0)
    }

    /// The same through the module's debug link: a debug file put back next to the module
    /// (where its .gnu_debuglink names it) is found, and the kept answers are not used.
    func testSymbolTableAnswersStopWhenTheDebugLinkFindsAFile() throws {
        let answers = try SymKit.scratchDirectory("answers-symtab-link", removedAfter: self)
        let split = try SymKit.splitDebugInfo(of: try binaries().plain, label: "answers-symtab-link", debugLink: true,
                                              removedAfter: self)
        let (address, module) = try SymKit.plainCallSite(in: try binaries().plain, loadedAs: split.binary)
        let away = split.directory + "/elsewhere.debug"
        try FileManager.default.moveItem(atPath: split.debug, toPath: away)

        let first = symbolizer(answers, debugDirectories: [])
        let bare = first.symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(bare.map(\.line), [nil])
        first.storeAnswers()
        let second = symbolizer(answers, debugDirectories: [])
        XCTAssertEqual(second.symbolize(address: address, module: module, isReturnAddress: true), bare)
        XCTAssertEqual(second.statistics.storedAnswers, 1)

        try FileManager.default.moveItem(atPath: away, toPath: split.debug)
        let third = symbolizer(answers, debugDirectories: [])
        XCTAssertEqual(third.symbolize(address: address, module: module, isReturnAddress: true).map(\.function),
                       ["plain_caller"])
        XCTAssertEqual(third.statistics.storedAnswers, 0)
    }

    /// The same report with and without kept answers, then again from them: byte for byte.
    func testReportIsTheSameFromKeptAnswers() throws {
        let answers = try SymKit.scratchDirectory("answers-report", removedAfter: self)
        let traced = try TracedProgram.trace(try TracedProgram.build("tied_leaks"))
        let trace = try XCTUnwrap(traced.traces.first, traced.stderr)
        let environment = ["NO_COLOR": "1", "LEAKTRACE_SYMBOL_CACHE": answers]
        func report(_ extra: [String]) throws -> String {
            let run = try TracedProgram.run(executable: LeakReportRunner.executable, arguments: extra + [trace],
                                            environment: environment, timeout: 120)
            XCTAssertEqual(run.status, 0, run.stderr)
            return run.stdout
        }
        let uncached = try report(["--no-symbol-cache"])
        XCTAssertEqual(storedFiles(answers), [], "--no-symbol-cache wrote answers")
        XCTAssertTrue(uncached.contains("tied_leaks.c:"), uncached)
        XCTAssertEqual(try report([]), uncached)
        XCTAssertFalse(storedFiles(answers).isEmpty, "no answers were kept")
        XCTAssertEqual(try report([]), uncached)
    }
}
