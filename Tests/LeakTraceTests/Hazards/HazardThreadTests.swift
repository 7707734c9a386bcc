// Hazard cases 10 and 11 (docs/reliability.md): exact accounting across eight threads, and
// threads that come and go (joined, detached, with C++ thread_local destructors that allocate).

import Foundation
import XCTest
import TraceFormat

final class HazardThreadTests: HazardTestCase {
    /// 8 threads x 100,000 allocations, half of them freed by another thread: exactly the right
    /// counts, nothing leaked, never a free before its malloc or two live blocks at one address.
    func testCase10ThreadsExactAccounting() throws {
        try HazardKit.eachCompleteTrace(HazardKit.Invocation(try HazardKit.build("hazard_threads_exact"), timeout: 300),
                                        stdout: "threads=8 allocations=800000 handed=400000 failed=0\n") { trace, label in
            let sizes = UInt64(3000)..<3064
            XCTAssertEqual(sizes.reduce(0) { $0 + (trace.allocationsBySize[$1] ?? 0) }, 800_000, label)
            XCTAssertEqual(sizes.reduce(0) { $0 + (trace.freesBySize[$1] ?? 0) }, 800_000, label)
            // 100,000 = 64 x 1,562 + 32: per thread, sizes 3000..3031 come 1,563 times, the rest 1,562.
            XCTAssertEqual(trace.allocationsBySize[3000], 8 * 1563, label)
            XCTAssertEqual(trace.allocationsBySize[3063], 8 * 1562, label)
            XCTAssertEqual(trace.live.values.filter { sizes.contains($0.size) }.count, 0, "\(label): leaked worker blocks")
            XCTAssertEqual(trace.doubleLive, 0, "\(label): two live blocks at one address")
            XCTAssertEqual(trace.unknownFrees, 0, "\(label): a free before its malloc")
            XCTAssertEqual(trace.mappings, 0, "\(label): the program maps nothing itself")
            XCTAssertGreaterThanOrEqual(trace.threads.count, 9, "\(label): the main thread and eight workers")
        }
    }

    /// Threads created and joined in a loop, detached threads exiting while others allocate, and a
    /// thread_local whose destructor allocates and frees at every thread's exit.
    func testCase11ThreadLifecycle() throws {
        try HazardKit.eachCompleteTrace(HazardKit.Invocation(try HazardKit.build("hazard_thread_life"), timeout: 300), stdout: "joined=1200 detached=200 destructors=1404\n") { trace, label in
            // Every thread's destructor ran after its function returned, and was traced.
            XCTAssertEqual(trace.allocationsBySize[5151], 1404, label)
            XCTAssertEqual(trace.freesBySize[5151], 1404, label)
            XCTAssertEqual(trace.allocationsBySize[5150], 1404, label)
            XCTAssertEqual(trace.freesBySize[5150], 1404, label)
            if let block = trace.firstBlockOfSize[5151] {
                let caller = trace.functionNames(block, limit: 1).first ?? ""
                XCTAssertTrue(caller.contains("ExitScratch"), "\(label): allocated by \(caller)")
            }
            // Joined threads: 1,200 x 50 allocations of 128..383 bytes; detached: 200 x 100 of 600..699.
            XCTAssertEqual((UInt64(600)..<700).reduce(0) { $0 + (trace.allocationsBySize[$1] ?? 0) }, 200 * 100, label)
            XCTAssertEqual((UInt64(600)..<700).reduce(0) { $0 + (trace.freesBySize[$1] ?? 0) }, 200 * 100, label)
            for size in UInt64(5150)...5151 {
                XCTAssertTrue(trace.liveBlocks(ofSize: size).isEmpty, "\(label): \(size) leaked")
            }
            XCTAssertEqual(trace.doubleLive, 0, label)
            XCTAssertEqual(trace.unknownFrees, 0, label)
            // The program maps nothing itself; libunwind's per-thread caches are not its mappings.
            XCTAssertEqual(trace.mappings, 0, label)
            XCTAssertGreaterThanOrEqual(trace.threads.count, 1405, "\(label): every thread that allocated")
        }
    }

    /// Threads with the smallest stacks glibc accepts are still created (the tracer's per-thread
    /// stack cache is mapped, not thread-local storage, which comes out of every thread's stack),
    /// and the program's signal masks mean what they meant while the tracer walks stacks with
    /// every signal blocked: a blocked signal stays pending, then is delivered exactly once.
    func testCase14SmallStacksAndSignalMasks() throws {
        let exe = try HazardKit.build("hazard_small_stacks")
        for run in 1...HazardKit.runsPerCase {
            let label = "run \(run)"
            var invocation = HazardKit.Invocation(exe)
            invocation.tracerEnvironment["LEAKTRACE_UNWIND"] = "verify"
            let runs = try HazardKit.runBoth(invocation, label: label)
            XCTAssertEqual(runs.traced.stdout, """
                stack 16384: setstacksize=0 create=ok result=760
                stack 32768: setstacksize=0 create=ok result=760
                stack 65536: setstacksize=0 create=ok result=760
                before: usr1 blocked=0; during: usr1 blocked=1 usr2 blocked=0; pending=1; delivered=0; sum=2470
                after unblock: delivered=1

                """, label)
            let trace = try HazardKit.singleCompleteTrace(runs, label)
            let path = trace.path
            // Three threads recurse 3 levels (sizes 64..67), the main thread 12 (64..76); 20 each.
            XCTAssertEqual(trace.allocationsBySize[64], 4 * 20, label)
            XCTAssertEqual(trace.allocationsBySize[67], 4 * 20, label)
            XCTAssertEqual(trace.allocationsBySize[68], 20, label)
            XCTAssertEqual(trace.allocationsBySize[76], 20, label)
            XCTAssertEqual(trace.freesBySize[76], 20, label)
            let verification = trace.notes.first { $0.hasPrefix("unwind-verify") } ?? ""
            XCTAssertTrue(verification.hasSuffix(" mismatches=0"), "\(label): \(verification)")
            // Cache-filling walks ran (with signals held) and cache hits were checked.
            let walks = verification.split(separator: " ").first { $0.hasPrefix("walks=") }.flatMap { Int($0.dropFirst(6)) }
            XCTAssertGreaterThan(walks ?? 0, 0, "\(label): \(verification)")
            XCTAssertEqual(trace.unknownFrees, 0, label)
            try HazardKit.readWithLeakreport(path, label: label)
        }
    }

    /// Per-thread event rings: 1100 threads alive at once (more than the 1024 rings, so the last
    /// ones append under the event lock), rings given back at exit and reused, and marks that
    /// must follow events still waiting in a live thread's ring. Every count is exact, and the
    /// live set at each mark is exactly what the program holds there.
    func testCase15EventRings() throws {
        try HazardKit.eachCompleteTrace(HazardKit.Invocation(try HazardKit.build("hazard_thread_rings"), timeout: 300), stdout: "wide=1100 reused=50\n") { trace, label in
            XCTAssertEqual(trace.allocationsBySize[7001], 1100, label)
            XCTAssertEqual(trace.allocationsBySize[7002], 1100, label)
            XCTAssertEqual(trace.freesBySize[7002], 1100, label)
            XCTAssertEqual(trace.allocationsBySize[7003], 50, label)
            XCTAssertEqual(trace.allocationsBySize[7004], 5, label)
            XCTAssertEqual(trace.unknownFrees, 0, "\(label): a free before its malloc")
            XCTAssertEqual(trace.doubleLive, 0, "\(label): two live blocks at one address")
            let joined = trace.liveBySizeAtMark["joined"] ?? [:]
            XCTAssertEqual(joined[7001], 1100, "\(label): at joined")
            XCTAssertNil(joined[7002], "\(label): at joined")
            XCTAssertEqual(trace.liveBySizeAtMark["half"]?[7001], 550, "\(label): at half")
            XCTAssertEqual(trace.liveBySizeAtMark["quiet"]?[7004], 5, "\(label): at quiet, from a live thread's ring")
            let reused = trace.liveBySizeAtMark["reused"] ?? [:]
            XCTAssertEqual(reused[7003], 50, "\(label): at reused")
            XCTAssertEqual(trace.liveBlocks(ofSize: 7001).count, 550, label)
            XCTAssertEqual(trace.liveBlocks(ofSize: 7004).count, 5, label)
            XCTAssertEqual(trace.liveBlocks(ofSize: 7003).count, 0, label)
            XCTAssertGreaterThanOrEqual(trace.threads.count, 1100 + 1 + 1 + 50, label)
        }
    }
}
