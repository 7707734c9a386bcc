import Foundation
import XCTest
import TraceFormat

/// `leakreport growth` on real traced programs and on synthetic traces: marks from the API and
/// from the signal, live bytes at two moments, what was allocated in between, leak rates.
final class GrowthTests: XCTestCase {
    func testGrowthBetweenProgramMarks() throws {
        let trace = try GrowthSupport.shapesTrace.get()
        let root = try GrowthSupport.json(["growth", trace, "--from", "warm", "--to", "mark:done", "--top", "50"])
        XCTAssertEqual(root.string("kind"), "growth")
        XCTAssertEqual(root.object("from").string("label"), "mark warm")
        XCTAssertEqual(root.object("to").string("label"), "mark done")
        let sites = root.objects("sites")
        let steady = try XCTUnwrap(GrowthSupport.site(sites, "leak_request"))
        XCTAssertEqual(steady.object("atFrom").int("bytes"), 0)
        XCTAssertEqual(steady.object("atTo").int("blocks"), 150)
        XCTAssertEqual(steady.object("atTo").int("bytes"), 150_000)
        XCTAssertEqual(steady.object("newSinceFrom").int("bytes"), 150_000)
        XCTAssertEqual(steady.string("change"), "appeared")
        XCTAssertEqual(steady.object("key").int("line"), try CLIEndToEndTests.line(of: "@steady", in: "growth_shapes.c"))
        XCTAssertEqual(steady.object("key").string("path"), "heap")
        let cache = try XCTUnwrap(GrowthSupport.site(sites, "cache_put"))
        XCTAssertEqual(cache.object("atTo").int("blocks"), 32)
        XCTAssertEqual(cache.object("atTo").int("bytes"), 32 * 1024)
        XCTAssertEqual(cache.object("newSinceFrom").int("bytes"), 32 * 1024)
        // The burst was allocated and freed between the marks: live at neither.
        XCTAssertNil(GrowthSupport.site(sites, "burst_fill"))
        XCTAssertEqual(root.object("total").object("newSinceFrom").int("bytes"), 150_000 + 32 * 1024)
        XCTAssertEqual(root.object("total").int("deltaBytes"), 150_000 + 32 * 1024)
    }

    func testGrowthFromTheMiddleCountsOnlyBlocksAllocatedAfterIt() throws {
        let trace = try GrowthSupport.shapesTrace.get()
        let root = try GrowthSupport.json(["growth", trace, "--from", "middle", "--to", "done", "--top", "50"])
        let sites = root.objects("sites")
        // "middle" is marked after tick 75's allocations: 76 of the 150 leaks are older.
        let steady = try XCTUnwrap(GrowthSupport.site(sites, "leak_request"))
        XCTAssertEqual(steady.object("atFrom").int("blocks"), 76)
        XCTAssertEqual(steady.object("atFrom").int("bytes"), 76_000)
        XCTAssertEqual(steady.int("deltaBytes"), 74_000)
        XCTAssertEqual(steady.object("newSinceFrom").int("blocks"), 74)
        XCTAssertEqual(steady.string("change"), "grew")
        // The cache is as full at both marks, but every entry live at "done" is newer than "middle".
        let cache = try XCTUnwrap(GrowthSupport.site(sites, "cache_put"))
        XCTAssertEqual(cache.object("atFrom").int("bytes"), 32 * 1024)
        XCTAssertEqual(cache.int("deltaBytes"), 0)
        XCTAssertEqual(cache.string("change"), "same")
        XCTAssertEqual(cache.object("newSinceFrom").int("blocks"), 32)
        let burst = try XCTUnwrap(GrowthSupport.site(sites, "burst_fill"))
        XCTAssertEqual(burst.object("atFrom").int("bytes"), 200_000)
        XCTAssertEqual(burst.object("atTo").int("bytes"), 0)
        XCTAssertEqual(burst.string("change"), "vanished")
    }

    func testMarksFromTheProgramAndFromTheSignal() throws {
        let trace = try GrowthSupport.shapesTrace.get()
        let root = try GrowthSupport.json(["timeline", trace])
        let marks = root.objects("marks")
        XCTAssertEqual(marks.compactMap { $0.string("name") }, ["warm", "middle", "signal-1", "done"])
        XCTAssertEqual(marks.compactMap { $0.string("source") }, ["program", "program", "signal", "program"])
        let middle = try XCTUnwrap(marks[1].int("timeUs")), signal = try XCTUnwrap(marks[2].int("timeUs"))
        // The handler writes the mark itself (the program raised the signal outside any
        // allocation): right after "middle" in the trace, with no event in between, and before
        // the next tick's allocations, however long the machine took between them.
        XCTAssertGreaterThanOrEqual(signal, middle)
        let records = try DecodedTrace(path: trace).records.map(\.record)
        // The program's and the signal's marks (not the tracer's own before the runtimes' cleanup at exit).
        let marked = records.indices.filter {
            if case let .mark(_, source) = records[$0] { return source != MarkSource.runtimeCleanup }
            return false
        }
        XCTAssertEqual(marked.count, 4)
        if marked.count == 4 {
            let between = records[(marked[1] + 1)..<marked[2]].filter {
                switch $0 {
                case .time, .thread, .stack: return false
                default: return true
                }
            }
            XCTAssertEqual(between, [], "records between the marks middle and signal-1")
        }
        let growthBetween = try GrowthSupport.json(["growth", trace, "--from", "middle", "--to", "signal-1"])
        XCTAssertEqual(growthBetween.object("total").object("newSinceFrom").int("blocks"), 0)
        XCTAssertEqual(growthBetween.object("total").int("deltaBytes"), 0)
        // The signal's mark can be a moment of growth too.
        let growth = try GrowthSupport.json(["growth", trace, "--from", "signal-1", "--to", "end"])
        XCTAssertEqual(growth.object("from").int("timeUs"), signal)
    }

    func testMarkSignalIsNotTakenFromAProgramThatHandlesIt() throws {
        // The program installs its own SIGUSR2 handler after the tracer started: its handler
        // runs, and no mark is written for that signal.
        let (trace, run) = try GrowthSupport.trace("growth_shapes", arguments: ["own-handler"],
                                                    environment: GrowthSupport.shapesEnvironment)
        XCTAssertEqual(run.stdout, "handled 1\n", "the program's own handler ran")
        let marks = try GrowthSupport.json(["timeline", trace]).objects("marks")
        XCTAssertEqual(marks.compactMap { $0.string("name") }, ["warm", "middle", "done"])
    }

    func testMarkSignalIsLeftAloneWhenAlreadyIgnored() throws {
        // SIGUSR2 ignored before the program starts (a shell's `trap "" USR2`): the tracer
        // says so once and leaves the disposition as it was, so raise() is still ignored.
        let executable = try TracedProgram.build("growth_shapes")
        let directory = try TracedProgram.makeTraceDirectory()
        let trace = directory.appendingPathComponent("ignored.lt").path
        let run = try TracedProgram.run(
            executable: "/bin/sh", arguments: ["-c", "trap '' USR2; LD_PRELOAD=\"$1\" exec \"$0\"", executable,
                                           TracedProgram.shimPath],
            environment: GrowthSupport.shapesEnvironment.merging(["LEAKTRACE_OUTPUT": trace]) { $1 },
            timeout: 60)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stdout, "handled 0\n")
        XCTAssertEqual(run.stderr, "leaktrace: LEAKTRACE_MARK_SIGNAL is already in use by the program: marks by signal are off\n")
        let marks = try GrowthSupport.json(["timeline", trace]).objects("marks")
        XCTAssertEqual(marks.compactMap { $0.string("name") }, ["warm", "middle", "done"])
    }

    func testLeakRatesRankSteadyLeakAbovePlateauAboveFreedBurst() throws {
        let trace = try GrowthSupport.shapesTrace.get()
        let growth = try GrowthSupport.json(["growth", trace, "--top", "50"])
        let rates = growth.objects("rates").filter {
            ["leak_request", "cache_put", "burst_fill"].contains($0.object("key").string("function") ?? "")
        }
        XCTAssertEqual(rates.compactMap { $0.object("key").string("function") }, ["leak_request", "cache_put", "burst_fill"])
        XCTAssertEqual(rates.compactMap { $0.string("trend") }, ["steady-leak", "plateau", "freed-burst"])
        let steady = rates[0]
        // The truth is the trace's own clock, not the machine's: a least-squares line through
        // (time, bytes leaked so far) at each of leak_request's 150 allocations as recorded.
        // leakreport fits sampled live bytes, so the two agree closely, not exactly.
        let expected = try Self.recordedLeakRate(trace, function: "leak_request", size: 1000)
        let measured = Double(steady.int("bytesPerSecond") ?? 0)
        XCTAssertEqual(measured, expected, accuracy: expected * 0.1, "leak rate against the recorded allocation times")
        XCTAssertGreaterThanOrEqual(steady["rSquared"] as? Double ?? 0, 0.95)
        XCTAssertEqual(rates[1].int("endBytes"), 32 * 1024)
        XCTAssertEqual(rates[2].int("endBytes"), 0)
        XCTAssertEqual(rates[2].int("peakBytes"), 200_000)
        // Only the steady leak keeps growing: the normal report names it alone.
        let report = try GrowthSupport.json([trace])
        XCTAssertEqual(report.objects("growing").compactMap { $0.object("key").string("function") }, ["leak_request"])
        let text = try LeakReportRunner.run([trace])
        XCTAssertTrue(text.stdout.contains("Growing"), text.stdout)
        XCTAssertTrue(text.stdout.contains("steady-leak"), text.stdout)
    }

    /// Bytes per second of a least-squares line through (recorded time, bytes allocated so far)
    /// at each allocation of `size` bytes whose call site is `function`.
    static func recordedLeakRate(_ path: String, function: String, size: UInt64) throws -> Double {
        let trace = try DecodedTrace(path: path)
        var names: [UInt32: String] = [:]
        var points: [(x: Double, y: Double)] = []
        for (record, context) in trace.records {
            guard case let .alloc(_, _, _, allocated, stack) = record, allocated == size else { continue }
            if names[stack] == nil { names[stack] = trace.functionNames(ofStack: stack, limit: 1).first ?? "?" }
            guard names[stack] == function else { continue }
            points.append((Double(context.time) / 1_000_000, Double(points.count + 1) * Double(size)))
        }
        guard points.count >= 2 else { throw TestFailure("\(function) allocated \(points.count) blocks of \(size) B") }
        let meanX = points.map(\.x).reduce(0, +) / Double(points.count)
        let meanY = points.map(\.y).reduce(0, +) / Double(points.count)
        let sxy = points.reduce(0) { $0 + ($1.x - meanX) * ($1.y - meanY) }
        let sxx = points.reduce(0) { $0 + ($1.x - meanX) * ($1.x - meanX) }
        return sxy / sxx
    }

    func testBadMomentsAreOneLineErrors() throws {
        let trace = try GrowthSupport.shapesTrace.get()
        let missing = try LeakReportRunner.run(["growth", trace, "--from", "nosuch"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.stderr, "leakreport: error: \(trace): no mark named 'nosuch' (marks in the trace: done, middle, signal-1, warm)\n")
        let reversed = try LeakReportRunner.run(["growth", trace, "--from", "done", "--to", "warm"])
        XCTAssertEqual(reversed.status, 2)
        XCTAssertEqual(reversed.stderr, "leakreport: error: \(trace): mark warm comes before mark done: --to must be later than --from\n")
        let empty = try LeakReportRunner.run(["growth", trace, "--from", ""])
        XCTAssertEqual(empty.status, 2)
        XCTAssertEqual(empty.stderr.split(separator: "\n").count, 1)
    }

    func testFailOnGrowthGivesStatusFour() throws {
        let trace = try GrowthSupport.shapesTrace.get()
        let grown = 150_000 + 32 * 1024
        XCTAssertEqual(try LeakReportRunner.run(["growth", trace, "--from", "warm", "--to", "done",
                                                 "--fail-on-growth", "\(grown - 1)"]).status, 4)
        XCTAssertEqual(try LeakReportRunner.run(["growth", trace, "--from", "warm", "--to", "done",
                                                 "--fail-on-growth", "\(grown)"]).status, 0)
        // From the middle, live bytes shrank (the burst was freed): no growth at all.
        XCTAssertEqual(try LeakReportRunner.run(["growth", trace, "--from", "middle", "--to", "done",
                                                 "--fail-on-growth", "0"]).status, 0)
    }

    // MARK: Synthetic traces: exact rates and moments

    /// One site allocating 1000 bytes every 10 ms for 1 s (stack 1), another allocating 50000
    /// bytes once at 0.3 s (stack 2); a mark "half" at 0.5 s.
    static func syntheticGrowth() -> [TraceRecord] {
        var records: [TraceRecord] = [
            .thread(tid: 1), .time(microseconds: 0), CLITests.sampleModules,
            .stack(id: 1, parent: 0, ip: 0x401000), .stack(id: 2, parent: 0, ip: 0x402000),
        ]
        for tick in 0..<100 {
            records.append(.time(microseconds: UInt64(tick) * 10_000))
            records.append(.alloc(function: .malloc, path: .heap, address: 0x100000 + UInt64(tick) * 0x1000,
                                  size: 1000, stack: 1))
            if tick == 30 {
                records.append(.alloc(function: .malloc, path: .mmapThreshold, address: 0x7000_0000, size: 50_000, stack: 2))
            }
            if tick == 50 { records.append(.mark(name: "half", source: 0)) }
        }
        records.append(.time(microseconds: 1_000_000))
        records.append(.end(TraceEnd(allocs: 101, frees: 0, reallocs: 0, mappings: 0, stacks: 2, chunks: 0, untraced: 0)))
        return records
    }

    func testSyntheticRatesAndMomentsAreExact() throws {
        let (path, _) = try CLITests.writeTrace([Self.syntheticGrowth()])
        let root = try GrowthSupport.json(["growth", path, "--no-symbolize", "--from", "half", "--to", "end"])
        XCTAssertEqual(root.object("from").int("timeUs"), 500_000)
        XCTAssertEqual(root.object("to").int("timeUs"), 1_000_000)
        let sites = root.objects("sites")
        XCTAssertEqual(sites.count, 1, "the one-off block is the same at both moments")
        XCTAssertEqual(sites.first?.object("key").string("moduleOffset"), "0x1000")
        XCTAssertEqual(sites.first?.object("key").string("module"), "sample-app")
        XCTAssertEqual(sites.first?.object("atFrom").int("blocks"), 51)
        XCTAssertEqual(sites.first?.object("atTo").int("blocks"), 100)
        XCTAssertEqual(sites.first?.object("newSinceFrom").int("bytes"), 49_000)

        let whole = try GrowthSupport.json(["growth", path, "--no-symbolize"])
        let rates = whole.objects("rates")
        XCTAssertEqual(rates.map { $0.object("key").string("path") }, ["heap", "mmap-threshold"])
        // 1000 bytes per 10 ms is 100000 bytes per second, within the rounding of bucket ends.
        let slope = try XCTUnwrap(rates.first?.int("bytesPerSecond"))
        XCTAssertEqual(Double(slope), 100_000, accuracy: 2_000)
        XCTAssertEqual(rates.first?.string("trend"), "steady-leak")
        XCTAssertEqual(rates.last?.string("trend"), "plateau")
        XCTAssertEqual(whole.objects("growing").count, 1)
    }

    func testBlocksOfTheMarksOwnClockTickAreToldApart() throws {
        // Many events share one TIME (the clock is coarse, and the live table keeps times in
        // milliseconds): blocks allocated in the mark's tick before it are old, those after it
        // new, even when an old block is freed and its address reused after the mark.
        let tick: UInt64 = 500_123
        let records: [TraceRecord] = [
            .thread(tid: 1), .time(microseconds: 0), CLITests.sampleModules,
            .stack(id: 1, parent: 0, ip: 0x401000),
            .time(microseconds: tick),
            .alloc(function: .malloc, path: .heap, address: 0x10000, size: 100, stack: 1),
            .alloc(function: .malloc, path: .heap, address: 0x20000, size: 200, stack: 1),
            .mark(name: "A", source: 0),
            .free(address: 0x10000),
            .alloc(function: .malloc, path: .heap, address: 0x10000, size: 1000, stack: 1),
            .alloc(function: .malloc, path: .heap, address: 0x30000, size: 3000, stack: 1),
            .time(microseconds: tick + 10_000),
            .alloc(function: .malloc, path: .heap, address: 0x40000, size: 40_000, stack: 1),
        ]
        let (path, _) = try CLITests.writeTrace([records])
        let root = try GrowthSupport.json(["growth", path, "--no-symbolize", "--from", "A"])
        XCTAssertEqual(root.object("from").int("timeUs"), Int(tick))
        let site = try XCTUnwrap(root.objects("sites").first)
        XCTAssertEqual(site.object("atFrom").int("bytes"), 300)
        XCTAssertEqual(site.object("atTo").int("bytes"), 200 + 1000 + 3000 + 40_000)
        XCTAssertEqual(site.object("newSinceFrom").int("blocks"), 3)
        XCTAssertEqual(site.object("newSinceFrom").int("bytes"), 1000 + 3000 + 40_000)
    }

    func testBucketsStayBoundedOnALongTrace() throws {
        // 20000 ticks of 1 ms: the buckets double instead of multiplying.
        var records: [TraceRecord] = [.thread(tid: 1), .time(microseconds: 0), CLITests.sampleModules,
                                      .stack(id: 1, parent: 0, ip: 0x401000)]
        for tick in 0..<20_000 {
            records.append(.time(microseconds: UInt64(tick) * 1000))
            records.append(.alloc(function: .malloc, path: .heap, address: 0x100000 + UInt64(tick) * 0x100, size: 10, stack: 1))
        }
        let (path, _) = try CLITests.writeTrace([records])
        let timeline = try GrowthSupport.json(["timeline", path]).object("timeline")
        let points = timeline.objects("points")
        XCTAssertGreaterThanOrEqual(points.count, 32)
        XCTAssertLessThanOrEqual(points.count, 65)
        XCTAssertEqual(points.last?.int("liveHeapBytes"), 200_000)
        XCTAssertEqual(points.last?.int("endUs"), 19_999_000)
        let ends = points.compactMap { $0.int("endUs") }
        XCTAssertEqual(ends, ends.sorted())
    }
}
