import Foundation
import XCTest
import TraceFormat
import LiveSet
import Symbolization
@testable import LeakAnalysis

final class AnalysisTests: XCTestCase {
    var stacks = StackTrie()
    var symbolizer = TableSymbolizer()
    var replay: Replayer!

    override func setUp() {
        stacks = StackTrie()
        symbolizer = TableSymbolizer()
        symbolizer.define(0x2000, "xmalloc", file: "util.c", line: 3)
        symbolizer.define(0x2100, "make_node", file: "tree.c", line: 10)
        symbolizer.define(0x2200, "make_node", file: "tree.c", line: 12)
        symbolizer.define(0x2300, "main", file: "main.c", line: 5)
        symbolizer.define(0x2400, "operator new(unsigned long)", module: "/usr/lib/libstdc++.so.6")
        symbolizer.define(0x2500, "Widget::Widget()", file: "widget.cpp", line: 7)
        symbolizer.define(0x2600, "load_config", file: "config.c", line: 40)
        var header = TraceHeader()
        header.pageSize = 4096
        header.mmapThreshold = 131_072
        replay = Replayer(header: header)
    }

    private func stack(_ frames: [UInt64]) -> UInt32 { stacks.intern(frames: frames) }

    private func alloc(_ address: UInt64, _ size: UInt64, _ stack: UInt32, path: AllocPath = .heap, time: UInt64 = 0) {
        replay.apply(.alloc(function: .malloc, path: path, address: address, size: size, stack: stack), tid: 1, time: time)
    }

    private func analyze(_ configure: (inout AnalysisOptions) -> Void = { _ in }) -> LeakReport {
        var options = AnalysisOptions()
        configure(&options)
        let facts = TraceFacts(path: "t.lt", header: TraceHeader(), outcome: ReadingOutcome(isComplete: true),
                               replay: replay, parentReplayed: false)
        return LeakAnalyzer(options: options).analyze(replay: replay, stacks: stacks, modules: SingleModule(),
                                                      symbolizer: symbolizer, facts: facts)
    }

    func testCallsiteSkipsWrappersAndSeparatesLines() {
        let viaWrapper = stack([0x2000, 0x2100, 0x2300])   // xmalloc <- make_node:10 <- main
        let direct = stack([0x2200, 0x2300])               // make_node:12 <- main
        let cxx = stack([0x2400, 0x2500, 0x2300])          // operator new <- Widget::Widget
        alloc(0x10000, 100, viaWrapper, time: 5_000)
        alloc(0x10100, 300, viaWrapper, time: 9_000)
        alloc(0x10400, 50, direct, time: 7_000)
        alloc(0x10500, 24, cxx, time: 8_000)
        let report = analyze()
        XCTAssertEqual(report.groups.map(\.name),
                       ["make_node (tree.c:10)", "make_node (tree.c:12)", "Widget::Widget() (widget.cpp:7)"])
        let first = report.groups[0]
        XCTAssertEqual(first.blocks, 2)
        XCTAssertEqual(first.bytes, 400)
        XCTAssertEqual(first.smallest, 100)
        XCTAssertEqual(first.largest, 300)
        XCTAssertEqual(first.firstAllocationUs, 5_000)
        XCTAssertEqual(first.lastAllocationUs, 9_000)
        XCTAssertEqual(first.byPath[.heap], Amount(blocks: 2, bytes: 400))
        XCTAssertEqual(first.biggest.address, 0x10100)
        XCTAssertEqual(first.biggest.stack.map(\.function), ["xmalloc", "make_node", "main"])
        XCTAssertEqual(report.summary.leaked, Amount(blocks: 4, bytes: 474))
        XCTAssertEqual(report.summary.groups, 3)
    }

    func testSkipFrameAndOtherGroupings() {
        alloc(0x10000, 100, stack([0x2000, 0x2100, 0x2300]))
        alloc(0x10100, 200, stack([0x2200, 0x2300]))
        alloc(0x10400, 1, stack([0x2600, 0x2300]))
        // make_node is a wrapper too: both its lines fall through to main.
        let skipped = analyze { $0.frameFilter = AllocatorFrameFilter(extraPatterns: ["make_*"]) }
        XCTAssertEqual(skipped.groups.map(\.name), ["main (main.c:5)", "load_config (config.c:40)"])
        XCTAssertEqual(skipped.groups.map(\.bytes), [300, 1])
        let byFunction = analyze { $0.groupBy = .function }
        XCTAssertEqual(byFunction.groups.map(\.name), ["make_node", "load_config"])
        let byFile = analyze { $0.groupBy = .file }
        XCTAssertEqual(byFile.groups.map(\.name), ["tree.c", "config.c"])
        let byModule = analyze { $0.groupBy = .module }
        XCTAssertEqual(byModule.groups.map(\.name), ["/app"])
        XCTAssertEqual(byModule.groups.map(\.blocks), [3])
        let byStack = analyze { $0.groupBy = .stack }
        XCTAssertEqual(byStack.groups.map(\.bytes), [200, 100, 1])
        let limited = analyze { $0.top = 1; $0.minBytes = 0 }
        XCTAssertEqual(limited.groups.count, 1)
        XCTAssertEqual(limited.summary.groups, 3)
        let big = analyze { $0.minBytes = 150 }
        XCTAssertEqual(big.groups.map(\.bytes), [200])
    }

    func testOnlyNeededFramesAreSymbolizedOnce() {
        let deep = stack([0x2000, 0x2100, 0x2300, 0x2600])
        for index in 0..<50 { alloc(0x10000 + UInt64(index) * 0x100, 10, deep) }
        var options = AnalysisOptions()
        options.top = 0   // no group shown: only the call site is needed
        let facts = TraceFacts(path: "t.lt", header: TraceHeader(), outcome: ReadingOutcome(isComplete: true),
                               replay: replay, parentReplayed: false)
        _ = LeakAnalyzer(options: options).analyze(replay: replay, stacks: stacks, modules: SingleModule(),
                                                   symbolizer: symbolizer, facts: facts)
        XCTAssertEqual(symbolizer.requests.sorted(), [0x2000, 0x2100])
    }

    /// Suppression lines are trimmed as Foundation's `trimmingCharacters(in: .whitespaces)`
    /// trims (Foundation itself is not linked into leakreport): tabs and space separators go,
    /// line breaks stay.
    func testSuppressionLinesAreTrimmedOfBlanksOnly() throws {
        for line in ["  leak:x  ", "\tleak:x\u{00A0}", "leak:x\r", "\u{2003}", "", " \r\n ", "leak:\u{3000}a b\u{3000}"] {
            XCTAssertEqual(Suppressions.trimmingBlanks(Substring(line)), line.trimmingCharacters(in: .whitespaces),
                           line.debugDescription)
        }
        let rules = try Suppressions(parsing: "\t leak: x y \u{00A0}\nleak:z\r", name: "f").rules
        XCTAssertEqual(rules.map(\.pattern.text), ["x y", "z"])
    }

    /// A suppressions file written with CRLF line ends (Windows editors) has one rule a line.
    func testSuppressionFileWithCRLFLineEnds() throws {
        let suppressions = try Suppressions(parsing: "# from a Windows editor\r\nleak:load_config\r\n\r\nleak: ^x$ \r\n", name: "w.supp")
        XCTAssertEqual(suppressions.rules.map(\.pattern.text), ["load_config", "^x$"])
        XCTAssertEqual(suppressions.rules.map(\.origin), ["w.supp:2", "w.supp:4"])
        XCTAssertThrowsError(try Suppressions(parsing: "leak:a\r\nrace:b\r\n", name: "w")) {
            XCTAssertEqual(($0 as? SuppressionError)?.description, "w:2: unsupported suppression type 'race' (only 'leak' is)")
        }
    }

    func testSuppressionsRemoveFromGroupsButAreCounted() throws {
        alloc(0x10000, 100, stack([0x2000, 0x2100, 0x2300]))
        alloc(0x10100, 64, stack([0x2600, 0x2300]))
        alloc(0x10200, 36, stack([0x2600, 0x2300]))
        let rules = try Suppressions(parsing: "# comment\nleak:load_config\n\nleak:^nothing$\n", name: "s.supp")
        let report = analyze { $0.suppressions = rules }
        XCTAssertEqual(report.groups.map(\.name), ["make_node (tree.c:10)"])
        XCTAssertEqual(report.summary.leaked, Amount(blocks: 1, bytes: 100))
        XCTAssertEqual(report.summary.suppressed, Amount(blocks: 2, bytes: 100))
        XCTAssertEqual(report.summary.suppressions.map(\.matched), [Amount(blocks: 2, bytes: 100), Amount()])
        XCTAssertEqual(report.summary.suppressions.map(\.origin), ["s.supp:2", "s.supp:4"])
        // A file name and a module name match too.
        let byFile = analyze { $0.suppressions = try! Suppressions(parsing: "leak:tree.c", name: "x") }
        XCTAssertEqual(byFile.summary.suppressed.bytes, 100)
        let byModule = analyze { $0.suppressions = try! Suppressions(parsing: "leak:/app$", name: "x") }
        XCTAssertEqual(byModule.summary.suppressed.bytes, 200)
    }

    func testSuppressionLinesLoseTheirSpacesAndTabsOnly() throws {
        let rules = try Suppressions(parsing: " \tleak:\u{00A0}load_config \t\nleak: x\u{200B}\n", name: "s.supp")
        XCTAssertEqual(rules.rules.map(\.pattern.text), ["load_config", "x\u{200B}"])
    }

    func testSuppressionFileErrors() {
        XCTAssertThrowsError(try Suppressions(parsing: "leak:ok\nrace:foo\n", name: "f")) {
            XCTAssertEqual(($0 as? SuppressionError)?.description, "f:2: unsupported suppression type 'race' (only 'leak' is)")
        }
        XCTAssertThrowsError(try Suppressions(parsing: "nonsense", name: "f")) {
            XCTAssertEqual(($0 as? SuppressionError)?.description, "f:1: expected 'leak:PATTERN', got 'nonsense'")
        }
        XCTAssertThrowsError(try Suppressions(parsing: "leak:", name: "f"))
    }

    func testHeapHoleAndNearTop() {
        let site = stack([0x2600])
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x100000, size: 1000, stack: site), tid: 1, time: 0)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x200000, size: 500, stack: site), tid: 1, time: 0)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x300000, size: 100, stack: site), tid: 1, time: 0)
        replay.apply(.alloc(function: .malloc, path: .mmapThreshold, address: 0x7f0000000000, size: 1 << 20, stack: site), tid: 1, time: 0)
        replay.apply(.free(address: 0x200000), tid: 1, time: 0)
        let report = analyze { $0.nearTopCount = 1 }
        let hole = report.summary.heapHole
        XCTAssertEqual(hole.heapStart, 0x100000)
        XCTAssertEqual(hole.top, 0x300064)
        XCTAssertEqual(hole.liveHeap, Amount(blocks: 2, bytes: 1100))
        XCTAssertEqual(hole.pinnedBytes, 0x200064 - 1100)
        XCTAssertEqual(hole.nearTop.map(\.address), [0x300000])
        XCTAssertEqual(hole.nearTop.first?.callsite?.function, "load_config")
    }

    func testThresholdNoteExplainsLargeHeapBlock() {
        let site = stack([0x2600])
        replay.apply(.alloc(function: .malloc, path: .mmapThreshold, address: 0x7f0000000000, size: 1_000_000, stack: site), tid: 1, time: 1_000)
        replay.apply(.free(address: 0x7f0000000000), tid: 1, time: 2_500_000)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x100000, size: 200_000, stack: site), tid: 1, time: 3_000_000)
        let report = analyze()
        XCTAssertEqual(report.summary.mmapThreshold.moves.map(\.to), [1_003_520])
        XCTAssertEqual(report.summary.mmapThreshold.largeBlocksFromHeap, Amount(blocks: 1, bytes: 200_000))
        XCTAssertEqual(report.groups.first?.thresholdNote,
                       "this 200000-byte block came from the heap: the mmap threshold was raised to 1003520 bytes at 2.500s by freeing a 1000000-byte mmapped block")
    }

    func testMappingsBreakGrowthAndInheritedBlocks() {
        let site = stack([0x2600])
        let parentStacks = StackTrie()
        var parent = Replayer(header: TraceHeader())
        parent.apply(.alloc(function: .malloc, path: .heap, address: 0x50000, size: 77, stack: parentStacks.intern(frames: [0x2600])), tid: 1, time: 3)
        replay.inherit(from: parent, parentStacks: parentStacks)
        replay.apply(.alloc(function: .malloc, path: .heap, address: 0x60000, size: 23, stack: site), tid: 1, time: 4)
        replay.apply(.mmap(addressArgument: 0, length: 8192, prot: 3, flags: 0x01, fd: 3, offset: 0, result: 0x7000_0000,
                           errno: 0, path: "/data/f", stack: site), tid: 1, time: 5)
        replay.apply(.sbrk(increment: 4096, result: 0x900000, breakAfter: 0x901000, stack: site), tid: 1, time: 6)
        let report = analyze()
        // Parent and child blocks from the same frames form one group.
        XCTAssertEqual(report.groups.count, 1)
        let group = report.groups[0]
        XCTAssertEqual(group.blocks, 3)
        XCTAssertEqual(group.bytes, 77 + 23 + 8192)
        XCTAssertEqual(group.inherited, Amount(blocks: 1, bytes: 77))
        XCTAssertEqual(group.byPath[.sharedFile], Amount(blocks: 1, bytes: 8192))
        XCTAssertEqual(report.summary.inherited, Amount(blocks: 1, bytes: 77))
        XCTAssertEqual(report.summary.byPath[.breakGrowth].bytes, 4096)
        XCTAssertEqual(report.summary.leaked, Amount(blocks: 3, bytes: 77 + 23 + 8192 + 4096))
        XCTAssertEqual(report.mappings.map(\.file), ["/data/f"])
        XCTAssertEqual(report.breakGrowth.map(\.netBytes), [4096])
        XCTAssertEqual(report.breakGrowth.first?.callsite?.function, "load_config")
    }

    func testFoldedStacksMergeEqualFrames() {
        alloc(0x10000, 100, stack([0x2000, 0x2100, 0x2300]))
        alloc(0x10100, 5, stack([0x2000, 0x2100, 0x2300]))
        alloc(0x10200, 7, stack([0x2600]))
        let report = analyze { $0.collectStacks = true }
        XCTAssertEqual(report.stacks.map(\.bytes), [105, 7])
        XCTAssertEqual(report.stacks.first?.frames.map(\.function), ["xmalloc", "make_node", "main"])
    }
}

final class AnalysisPatternTests: XCTestCase {
    func testGlob() {
        XCTAssertTrue(GlobPattern("g_malloc*").matches("g_malloc0_n"))
        XCTAssertTrue(GlobPattern("std::allocator<*>::allocate*").matches("std::allocator<int>::allocate(unsigned long)"))
        XCTAssertFalse(GlobPattern("malloc").matches("malloc_wrapper"))
        XCTAssertTrue(GlobPattern("a?c").matches("abc"))
        XCTAssertFalse(GlobPattern("a?c").matches("ac"))
        XCTAssertTrue(GlobPattern("*").matches(""))
    }

    func testTemplate() {
        XCTAssertTrue(TemplatePattern("config").matches("load_config_file"))
        XCTAssertFalse(TemplatePattern("^config").matches("load_config"))
        XCTAssertTrue(TemplatePattern("^load*file$").matches("load_config_file"))
        XCTAssertFalse(TemplatePattern("file$").matches("file.c"))
    }

    /// Templates without wildcards are matched by comparing bytes: the same answers as the glob
    /// they stand for, at either anchor, empty, longer than the name, repeated inside it.
    func testLiteralTemplatesMatchLikeTheirGlobs() {
        let bodies = ["", "a", "ab", "aab", "eh_alloc.cc", "_nl_", "é", "cc1"]
        let names = ["", "a", "ab", "aab", "aaab", "abab", "xaby", "libstdc++/eh_alloc.cc", "eh_alloc.cc.o",
                     "_nl_load_locale", "x_nl_", "é", "café", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1"]
        for body in bodies {
            for (start, end) in [(false, false), (true, false), (false, true), (true, true)] {
                let template = TemplatePattern((start ? "^" : "") + body + (end ? "$" : ""))
                let glob = GlobPattern((start ? "" : "*") + body + (end ? "" : "*"))
                for name in names {
                    XCTAssertEqual(template.matches(name), glob.matches(name), "\(template.text) on \(name)")
                }
            }
        }
    }

    func testDefaultFilter() {
        let filter = AllocatorFrameFilter()
        for name in ["malloc", "operator new(unsigned long)", "operator new[](unsigned long)", "_Znwm",
                     "std::__new_allocator<int>::allocate(unsigned long, void const*)", "xstrdup", "g_malloc0",
                     "swift_allocObject", "PyMem_Malloc", "__libc_calloc", "__GI___strdup"] {
            XCTAssertTrue(filter.isAllocatorFrame(function: name), name)
        }
        for name in ["main", "make_buffer", "mallocator_user", "std::vector<int>::push_back(int const&)"] {
            XCTAssertFalse(filter.isAllocatorFrame(function: name), name)
        }
        // Rust: the allocating types of the alloc crate and std's collections are the allocator
        // (their demangled names carry no element type to tell one Vec's growth from another's);
        // the program's functions and std's other APIs are not.
        for name in ["__rust_alloc", "__rdl_realloc", "alloc::alloc::alloc", "alloc::raw_vec::finish_grow",
                     "<alloc::alloc::Global as core::alloc::Allocator>::allocate", "<alloc::raw_vec::RawVecInner>::finish_grow",
                     "alloc::vec::Vec<T,A>::push", "<str as alloc::borrow::ToOwned>::to_owned",
                     "hashbrown::raw::RawTable<T,A>::reserve_rehash", "std::collections::hash::map::HashMap<K,V,S>::insert",
                     "core::iter::traits::iterator::Iterator::collect"] {
            XCTAssertTrue(filter.isAllocatorFrame(function: name), name)
        }
        for name in ["rust_leaks::make_list", "std::io::read_to_string", "core::ops::function::FnOnce::call_once",
                     "allocate_buffer", "alloc"] {
            XCTAssertFalse(filter.isAllocatorFrame(function: name), name)
        }
        XCTAssertFalse(filter.isAllocatorFrame(function: nil))
        XCTAssertFalse(filter.isAllocatorFrame(function: ""))

        // C++'s standard library by its files and modules, whatever the function's name.
        func frame(_ function: String?, file: String? = nil, module: String? = nil) -> SymbolizedFrame {
            SymbolizedFrame(address: 0x1000, module: module, moduleOffset: nil, function: function, file: file, line: nil)
        }
        XCTAssertTrue(filter.isAllocatorFrame(frame("std::_Vector_base<int, std::allocator<int> >::_M_allocate(unsigned long)",
                                                    file: "/usr/include/c++/12/bits/stl_vector.h")))
        XCTAssertTrue(filter.isAllocatorFrame(frame("std::vector<int> make_list<int>()", file: "/usr/include/c++/v1/vector")))
        XCTAssertTrue(filter.isAllocatorFrame(frame(nil, module: "/usr/lib/x86_64-linux-gnu/libstdc++.so.6")))
        XCTAssertFalse(filter.isAllocatorFrame(frame("std::vector<int> make_list<int>()", file: "/home/me/src/lists.cpp",
                                                     module: "/home/me/bin/app")))
        XCTAssertFalse(filter.isAllocatorFrame(frame("fill()", file: "/home/me/src/include/lists.h")))
        XCTAssertFalse(AllocatorFrameFilter(includeDefaults: false).isAllocatorFrame(frame("f", file: "/usr/include/c++/12/vector")))
    }

    /// Patterns are tried by their first byte: those that start with a wildcard still apply to
    /// every name, and a literal start must match whole.
    func testFilterPatternsStartingWithWildcards() {
        let filter = AllocatorFrameFilter(extraPatterns: ["*_alloc_hook", "?zalloc", "my_new"], includeDefaults: false)
        for name in ["tree_alloc_hook", "_alloc_hook", "xzalloc", "my_new"] {
            XCTAssertTrue(filter.isAllocatorFrame(function: name), name)
        }
        for name in ["zalloc", "alloc_hook", "my_new2", "m", "malloc"] {
            XCTAssertFalse(filter.isAllocatorFrame(function: name), name)
        }
        XCTAssertFalse(GlobPattern("operator new*").matches("operator ne"))
        XCTAssertTrue(GlobPattern("operator new*").matches("operator new"))
    }

    func testFormatting() {
        XCTAssertEqual(formatBytes(1023), "1023 B")
        XCTAssertEqual(formatBytes(1536), "1.50 KiB")
        XCTAssertEqual(formatBytes(200_000), "195.3 KiB")
        XCTAssertEqual(formatBytes(3 << 30), "3.00 GiB")
        XCTAssertEqual(formatTime(2_500_000), "2.500s")
        XCTAssertEqual(formatTime(1_234), "0.001s")
    }
}
