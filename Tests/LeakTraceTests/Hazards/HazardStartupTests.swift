// Hazard cases 1-3 (docs/reliability.md): start-up reentrancy, allocators that map under their
// own lock, and the loader's lock under load. Every case runs each program with and without
// the tracer (HazardKit.runBoth) and then reads the trace.

import Foundation
import XCTest
import TraceFormat
import Symbolization

final class HazardStartupTests: HazardTestCase {
    // MARK: - 1. Bootstrap reentrancy

    /// Another preloaded library whose constructor calls malloc, dlsym and backtrace() (which
    /// makes glibc load libgcc_s, allocating inside the loader), listed ahead of and behind
    /// libleaktrace, and a program whose early constructor allocates.
    func testCase01BootstrapReentrancyWithAnotherPreloadedLibrary() throws {
        let helper = try TracedProgram.buildLibrary("hazard_bootstrap_preload")
        let exe = try HazardKit.build("hazard_bootstrap")
        for run in 1...HazardKit.runsPerCase {
            for helperAhead in [true, false] {
                let label = "run \(run), helper \(helperAhead ? "ahead of" : "behind") libleaktrace"
                var invocation = HazardKit.Invocation(exe)
                if helperAhead { invocation.preloadBefore = [helper] } else { invocation.preloadAfter = [helper] }
                let runs = try HazardKit.runBoth(invocation, label: label)
                XCTAssertEqual(runs.traced.stdout, "preload: next_malloc=1 free=1 backtrace=1 names=1\n"
                               + "main: early=1 kept=1 copy=bootstrap\n", label)
                XCTAssertEqual(runs.traced.status, 0, label)
                let trace = try HazardKit.singleCompleteTrace(runs, label)
                let path = trace.path

                // The program's constructors and main run after every library's constructor, so
                // after the tracer started: each allocation is there once, with its own frame.
                for (size, function) in [(UInt64(2222), "early_allocate"), (2223, "early_allocate"), (3333, "main_allocate")] {
                    XCTAssertEqual(trace.allocationsBySize[size], 1, "\(label): \(size)")
                    guard let block = trace.firstBlockOfSize[size] else { continue }
                    XCTAssertEqual(trace.functionNames(block, limit: 1), [function], "\(label): \(size)")
                }
                XCTAssertEqual(trace.freesBySize[2223], 1, label)
                XCTAssertEqual(trace.liveBlocks(ofSize: 2222).count, 1, label)
                XCTAssertEqual(trace.liveBlocks(ofSize: 3333).count, 1, label)

                // Preloaded objects are initialised last-listed first. With the helper listed
                // ahead, libleaktrace's constructor ran first and the helper's allocations are
                // traced, with their stack; listed behind, the helper ran before tracing began.
                if helperAhead {
                    XCTAssertEqual(trace.allocationsBySize[1111], 1, label)
                    XCTAssertEqual(trace.allocationsBySize[1112], 1, label)
                    XCTAssertEqual(trace.freesBySize[1112], 1, "\(label): freed through a pointer from dlsym")
                    if let block = trace.firstBlockOfSize[1111] {
                        XCTAssertEqual(trace.functionNames(block, limit: 2), ["preload_allocate", "preload_init"], label)
                    }
                } else {
                    XCTAssertNil(trace.allocationsBySize[1111], label)
                    XCTAssertNil(trace.allocationsBySize[1112], label)
                }
                try HazardKit.readWithLeakreport(path, label: label)
            }
        }
    }

    // MARK: - 2. Allocators that map under their own lock

    /// The small test allocator (hazard_mapalloc.c) maps and unmaps while holding its mutex and
    /// aborts if re-entered; a dlopen/dlclose thread runs alongside.
    func testCase02aTestAllocatorThatMapsUnderItsLock() throws {
        let allocator = try TracedProgram.buildLibrary("hazard_mapalloc", flags: ["-pthread"])
        try checkAllocatorThatMapsUnderItsLock(allocator, name: "hazard_mapalloc")
    }

    func testCase02bJemalloc() throws {
        let allocator = try HazardKit.systemLibrary("libjemalloc.so.2", package: "libjemalloc2")
        try checkAllocatorThatMapsUnderItsLock(allocator, name: "jemalloc")
    }

    func testCase02cMimalloc() throws {
        let allocator = try HazardKit.systemLibrary("libmimalloc.so.2", package: "libmimalloc2.0")
        try checkAllocatorThatMapsUnderItsLock(allocator, name: "mimalloc")
    }

    /// Eight threads allocate (small and large blocks, so the allocator maps and unmaps) while a
    /// ninth loops dlopen/dlclose. The allocator is preloaded behind libleaktrace (the tracer
    /// records every allocation, with path unknown) and ahead of it (the tracer says once that
    /// it cannot see allocations; the allocator's mmap calls still reach the tracer's hooks,
    /// from inside the allocator's lock).
    private func checkAllocatorThatMapsUnderItsLock(_ allocator: String, name: String) throws {
        let plugin = try TracedProgram.buildLibrary("hazard_loader_plugin")
        let exe = try HazardKit.build("hazard_mapalloc_threads")
        for run in 1...HazardKit.runsPerCase {
            for allocatorAhead in [false, true] {
                let label = "\(name), run \(run), allocator \(allocatorAhead ? "ahead of" : "behind") libleaktrace"
                var invocation = HazardKit.Invocation(exe, [plugin], timeout: 60)
                if allocatorAhead {
                    invocation.preloadBefore = [allocator]
                    invocation.allowedTracerLines = ["malloc is defined ahead of libleaktrace by \(allocator)"]
                } else {
                    invocation.preloadAfter = [allocator]
                }
                let runs = try HazardKit.runBoth(invocation, label: label)
                XCTAssertEqual(runs.traced.stdout, "threads=8 loader=1 failed=0 kept=8\n", label)
                XCTAssertEqual(runs.tracerLines.count, allocatorAhead ? 1 : 0, "\(label): \(runs.tracerLines)")
                let trace = try HazardKit.singleCompleteTrace(runs, label)
                let path = trace.path
                // The allocator's own mappings are its heap: none is recorded as the program's.
                XCTAssertEqual(trace.mappings, 0, label)
                if allocatorAhead {
                    XCTAssertEqual(trace.allocs, 0, "\(label): the program's calls never reach the tracer")
                } else {
                    XCTAssertEqual(trace.header.allocatorKind, 0, label)
                    XCTAssertEqual(trace.header.allocatorName, allocator, label)
                    XCTAssertEqual(Set(trace.allocationsByPath.keys), [.unknown], label)
                    XCTAssertEqual(trace.liveBlocks(ofSize: 7777).count, 8, label)
                    XCTAssertEqual(trace.doubleLive, 0, label)
                    // 20,000 allocations per worker plus every seventh reallocated.
                    let workerAllocations = trace.allocationsBySize.filter { (8..<153_500).contains($0.key) }.values.reduce(0, +)
                    XCTAssertGreaterThanOrEqual(workerAllocations, 8 * 20_000, label)
                    XCTAssertTrue(trace.notes.contains { $0.hasPrefix("allocator is not glibc's") }, label)
                }
                try HazardKit.readWithLeakreport(path, label: label)
            }
        }
    }

    // MARK: - 3. The loader's lock under load

    /// One thread loops dlopen/dlclose of a library whose constructor allocates, seven allocate,
    /// one walks dl_iterate_phdr with a callback that mallocs. A leak the library made before its
    /// first dlclose is found with its function and file:line.
    func testCase03LoaderLockUnderLoad() throws {
        let plugin = try TracedProgram.buildLibrary("hazard_loader_plugin")
        let exe = try HazardKit.build("hazard_loader")
        let leakLine = try HazardKit.line(of: "leak", in: "hazard_loader_plugin.c")
        let invocation = HazardKit.Invocation(exe, [plugin, "1000"], timeout: 120)
        try HazardKit.eachCompleteTrace(invocation, stdout: "iterations=1000 failed=0 leaked=1\n") { trace, label in
            XCTAssertEqual(trace.doubleLive, 0, label)
            // The constructor's block, made inside the loader's lock, once per dlopen; the
            // destructor frees it before every dlclose.
            XCTAssertEqual(trace.allocationsBySize[4545], 1000, label)
            XCTAssertEqual(trace.freesBySize[4545], 1000, label)
            XCTAssertEqual(trace.liveBlocks(ofSize: 6161).count, 1, label)
            guard let leak = trace.liveBlocks(ofSize: 6161).first else { return }
            let frames = trace.symbolize(leak, with: Symbolizer(), limit: 2)
            XCTAssertEqual(frames.first?.function, "loader_plugin_leak", label)
            XCTAssertEqual(frames.first?.module, plugin, "\(label): the closed library's module is remembered")
            XCTAssertEqual(frames.first?.file.map { URL(fileURLWithPath: $0).lastPathComponent }, "hazard_loader_plugin.c", label)
            XCTAssertEqual(frames.first?.line, leakLine, label)
            XCTAssertEqual(frames.dropFirst().first?.function, "loader", label)
            // Allocations made inside the program's dl_iterate_phdr callback, with the loader's
            // list lock held, are recorded with at least their caller's frame.
            XCTAssertGreaterThan(trace.allocationsBySize[4646] ?? 0, 0, label)
            XCTAssertEqual(trace.freesBySize[4646], trace.allocationsBySize[4646], label)
            if let walk = trace.firstBlockOfSize[4646] {
                XCTAssertEqual(trace.functionNames(walk, limit: 1), ["count_object"], label)
            }
        }
    }
}
