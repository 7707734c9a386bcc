import Foundation
import XCTest
import LiveSet
import TraceFormat

/// Folding short-lived blocks (issue 12): Programs/fold_shapes.c is traced with the default
/// (folded) and with LEAKTRACE_EVENTS=all. Both traces must give what the program's design
/// says, exactly: the leaked blocks with the addresses the program printed, their sizes,
/// sites, times between the marks around them, paths; allocation calls, bytes and temporary
/// allocations per site; unknown frees; the mmap threshold's history; growth between marks;
/// what the forked child inherited. Where two runs can only agree with each other (the heap
/// hole's pinned bytes), the two traces must agree; the peak live heap of the full trace must
/// lie within the folded trace's stated bounds.
final class TracerFoldTests: XCTestCase {

    // MARK: - the program's design (Programs/fold_shapes.c)

    static let temps = 20000, pairs = 10000, reallocs = 1000, bigs = 3, leaks = 37, liveGap = 20000
    static let unknownFrees = 4, childLeaks = 5

    /// temp_site's calls and bytes in the parent: TEMPS, then LIVE_GAP / LEAKS before each leak.
    static var tempCalls: Int { temps + leaks * (liveGap / leaks) }
    static var tempBytes: Int {
        (0..<temps).reduce(0) { $0 + 48 + $1 % 8 } + leaks * (0..<(liveGap / leaks)).reduce(0) { $0 + 48 + $1 % 8 }
    }
    static var leakBytes: Int { (0..<leaks).reduce(0) { $0 + 100 + $1 } }

    /// (calls, bytes, temporary) per function of the program that allocates, in the parent.
    static var expectedSites: [String: [(calls: Int, bytes: Int, temporary: Int)]] {
        ["temp_site": [(tempCalls, tempBytes, tempCalls)],
         "pair_first": [(pairs, 64 * pairs, 0)],
         "pair_second": [(pairs, 32 * pairs, 0)],
         // the malloc(10) and the realloc to 2000: each block temporary
         "grow_site": [(reallocs, 10 * reallocs, reallocs), (reallocs, 2000 * reallocs, reallocs)],
         "big_site": [(bigs, bigs << 20, bigs)],
         "leak_site": [(leaks, leakBytes, 0)]]
    }

    // MARK: - one run per mode

    struct ModeRun {
        var parent: String
        var child: String
        var printedLeaks: [UInt64: UInt64]   // address -> size, as the program printed them
    }

    private static var runs: [String: ModeRun] = [:]

    private func run(events: String) throws -> ModeRun {
        if let done = Self.runs[events] { return done }
        let exe = try TracedProgram.build("fold_shapes")
        let result = try TracedProgram.trace(exe, environment: ["LEAKTRACE_EVENTS": events])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.traces.count, 2, "a parent and a forked child trace")
        var parent: String?, child: String?
        for path in result.traces {
            if try TraceReader(path: path).header.parentTrace == nil { parent = path } else { child = path }
        }
        var printed: [UInt64: UInt64] = [:]
        for line in result.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0] == "leak",
                  let address = UInt64(fields[1].dropFirst(2), radix: 16), let size = UInt64(fields[2]) else { continue }
            printed[address] = size
        }
        XCTAssertEqual(printed.count, Self.leaks)
        let run = ModeRun(parent: try XCTUnwrap(parent), child: try XCTUnwrap(child), printedLeaks: printed)
        Self.runs[events] = run
        return run
    }

    private func report(_ path: String) throws -> [String: Any] { try LeakReportRunner.json([path]) }

    // MARK: - tests

    func testEachTraceSaysHowItWasWritten() throws {
        for (events, folded) in [("folded", true), ("all", false)] {
            let run = try run(events: events)
            for path in [run.parent, run.child] {
                let header = try TraceReader(path: path).header
                XCTAssertEqual(header.version, 2)
                XCTAssertEqual(header.foldsShortLivedBlocks, folded, path)
                let info = try LeakReportRunner.run(["info", path])
                XCTAssertTrue(info.stdout.contains("\nevents \(events)\n"), info.stdout)
                let dump = try LeakReportRunner.run(["dump", path])
                XCTAssertTrue(dump.stdout.contains("events: \(events)"), String(dump.stdout.prefix(2000)))
                XCTAssertEqual(dump.stdout.contains("\nFOLD "), folded, "FOLD records only when folding")
            }
        }
    }

    func testLeakedBlocksKeepTheirIdentity() throws {
        for events in ["folded", "all"] {
            let run = try run(events: events)
            let decoded = try DecodedTrace(path: run.parent)
            var markTimes: [String: UInt64] = [:]
            for (record, context) in decoded.records { if case let .mark(name, _) = record { markTimes[name] = context.time } }
            let begin = try XCTUnwrap(markTimes["leaks-begin"]), end = try XCTUnwrap(markTimes["leaks-end"])

            let reader = try TraceReader(path: run.parent)
            var replay = Replayer(header: reader.header)
            _ = replay.replay(reader)
            var found: [UInt64: UInt64] = [:]
            replay.live.forEach { block in
                guard run.printedLeaks[block.address] != nil else { return }
                found[block.address] = block.size
                XCTAssertEqual(block.path, .heap, events)
                // The live table keeps times to the millisecond, rounded down (LiveBlockTable).
                XCTAssertTrue(block.time >= begin / 1000 * 1000 && block.time <= end,
                              "\(events): leak at \(block.time) outside marks (\(begin), \(end))")
                let frames = replay.frames(of: block.stackRef, in: reader.stacks)
                XCTAssertEqual(decoded.functionName(at: frames.first ?? 0), "leak_site", events)
            }
            XCTAssertEqual(found, run.printedLeaks, "\(events): live blocks are the ones the program printed")

            let json = try report(run.parent)
            let groups = json.objects("groups").filter { $0.object("callsite").string("function") == "leak_site" }
            XCTAssertEqual(groups.count, 1, events)
            XCTAssertEqual(groups.first?.int("blocks"), Self.leaks, events)
            XCTAssertEqual(groups.first?.int("bytes"), Self.leakBytes, events)
            XCTAssertEqual(json.object("summary").int("unknownFrees"), Self.unknownFrees, events)
            XCTAssertEqual(json.object("summary").int("duplicateAllocations"), 0, events)
        }
    }

    func testAllocationCallsAndTemporariesPerSite() throws {
        for events in ["folded", "all"] {
            let json = try report(try run(events: events).parent)
            var bySite: [String: [(calls: Int, bytes: Int, temporary: Int)]] = [:]
            for site in json.objects("allocationSites") {
                guard let function = site.object("callsite").string("function"),
                      Self.expectedSites[function] != nil else { continue }
                bySite[function, default: []].append((site.int("calls") ?? -1, site.int("bytes") ?? -1,
                                                      site.int("temporary") ?? -1))
            }
            for (function, expected) in Self.expectedSites {
                let got = (bySite[function] ?? []).sorted { $0.bytes < $1.bytes }
                let want = expected.sorted { $0.bytes < $1.bytes }
                XCTAssertEqual(got.map(\.calls), want.map(\.calls), "\(events) \(function) calls")
                XCTAssertEqual(got.map(\.bytes), want.map(\.bytes), "\(events) \(function) bytes")
                XCTAssertEqual(got.map(\.temporary), want.map(\.temporary), "\(events) \(function) temporary")
            }
        }
    }

    func testHeapThresholdGrowthAndPeakAgree() throws {
        let folded = try report(try run(events: "folded").parent).object("summary")
        let full = try report(try run(events: "all").parent).object("summary")
        for summary in [folded, full] {
            let threshold = summary.object("mmapThreshold")
            // The first 1 MiB block is mmapped; its free raises the threshold past 1 MiB once.
            XCTAssertEqual(threshold.objects("moves").count, 1)
            XCTAssertGreaterThanOrEqual(threshold.int("final") ?? 0, 1 << 20)
        }
        XCTAssertEqual(folded.object("mmapThreshold").int("final"), full.object("mmapThreshold").int("final"))
        XCTAssertEqual(folded.object("heapHole").int("pinnedBytes"), full.object("heapHole").int("pinnedBytes"))
        XCTAssertEqual(folded.object("heapHole").object("liveHeap").int("blocks"), Self.leaks + 1, "leaks and stdout's buffer")
        XCTAssertEqual(folded.object("heapHole").object("liveHeap").int("bytes"),
                       full.object("heapHole").object("liveHeap").int("bytes"))

        XCTAssertNil(full["peakLiveBytesBound"] as? Int, "a full trace's peak is exact")
        let exact = try XCTUnwrap(full.int("peakLiveBytes"))
        XCTAssertGreaterThanOrEqual(exact, Self.bigs > 0 ? 1 << 20 : 0, "a 1 MiB block was live alone at least")
        let low = try XCTUnwrap(folded.int("peakLiveBytes")), high = try XCTUnwrap(folded.int("peakLiveBytesBound"))
        XCTAssertTrue(low <= exact && exact <= high, "folded bounds \(low)...\(high) hold the exact peak \(exact)")

        for events in ["folded", "all"] {
            let growth = try GrowthSupport.json(["growth", try run(events: events).parent,
                                                    "--from", "leaks-begin", "--to", "leaks-end"])
            let total = growth.object("total")
            XCTAssertEqual(total.object("newSinceFrom").int("blocks"), Self.leaks, events)
            XCTAssertEqual(total.object("newSinceFrom").int("bytes"), Self.leakBytes, events)
            XCTAssertEqual(total.int("deltaBytes"), Self.leakBytes, events)
        }
    }

    func testForkedChildInheritsExactly() throws {
        for events in ["folded", "all"] {
            let json = try report(try run(events: events).child)
            let summary = json.object("summary")
            XCTAssertEqual(summary.object("inherited").int("blocks"), Self.leaks, events)
            XCTAssertEqual(summary.object("inherited").int("bytes"), Self.leakBytes, events)
            let own = json.objects("groups").filter { $0.object("callsite").string("function") == "child_site" }
            XCTAssertEqual(own.first?.int("blocks"), Self.childLeaks, events)
            XCTAssertEqual(own.first?.int("bytes"), 77 * Self.childLeaks, events)
            let temps = json.objects("allocationSites").filter { $0.object("callsite").string("function") == "temp_site" }
            XCTAssertEqual(temps.first?.int("calls"), Self.temps / 10, events)
            XCTAssertEqual(temps.first?.int("temporary"), Self.temps / 10, events)
        }
    }

    func testEveryCallIsAccountedFor() throws {
        // Written and folded blocks together are every call the program made, in both modes.
        let calls = Self.tempCalls + 2 * Self.pairs + Self.reallocs + Self.bigs + Self.leaks
        for events in ["folded", "all"] {
            let trace = try report(try run(events: events).parent).object("trace")
            let allocs = try XCTUnwrap(trace.int("allocs"))
            // stdio's buffer and whatever libc allocates for itself come on top of the design
            XCTAssertTrue(allocs >= calls && allocs <= calls + 8, "\(events): \(allocs) allocations for \(calls)")
            if events == "all" { XCTAssertEqual(trace.int("foldedBlocks"), 0) }
        }
        let folded = try report(try run(events: "folded").parent).object("trace")
        let full = try report(try run(events: "all").parent).object("trace")
        XCTAssertEqual(folded.int("allocs"), full.int("allocs"))
        XCTAssertEqual(folded.int("frees"), full.int("frees"))
        XCTAssertGreaterThan(folded.int("foldedBlocks") ?? 0, 0)
    }
}
