// Symbolizer tests against real binaries compiled from Tests/LeakTraceTests/Programs.
// Expected names come from the sources, expected lines from MARK comments in them, and
// addresses from nm/objdump; addr2line cross-checks the line answers.

import Foundation
import Symbolization
import TraceFormat
import XCTest

private typealias SymKit = SymbolizationTestKit

/// The test programs, compiled once for all symbolization tests.
final class SymbolizationBinaries {
    let directory: String
    /// symbolize_plain.c, -g -O0 PIE.
    let plain: String
    /// symbolize_inline.c, -g -O2 PIE.
    let inline: String
    /// symbolize_cxx.cpp, -g -O0 PIE.
    let cxx: String
    /// symbolize_library.c, -g -O0 shared library, then `strip --strip-all`.
    let strippedLibrary: String

    static let shared = Result { try SymbolizationBinaries() }

    private init() throws {
        directory = try SymKit.scratchDirectory("symbolize")
        XCTestObservationCenter.shared.addTestObserver(DirectoryRemover(path: directory))
        plain = directory + "/symbolize_plain"
        inline = directory + "/symbolize_inline"
        cxx = directory + "/symbolize_cxx"
        strippedLibrary = directory + "/libsymbolize_library.so"
        let pie = ["-fPIE", "-pie", "-Wl,--build-id"]
        try SymKit.Programs.compile("symbolize_plain.c", compiler: "cc", flags: ["-g", "-O0"] + pie, output: plain)
        try SymKit.Programs.compile("symbolize_inline.c", compiler: "cc", flags: ["-g", "-O2"] + pie, output: inline)
        try SymKit.Programs.compile("symbolize_cxx.cpp", compiler: "c++", flags: ["-g", "-O0"] + pie, output: cxx)
        let unstrippedLibrary = directory + "/libsymbolize_library.unstripped.so"
        try SymKit.Programs.compile("symbolize_library.c", compiler: "cc",
                                 flags: ["-g", "-O0", "-fPIC", "-shared", "-Wl,--build-id"], output: unstrippedLibrary)
        try SymKit.run("strip", ["--strip-all", "-o", strippedLibrary, unstrippedLibrary])
    }
}

/// Removes the shared binaries when the test run is over.
private final class DirectoryRemover: NSObject, XCTestObservation {
    let path: String
    init(path: String) { self.path = path }
    func testBundleDidFinish(_ testBundle: Bundle) {
        try? FileManager.default.removeItem(atPath: path)
    }
}

final class SymbolizationTests: XCTestCase {
    private func binaries() throws -> SymbolizationBinaries { try SymbolizationBinaries.shared.get() }

    // MARK: Plain C at -O0

    func testReturnAddressInCFunctionResolvesToTheCallLine() throws {
        let binary = try binaries().plain
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller", binary: binary)
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        let symbolizer = Symbolizer()

        let frames = symbolizer.symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)

        let expectedLine = try SymKit.Programs.line(of: "caller_calls_leaf", in: "symbolize_plain.c")
        // The column of the call: where `plain_leaf(` starts on the marked line.
        let sourceLine = try String(contentsOfFile: SymKit.Programs.source("symbolize_plain.c"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)[expectedLine - 1]
        let expectedColumn = try XCTUnwrap(sourceLine.range(of: "plain_leaf(")).lowerBound.utf16Offset(in: sourceLine) + 1
        XCTAssertEqual(frames, [SymbolizedFrame(
            address: SymKit.bias + offset, module: binary, moduleOffset: offset, function: "plain_caller",
            file: SymKit.Programs.source("symbolize_plain.c"), line: expectedLine, column: expectedColumn,
            isInlined: false)])
        let oracle = try SymKit.Oracle.addr2line(binary, offset: offset - 1)
        XCTAssertEqual(oracle.map(\.function), ["plain_caller"])
        XCTAssertEqual(oracle.map(\.line), [expectedLine])
        XCTAssertEqual(try SymKit.Oracle.llvmSymbolizer(binary, offset: offset - 1).map(\.column), [expectedColumn])
        XCTAssertEqual(frames.first?.displayName,
                       "plain_caller (\(SymKit.Programs.source("symbolize_plain.c")):\(expectedLine))")
        XCTAssertEqual(symbolizer.warnings, [])
        XCTAssertEqual(symbolizer.modulesWithoutDebugInfo, [])
    }

    /// GCC puts a function's prologue on the line of its opening brace.
    func testFunctionEntryResolvesToItsOpeningBraceLine() throws {
        let binary = try binaries().plain
        let start = try SymKit.Oracle.symbol("plain_leaf", in: binary)
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)

        let frames = Symbolizer().symbolize(address: SymKit.bias + start + 4, module: module, isReturnAddress: false)

        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(frames.first?.function, "plain_leaf")
        XCTAssertEqual(frames.first?.line, try SymKit.Programs.line(of: "leaf_entry", in: "symbolize_plain.c"))
        XCTAssertEqual(frames.first?.moduleOffset, start + 4)
    }

    /// A return address equal to a function's first byte means the call was the last instruction
    /// of the function before it: address - 1 must be looked up, not the address itself.
    func testReturnAddressIsLookedUpOneByteEarlier() throws {
        let binary = try binaries().plain
        let functions = try SymKit.Oracle.sizedFunctions(binary, dynamic: false)
        guard let leaf = functions.first(where: { $0.name == "plain_leaf" }),
              let caller = functions.first(where: { $0.name == "plain_caller" }) else {
            return XCTFail("plain_leaf and plain_caller must be in the symbol table")
        }
        XCTAssertEqual(leaf.start + leaf.size, caller.start, "the test needs plain_leaf to end where plain_caller starts")
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        let symbolizer = Symbolizer()

        let asReturn = symbolizer.symbolize(address: SymKit.bias + caller.start, module: module, isReturnAddress: true)
        let asPlain = symbolizer.symbolize(address: SymKit.bias + caller.start, module: module, isReturnAddress: false)

        XCTAssertEqual(asReturn.map(\.function), ["plain_leaf"])
        XCTAssertEqual(asReturn.map(\.line), [try SymKit.Programs.line(of: "leaf_end", in: "symbolize_plain.c")])
        XCTAssertEqual(asReturn.map(\.address), [SymKit.bias + caller.start], "the captured address is reported")
        XCTAssertEqual(asPlain.map(\.function), ["plain_caller"])
    }

    /// DW_AT_linkage_name holds the assembler label; the source name is what a reader greps for.
    func testAssemblerLabelledFunctionKeepsItsSourceName() throws {
        let binary = try binaries().plain
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "calloc", in: "labelled_allocation_internal", binary: binary)
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)

        let frames = Symbolizer().symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)

        XCTAssertEqual(frames.map(\.function), ["labelled_allocation"])
        XCTAssertEqual(frames.map(\.line), [try SymKit.Programs.line(of: "labelled_calloc", in: "symbolize_plain.c")])
        XCTAssertTrue(try SymKit.run("readelf", ["--debug-dump=info", binary]).contains("labelled_allocation_internal"),
                      "the test needs the label recorded as DW_AT_linkage_name")
    }

    // MARK: Inline chain at -O2

    func testInlinedCallGivesTheInlineChainInnermostFirst() throws {
        let binary = try binaries().inline
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "inline_sink", in: "inline_outer", binary: binary)
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        let source = SymKit.Programs.source("symbolize_inline.c")

        let frames = Symbolizer().symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)

        let helperLine = try SymKit.Programs.line(of: "helper_calls_sink", in: "symbolize_inline.c")
        let outerLine = try SymKit.Programs.line(of: "outer_calls_helper", in: "symbolize_inline.c")
        XCTAssertEqual(frames.map(\.function), ["inline_helper", "inline_outer"])
        XCTAssertEqual(frames.map(\.file), [source, source])
        XCTAssertEqual(frames.map(\.line), [helperLine, outerLine])
        XCTAssertEqual(frames.map(\.isInlined), [true, false])
        XCTAssertEqual(frames.map(\.address), [SymKit.bias + offset, SymKit.bias + offset])
        XCTAssertEqual(frames.map(\.moduleOffset), [offset, offset])
        let oracle = try SymKit.Oracle.addr2line(binary, offset: offset - 1)
        XCTAssertEqual(oracle.map(\.function), frames.compactMap(\.function))
        XCTAssertEqual(oracle.map(\.line), frames.compactMap(\.line))
    }

    /// Two levels of inlining: the chain must name the function each was inlined into, not the
    /// scopes around the inlined function's own definition.
    func testNestedInlineChainNamesEveryLevel() throws {
        let binary = try binaries().inline
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "inline_sink", in: "inline_nested_outer", binary: binary)
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)

        let frames = Symbolizer().symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)

        XCTAssertEqual(frames.map(\.function), ["inline_inner", "inline_middle", "inline_nested_outer"])
        XCTAssertEqual(frames.map(\.line), [
            try SymKit.Programs.line(of: "inner_calls_sink", in: "symbolize_inline.c"),
            try SymKit.Programs.line(of: "middle_calls_inner", in: "symbolize_inline.c"),
            try SymKit.Programs.line(of: "nested_outer_calls_middle", in: "symbolize_inline.c"),
        ])
        XCTAssertEqual(frames.map(\.isInlined), [true, true, false])
        let oracle = try SymKit.Oracle.addr2line(binary, offset: offset - 1)
        XCTAssertEqual(oracle.map(\.function), frames.compactMap(\.function))
        XCTAssertEqual(oracle.map(\.line), frames.compactMap(\.line))
        // Columns of the three calls (inline_sink(, inline_inner(, inline_middle( on their lines).
        let llvm = try SymKit.Oracle.llvmSymbolizer(binary, offset: offset - 1)
        XCTAssertEqual(llvm.map(\.function), frames.compactMap(\.function))
        XCTAssertEqual(frames.map(\.column), llvm.map(\.column))
        XCTAssertEqual(frames.compactMap(\.column).count, 3)
    }

    /// With -gsplit-dwarf the binary keeps a skeleton unit and the line table; functions and
    /// inline information are in a .dwo file next to the compilation directory.
    func testSplitDWARFReadsFunctionsFromTheDwoFile() throws {
        let directory = try SymKit.scratchDirectory("split", removedAfter: self)
        let binary = directory + "/split"
        try SymKit.run("cc", ["-g", "-gsplit-dwarf", "-O2", "-fPIE", "-pie", SymKit.Programs.source("symbolize_inline.c"),
                           "-o", binary], in: directory)
        let dwo = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".dwo") })
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "inline_sink", in: "inline_nested_outer", binary: binary)
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        let lines = [
            try SymKit.Programs.line(of: "inner_calls_sink", in: "symbolize_inline.c"),
            try SymKit.Programs.line(of: "middle_calls_inner", in: "symbolize_inline.c"),
            try SymKit.Programs.line(of: "nested_outer_calls_middle", in: "symbolize_inline.c"),
        ]

        let frames = Symbolizer().symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
        XCTAssertEqual(frames.map(\.function), ["inline_inner", "inline_middle", "inline_nested_outer"])
        XCTAssertEqual(frames.map(\.line), lines)

        // Without the .dwo only the skeleton's line table and the symbol table remain.
        try FileManager.default.removeItem(atPath: directory + "/" + dwo)
        let withoutDwo = Symbolizer().symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
        XCTAssertEqual(withoutDwo.map(\.function), ["inline_nested_outer"])
        XCTAssertEqual(withoutDwo.map(\.line), [lines[0]])
    }

    // MARK: Producers without .debug_aranges

    /// clang (like swiftc and rustc) emits no .debug_aranges; units must be found by their own ranges.
    func testClangBinaryWithoutArangesResolvesLines() throws {
        let fixtures = try binaries()
        let binary = fixtures.directory + "/symbolize_plain.clang"
        try SymKit.Programs.compile("symbolize_plain.c", compiler: "clang", flags: ["-g", "-O0", "-fPIE", "-pie", "-Wl,--build-id"],
                                 output: binary)
        XCTAssertFalse(try SymKit.run("readelf", ["-SW", binary]).contains(".debug_aranges"),
                       "the test needs a binary without .debug_aranges")
        let (address, module) = try SymKit.plainCallSite(in: binary)

        let frames = Symbolizer().symbolize(address: address, module: module, isReturnAddress: true)

        XCTAssertEqual(frames.map(\.function), ["plain_caller"])
        XCTAssertEqual(frames.map(\.file), [SymKit.Programs.source("symbolize_plain.c")])
        XCTAssertEqual(frames.map(\.line), [try SymKit.Programs.line(of: "caller_calls_leaf", in: "symbolize_plain.c")])
    }

    /// A binary linked from a GCC object (listed in .debug_aranges) and a clang one (not listed):
    /// units the section lists take their ranges from it, and the unit it leaves out must still
    /// be found by its own ranges.
    func testUnitMissingFromArangesIsFoundByItsOwnRanges() throws {
        let directory = try SymKit.scratchDirectory("mixed-aranges", removedAfter: self)
        let plainObject = directory + "/plain.o", libraryObject = directory + "/library.o"
        let binary = directory + "/mixed"
        try SymKit.Programs.compile("symbolize_plain.c", compiler: "clang", flags: ["-c", "-g", "-O0", "-fPIE"], output: plainObject)
        try SymKit.Programs.compile("symbolize_library.c", compiler: "cc", flags: ["-c", "-g", "-O0", "-fPIE"], output: libraryObject)
        try SymKit.run("cc", ["-pie", "-Wl,--build-id", "-o", binary, plainObject, libraryObject])
        let aranges = try SymKit.run("readelf", ["--debug-dump=aranges", binary])
        XCTAssertTrue(aranges.contains("Length:"), "the test needs .debug_aranges from the GCC object")
        XCTAssertEqual(aranges.components(separatedBy: "Length:").count - 1, 1, "only the GCC unit is listed")
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)

        let (address, _) = try SymKit.plainCallSite(in: binary)
        let plain = Symbolizer().symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(plain.map(\.function), ["plain_caller"])
        XCTAssertEqual(plain.map(\.line), [try SymKit.Programs.line(of: "caller_calls_leaf", in: "symbolize_plain.c")])

        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "library_hidden_helper", in: "symbolize_library_entry", binary: binary)
        let library = Symbolizer().symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
        let truth = try SymKit.Oracle.addr2line(binary, offset: offset - 1)
        XCTAssertEqual(library.compactMap(\.function), ["symbolize_library_entry"])
        XCTAssertEqual(library.compactMap(\.line), truth.map(\.line))
        XCTAssertEqual(library.compactMap(\.file), [SymKit.Programs.source("symbolize_library.c")])
    }

    /// Builds made with -fdebug-prefix-map (as distributions do) record a relative compilation
    /// directory; file names are reported relative to it, with `.` and `..` folded.
    func testRelativeCompilationDirectoryIsJoinedAndFolded() throws {
        let directory = try SymKit.scratchDirectory("prefixmap", removedAfter: self)
        try FileManager.default.createDirectory(atPath: directory + "/src", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: SymKit.Programs.source("symbolize_plain.c"),
                                         toPath: directory + "/src/symbolize_plain.c")
        let binary = directory + "/mapped"
        try SymKit.run("cc", ["-g", "-O0", "-fPIE", "-pie", "-fdebug-prefix-map=\(directory)=./build",
                           "src/symbolize_plain.c", "-o", binary], in: directory)
        XCTAssertTrue(try SymKit.run("readelf", ["--debug-dump=info", binary]).contains("./build"),
                      "the test needs a relative DW_AT_comp_dir")
        let (address, module) = try SymKit.plainCallSite(in: binary)

        let frames = Symbolizer().symbolize(address: address, module: module, isReturnAddress: true)

        XCTAssertEqual(frames.map(\.file), ["build/src/symbolize_plain.c"])
        XCTAssertEqual(frames.map(\.line), [try SymKit.Programs.line(of: "caller_calls_leaf", in: "symbolize_plain.c")])
    }

    // MARK: Whole stacks

    /// A stack through two modules and a gap: inline chains are flattened in order and each
    /// address is matched to its own module.
    func testStackIsFlattenedInnermostFirstAcrossModules() throws {
        let fixtures = try binaries()
        let inlineModule = try SymKit.Oracle.module(fixtures.inline, bias: SymKit.bias)
        let plainModule = try SymKit.Oracle.module(fixtures.plain, bias: 0x7f55_0000_0000)
        let inner = SymKit.bias + (try SymKit.Oracle.returnAddress(afterCallTo: "inline_sink", in: "inline_outer", binary: fixtures.inline))
        let outer = plainModule.bias + (try SymKit.Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller",
                                                                    binary: fixtures.plain))
        let unmapped: UInt64 = 0x10

        let frames = Symbolizer().symbolize(stack: [inner, outer, unmapped]) { address in
            [inlineModule, plainModule].first { module in module.segments.contains { $0.contains(address) } }
        }

        XCTAssertEqual(frames.map(\.function), ["inline_helper", "inline_outer", "plain_caller", nil])
        XCTAssertEqual(frames.map(\.address), [inner, inner, outer, unmapped])
        XCTAssertEqual(frames.map(\.module), [fixtures.inline, fixtures.inline, fixtures.plain, nil])
        XCTAssertEqual(frames.map(\.isInlined), [true, false, false, false])
    }

    // MARK: C++

    func testCxxTemplateMemberInNamespaceIsDemangled() throws {
        let binary = try binaries().cxx
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        let symbolizer = Symbolizer()
        let source = SymKit.Programs.source("symbolize_cxx.cpp")

        let callOffset = try SymKit.Oracle.returnAddress(afterCallTo: "_ZN4leak3BoxIiE4makeEi",
                                                     in: "_ZN4leak6detail5buildEi", binary: binary)
        let caller = symbolizer.symbolize(address: SymKit.bias + callOffset, module: module, isReturnAddress: true)
        XCTAssertEqual(caller.map(\.function), ["leak::detail::build(int)"])
        XCTAssertEqual(caller.map(\.file), [source])
        XCTAssertEqual(caller.map(\.line), [try SymKit.Programs.line(of: "build_calls_make", in: "symbolize_cxx.cpp")])

        let mallocOffset = try SymKit.Oracle.returnAddress(afterCallTo: "malloc", in: "_ZN4leak3BoxIiE4makeEi", binary: binary)
        let member = symbolizer.symbolize(address: SymKit.bias + mallocOffset, module: module, isReturnAddress: true)
        XCTAssertEqual(member.map(\.function), ["leak::Box<int>::make(int)"])
        XCTAssertEqual(member.map(\.line), [try SymKit.Programs.line(of: "box_make_malloc", in: "symbolize_cxx.cpp")])
        XCTAssertEqual(try SymKit.Oracle.addr2line(binary, offset: mallocOffset - 1).map(\.function),
                       ["leak::Box<int>::make(int)"])
    }

    // MARK: Rust

    /// rustc's default (legacy) mangling through DWARF linkage names, end to end.
    func testRustFunctionIsDemangledWithoutItsHash() throws {
        guard (try? SymKit.run("rustc", ["--version"])) != nil else { throw missingTool("rustc", package: "rustc") }
        let directory = try SymKit.scratchDirectory("rust", removedAfter: self)
        let source = directory + "/demo.rs"
        let lines = [
            "#[inline(never)]",
            "pub fn make_buffer(length: usize) -> Vec<u8> {",
            "    let buffer = vec![7u8; length];",
            "    std::hint::black_box(buffer)",
            "}",
            "fn main() {",
            "    let buffer = make_buffer(std::env::args().count());",
            "    std::hint::black_box(&buffer);",
            "}",
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: source, atomically: true, encoding: .utf8)
        let binary = directory + "/demo"
        try SymKit.run("rustc", ["-g", "-C", "opt-level=0", "--crate-name", "demo", source, "-o", binary])
        guard let mangled = try SymKit.Oracle.symbols(binary).keys.first(where: {
            $0.hasPrefix("_ZN4demo11make_buffer17h") && $0.hasSuffix("E")
        }) else { return XCTFail("no legacy-mangled demo::make_buffer in \(binary)") }
        let callee = try XCTUnwrap(try SymKit.run("objdump", ["-d", "--no-show-raw-insn", binary])
            .split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasSuffix("<\(mangled)>:") }.dropFirst()
            .prefix { !$0.isEmpty }.first { $0.contains("call") }?
            .split(separator: "<").last?.split(separator: ">").first.map(String.init))
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: callee, in: mangled, binary: binary)
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)

        let frames = Symbolizer().symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)

        XCTAssertEqual(frames.last?.function, "demo::make_buffer")
        XCTAssertEqual(frames.last?.file, source)
        // The first call in make_buffer is the one vec! expands to, on line 3.
        let expectedLine = 3
        XCTAssertEqual(frames.last?.line, expectedLine)
    }

    // MARK: Stripped binaries

    func testStrippedExecutableGivesModuleAndOffset() throws {
        let fixtures = try binaries()
        let stripped = fixtures.directory + "/symbolize_plain.stripped"
        try SymKit.run("strip", ["--strip-all", "-o", stripped, fixtures.plain])
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller", binary: fixtures.plain)
        let module = try SymKit.Oracle.module(stripped, bias: SymKit.bias)
        let symbolizer = Symbolizer(options: SymbolizerOptions(debugDirectories: []))

        let frames = symbolizer.symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)

        XCTAssertEqual(frames, [SymbolizedFrame(address: SymKit.bias + offset, module: stripped, moduleOffset: offset)])
        XCTAssertEqual(frames.first?.displayName, "symbolize_plain.stripped+0x" + String(offset, radix: 16))
        XCTAssertEqual(symbolizer.modulesWithoutDebugInfo, [stripped])
        XCTAssertEqual(symbolizer.warnings, [])
    }

    func testStrippedLibraryNamesExportedFunctionsFromDynsym() throws {
        let library = try binaries().strippedLibrary
        let module = try SymKit.Oracle.module(library, bias: 0x7f12_3400_0000)
        let symbolizer = Symbolizer(options: SymbolizerOptions(debugDirectories: []))
        let entry = try XCTUnwrap(SymKit.Oracle.symbols(library, dynamic: true)["symbolize_library_entry"])

        let exported = symbolizer.symbolize(address: module.bias + entry + 4, module: module, isReturnAddress: false)
        XCTAssertEqual(exported, [SymbolizedFrame(address: module.bias + entry + 4, module: library,
                                                  moduleOffset: entry + 4, function: "symbolize_library_entry")])
        XCTAssertEqual(exported.first?.displayName, "symbolize_library_entry (libsymbolize_library.so+0x"
                       + String(entry + 4, radix: 16) + ")")

        // The static helper has no .dynsym entry; the unstripped copy says where it is.
        let helper = try SymKit.Oracle.symbol("library_hidden_helper",
                                          in: try binaries().directory + "/libsymbolize_library.unstripped.so")
        let hidden = symbolizer.symbolize(address: module.bias + helper + 4, module: module, isReturnAddress: false)
        XCTAssertEqual(hidden, [SymbolizedFrame(address: module.bias + helper + 4, module: library,
                                                moduleOffset: helper + 4)])
    }

    // MARK: Separate debug files

    private func splitDebugInfo(_ label: String, debugLink: Bool) throws -> (directory: String, binary: String, debug: String) {
        try SymKit.splitDebugInfo(of: try binaries().plain, label: label, debugLink: debugLink, removedAfter: self)
    }

    func testSeparateDebugFileIsFoundInBuildIDDirectory() throws {
        let split = try splitDebugInfo("buildid", debugLink: false)
        let root = split.directory + "/debug-root"
        XCTAssertEqual(try SymKit.Oracle.buildID(split.binary).count, 20)
        try SymKit.moveToBuildIDDirectory(split.debug, of: split.binary, root: root)
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller", binary: try binaries().plain)
        let module = try SymKit.Oracle.module(split.binary, bias: SymKit.bias)
        let expectedLine = try SymKit.Programs.line(of: "caller_calls_leaf", in: "symbolize_plain.c")

        let withRoot = Symbolizer(options: SymbolizerOptions(debugDirectories: [root]))
            .symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
        XCTAssertEqual(withRoot.map(\.function), ["plain_caller"])
        XCTAssertEqual(withRoot.map(\.file), [SymKit.Programs.source("symbolize_plain.c")])
        XCTAssertEqual(withRoot.map(\.line), [expectedLine])

        // Without the directory there is nothing to find.
        let without = Symbolizer(options: SymbolizerOptions(debugDirectories: []))
            .symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
        XCTAssertEqual(without, [SymbolizedFrame(address: SymKit.bias + offset, module: split.binary, moduleOffset: offset)])
    }

    func testSeparateDebugFileIsFoundThroughDebugLink() throws {
        let split = try splitDebugInfo("debuglink", debugLink: true)
        let (address, module) = try SymKit.plainCallSite(in: try binaries().plain, loadedAs: split.binary)
        let expectedLine = try SymKit.Programs.line(of: "caller_calls_leaf", in: "symbolize_plain.c")

        // Next to the binary.
        let beside = Symbolizer(options: SymbolizerOptions(debugDirectories: []))
            .symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(beside.map(\.function), ["plain_caller"])
        XCTAssertEqual(beside.map(\.line), [expectedLine])

        // In the .debug subdirectory.
        try FileManager.default.createDirectory(atPath: split.directory + "/.debug", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: split.debug, toPath: split.directory + "/.debug/symbolize_plain.debug")
        let inSubdirectory = Symbolizer(options: SymbolizerOptions(debugDirectories: []))
            .symbolize(address: address, module: module, isReturnAddress: true)
        XCTAssertEqual(inSubdirectory.map(\.line), [expectedLine])
    }

    /// Distributions install debuglink targets under the debug root plus the binary's own
    /// directory (/usr/lib/debug/usr/bin/app.debug for /usr/bin/app).
    func testDebugLinkTargetIsFoundUnderTheDebugRootMirroringTheBinaryDirectory() throws {
        let split = try splitDebugInfo("mirror", debugLink: true)
        let root = split.directory + "/debug-root"
        let mirrored = root + split.directory
        try FileManager.default.createDirectory(atPath: mirrored, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: split.debug, toPath: mirrored + "/symbolize_plain.debug")
        let (address, module) = try SymKit.plainCallSite(in: try binaries().plain, loadedAs: split.binary)

        let frames = Symbolizer(options: SymbolizerOptions(debugDirectories: [root]))
            .symbolize(address: address, module: module, isReturnAddress: true)

        XCTAssertEqual(frames.map(\.function), ["plain_caller"])
        XCTAssertEqual(frames.map(\.line), [try SymKit.Programs.line(of: "caller_calls_leaf", in: "symbolize_plain.c")])
    }

    /// dwz moves DWARF shared by several debug files into one "alt" file named by
    /// .gnu_debugaltlink (Debian's /usr/lib/debug/.dwz/...). Names of inlined functions then live
    /// only there. It is found relative to the debug file, or by its build-id.
    func testDwzAltFileIsFoundRelativeToTheDebugFileAndByBuildID() throws {
        guard (try? SymKit.run("dwz", ["--version"])) != nil else { throw missingTool("dwz", package: "dwz") }
        let binary = try binaries().inline
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "inline_sink", in: "inline_nested_outer", binary: binary)
        let expectedNames = ["inline_inner", "inline_middle", "inline_nested_outer"]

        for layout in ["relative", "build-id"] {
            let directory = try SymKit.scratchDirectory("dwz-\(layout)", removedAfter: self)
            let twin = directory + "/twin"
            try SymKit.Programs.compile("symbolize_inline.c", compiler: "cc",
                                     flags: ["-g", "-O2", "-fPIE", "-pie", "-Wl,--build-id=0x00112233445566778899"],
                                     output: twin)
            let stripped = directory + "/symbolize_inline"
            try SymKit.run("strip", ["--strip-all", "-o", stripped, binary])
            try SymKit.run("objcopy", ["--only-keep-debug", binary, directory + "/main.debug"])
            try SymKit.run("objcopy", ["--only-keep-debug", twin, directory + "/twin.debug"])
            let altName = layout == "relative" ? "../../.dwz/common.debug" : "/nonexistent/leaktrace/common.debug"
            try SymKit.run("dwz", ["-m", directory + "/common.debug", "-M", altName,
                                directory + "/main.debug", directory + "/twin.debug"])

            // The debug file goes where its build-id says; the alt file per the layout under test.
            let root = directory + "/debug-root"
            let mainHex = try SymKit.Oracle.buildID(stripped).map { String(format: "%02x", $0) }.joined()
            try FileManager.default.createDirectory(atPath: root + "/.build-id/" + mainHex.prefix(2),
                                                    withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: directory + "/main.debug",
                                             toPath: root + "/.build-id/" + mainHex.prefix(2) + "/" + mainHex.dropFirst(2) + ".debug")
            let module = try SymKit.Oracle.module(stripped, bias: SymKit.bias)
            let withoutAlt = Symbolizer(options: SymbolizerOptions(debugDirectories: [root]))
                .symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
            // Without it the chain and lines are there, but the inlined functions' names are not
            // (the physical function's name still comes from the debug file's .symtab).
            XCTAssertEqual(withoutAlt.map(\.function), [nil, nil, "inline_nested_outer"], layout)

            let altDestination: String
            if layout == "relative" {
                altDestination = root + "/.dwz/common.debug"
            } else {
                let altHex = try SymKit.Oracle.buildID(directory + "/common.debug").map { String(format: "%02x", $0) }.joined()
                altDestination = root + "/.build-id/" + altHex.prefix(2) + "/" + altHex.dropFirst(2) + ".debug"
            }
            try FileManager.default.createDirectory(atPath: (altDestination as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: directory + "/common.debug", toPath: altDestination)

            let frames = Symbolizer(options: SymbolizerOptions(debugDirectories: [root]))
                .symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
            XCTAssertEqual(frames.map(\.function), expectedNames, layout)
            XCTAssertEqual(frames.map(\.line), [
                try SymKit.Programs.line(of: "inner_calls_sink", in: "symbolize_inline.c"),
                try SymKit.Programs.line(of: "middle_calls_inner", in: "symbolize_inline.c"),
                try SymKit.Programs.line(of: "nested_outer_calls_middle", in: "symbolize_inline.c"),
            ], layout)
        }
    }

    /// A debug file with the linked name but from another build must not be used: its lines
    /// would be wrong with full confidence.
    func testDebugFileFromAnotherBuildIsRejected() throws {
        let split = try splitDebugInfo("stale", debugLink: true)
        let otherBuild = split.directory + "/other"
        try SymKit.Programs.compile("symbolize_plain.c", compiler: "cc",
                                 flags: ["-g", "-O0", "-fPIE", "-pie", "-DOTHER_BUILD=1", "-Wl,--build-id=0x0123456789abcdef"],
                                 output: otherBuild)
        try FileManager.default.removeItem(atPath: split.debug)
        try SymKit.run("objcopy", ["--only-keep-debug", otherBuild, split.debug])
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller", binary: try binaries().plain)
        let module = try SymKit.Oracle.module(split.binary, bias: SymKit.bias)
        let symbolizer = Symbolizer(options: SymbolizerOptions(debugDirectories: []))

        let frames = symbolizer.symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)

        XCTAssertEqual(frames, [SymbolizedFrame(address: SymKit.bias + offset, module: split.binary, moduleOffset: offset)])
        XCTAssertEqual(symbolizer.modulesWithoutDebugInfo, [split.binary])
    }

    // MARK: Untrusted and missing files

    func testBuildIDMismatchWarnsOnceAndGivesModuleAndOffset() throws {
        let binary = try binaries().plain
        var module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        let realID = module.buildID
        module.buildID = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33]
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller", binary: binary)
        let symbolizer = Symbolizer()

        let first = symbolizer.symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
        let second = symbolizer.symbolize(address: SymKit.bias + offset + 8, module: module, isReturnAddress: true)

        XCTAssertEqual(first, [SymbolizedFrame(address: SymKit.bias + offset, module: binary, moduleOffset: offset)])
        XCTAssertEqual(second, [SymbolizedFrame(address: SymKit.bias + offset + 8, module: binary, moduleOffset: offset + 8)])
        let realHex = realID.map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(symbolizer.warnings, [
            "\(binary): build-id on disk (\(realHex)) differs from the traced build-id (deadbeef00112233); "
                + "the file has changed since the trace, so its frames are shown as module+offset",
        ])
    }

    func testMissingModuleFileWarnsOnce() throws {
        let module = Module(path: "/nonexistent/leaktrace/libgone.so", bias: 0x7f00_0000_0000, buildID: [1, 2, 3, 4],
                            segments: [ModuleSegment(start: 0x7f00_0000_1000, size: 0x1000, flags: 5)])
        let symbolizer = Symbolizer()

        let first = symbolizer.symbolize(address: 0x7f00_0000_1234, module: module, isReturnAddress: true)
        _ = symbolizer.symbolize(address: 0x7f00_0000_1300, module: module, isReturnAddress: true)

        XCTAssertEqual(first, [SymbolizedFrame(address: 0x7f00_0000_1234, module: module.path, moduleOffset: 0x1234)])
        XCTAssertEqual(first.first?.displayName, "libgone.so+0x1234")
        XCTAssertEqual(symbolizer.warnings, [
            "/nonexistent/leaktrace/libgone.so: cannot read the module (No such file or directory); "
                + "its frames are shown as module+offset",
        ])
    }

    func testModulePathThatIsAFIFODoesNotBlock() throws {
        let directory = try SymKit.scratchDirectory("fifo", removedAfter: self)
        let fifo = directory + "/libfifo.so"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let module = Module(path: fifo, bias: 0x1000_0000, buildID: [], segments: [])
        let symbolizer = Symbolizer()

        let frames = symbolizer.symbolize(address: 0x1000_0040, module: module, isReturnAddress: false)

        XCTAssertEqual(frames, [SymbolizedFrame(address: 0x1000_0040, module: fifo, moduleOffset: 0x40)])
        XCTAssertEqual(symbolizer.warnings,
                       ["\(fifo): cannot read the module (not a regular file); its frames are shown as module+offset"])
    }

    func testModuleThatIsNotELFWarns() throws {
        let directory = try SymKit.scratchDirectory("notelf", removedAfter: self)
        let path = directory + "/libtext.so"
        try "INPUT(-lc)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let symbolizer = Symbolizer()

        let frames = symbolizer.symbolize(address: 0x2000_0010,
                                          module: Module(path: path, bias: 0x2000_0000, buildID: [], segments: []),
                                          isReturnAddress: true)

        XCTAssertEqual(frames, [SymbolizedFrame(address: 0x2000_0010, module: path, moduleOffset: 0x10)])
        XCTAssertEqual(symbolizer.warnings,
                       ["\(path): cannot read the module (not an ELF file); its frames are shown as module+offset"])
    }

    /// Truncated and scribbled-over copies of a real binary: every lookup must come back (with
    /// whatever can still be read), never crash or hang.
    func testDamagedELFFilesNeverCrash() throws {
        let fixtures = try binaries()
        let original = try Data(contentsOf: URL(fileURLWithPath: fixtures.plain))
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller", binary: fixtures.plain)
        let directory = try SymKit.scratchDirectory("damaged", removedAfter: self)
        var variants: [(String, Data)] = []
        for length in [0, 4, 16, 63, 64, 200, 1_000, 4_096, original.count / 2, original.count - 1] {
            variants.append(("truncated-\(length)", original.prefix(length)))
        }
        // Deterministic scribbles: overwrite 64-byte runs at spread-out offsets (headers, section
        // tables, DWARF) with a repeating pattern.
        for (index, start) in stride(from: 16, to: original.count - 64, by: original.count / 24).enumerated() {
            var copy = original
            for position in start ..< start + 64 { copy[position] = UInt8(truncatingIfNeeded: position &* 131 &+ index) }
            variants.append(("scribbled-\(start)", copy))
        }
        let symbolizer = Symbolizer(options: SymbolizerOptions(debugDirectories: []))
        for (name, bytes) in variants {
            let path = directory + "/" + name
            try bytes.write(to: URL(fileURLWithPath: path))
            let module = Module(path: path, bias: SymKit.bias, buildID: [], segments: [])
            for probe in [offset, offset + 3, 0, 0x40, UInt64(original.count) + 0x1000] {
                let frames = symbolizer.symbolize(address: SymKit.bias + probe, module: module, isReturnAddress: true)
                XCTAssertFalse(frames.isEmpty, name)
                XCTAssertEqual(frames.last?.moduleOffset, probe, name)
                XCTAssertEqual(frames.last?.isInlined, false, name)
            }
        }
        // Files too short to be ELF are reported, once each.
        XCTAssertTrue(symbolizer.warnings.contains("\(directory)/truncated-16: cannot read the module (not an ELF file); "
                                                   + "its frames are shown as module+offset"), "\(symbolizer.warnings)")
    }

    func testVDSOModuleIsGivenAsModuleAndOffsetWithoutWarning() {
        let module = Module(path: "linux-vdso.so.1", bias: 0x7ffd_1000_0000, buildID: [9, 9], segments: [])
        let symbolizer = Symbolizer()

        let frames = symbolizer.symbolize(address: 0x7ffd_1000_0a10, module: module, isReturnAddress: true)

        XCTAssertEqual(frames, [SymbolizedFrame(address: 0x7ffd_1000_0a10, module: "linux-vdso.so.1", moduleOffset: 0xa10)])
        XCTAssertEqual(symbolizer.warnings, [])
        XCTAssertEqual(symbolizer.statistics.modulesOpened, 0)
    }

    func testAddressOutsideEveryModuleIsGivenAsIs() {
        let frames = Symbolizer().symbolize(address: 0x7fff_dead_beef, module: nil, isReturnAddress: true)

        XCTAssertEqual(frames, [SymbolizedFrame(address: 0x7fff_dead_beef)])
        XCTAssertEqual(frames.first?.displayName, "0x7fffdeadbeef")
    }

    // MARK: Caching

    func testEachAddressIsResolvedOnceAndSharedAcrossBiases() throws {
        let binary = try binaries().plain
        let offset = try SymKit.Oracle.returnAddress(afterCallTo: "plain_leaf", in: "plain_caller", binary: binary)
        let module = try SymKit.Oracle.module(binary, bias: SymKit.bias)
        let otherLoad = try SymKit.Oracle.module(binary, bias: 0x5600_0000_0000)
        let symbolizer = Symbolizer()

        let first = symbolizer.symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
        let again = symbolizer.symbolize(address: SymKit.bias + offset, module: module, isReturnAddress: true)
        let elsewhere = symbolizer.symbolize(address: otherLoad.bias + offset, module: otherLoad, isReturnAddress: true)

        XCTAssertEqual(again, first)
        XCTAssertEqual(elsewhere.map(\.address), [otherLoad.bias + offset])
        XCTAssertEqual(elsewhere.map(\.function), ["plain_caller"])
        XCTAssertEqual(elsewhere.map(\.line), first.map(\.line))
        var expected = SymbolizerStatistics()
        expected.requests = 3
        expected.cacheHits = 2
        expected.modulesOpened = 1
        XCTAssertEqual(symbolizer.statistics, expected)
    }
}

// MARK: - SymbolizedFrame

final class SymbolizationFrameTests: XCTestCase {
    func testDisplayNameUsesTheBestInformationAvailable() {
        let full = SymbolizedFrame(address: 0x5555_5555_5169, module: "/usr/bin/app", moduleOffset: 0x1169,
                                   function: "main", file: "/src/app.c", line: 12, column: 5)
        XCTAssertEqual(full.displayName, "main (/src/app.c:12)")

        let symbolOnly = SymbolizedFrame(address: 0x7f00_0002_a1c9, module: "/lib/x86_64-linux-gnu/libc.so.6",
                                         moduleOffset: 0x2a1c9, function: "__libc_start_main")
        XCTAssertEqual(symbolOnly.displayName, "__libc_start_main (libc.so.6+0x2a1c9)")

        // Without a function the frame is its module and offset, as reports group it.
        let noFunction = SymbolizedFrame(address: 0x10, module: "/opt/lib/libx.so", moduleOffset: 0x10,
                                         file: "/src/x.s", line: 3)
        XCTAssertEqual(noFunction.displayName, "libx.so+0x10")
        XCTAssertEqual(noFunction.location, "/src/x.s:3")

        XCTAssertEqual(SymbolizedFrame(address: 0xabc).displayName, "0xabc")
        XCTAssertEqual(SymbolizedFrame(address: 0xabc, function: "f", file: "f.c").displayName, "f (0xabc)")
    }

    func testFramesRoundTripThroughJSON() throws {
        let frame = SymbolizedFrame(address: 1, module: "m", moduleOffset: 1, function: "f", file: "f.c",
                                    line: 2, column: 3, isInlined: true)
        let decoded = try JSONDecoder().decode(SymbolizedFrame.self, from: JSONEncoder().encode(frame))
        XCTAssertEqual(decoded, frame)
    }
}
