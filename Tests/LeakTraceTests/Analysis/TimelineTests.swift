import Foundation
import XCTest
import TraceFormat

/// `leakreport timeline`: RSS from the samples, the live heap and mapped bytes over time.
final class TimelineTests: XCTestCase {
    func testTimelineOfATracedProgram() throws {
        let trace = try GrowthSupport.shapesTrace.get()
        let root = try GrowthSupport.json(["timeline", trace])
        XCTAssertEqual(root.string("kind"), "timeline")
        let timeline = root.object("timeline")
        let points = timeline.objects("points")
        XCTAssertGreaterThanOrEqual(points.count, 32)
        XCTAssertLessThanOrEqual(points.count, 65)
        // RSS comes from the samples (every 20 ms): whole pages, known after the first one.
        let rss = points.compactMap { $0.int("rssBytes") }
        XCTAssertGreaterThanOrEqual(rss.count, points.count - 2)
        XCTAssertTrue(rss.allSatisfy { $0 > 0 && $0 % 4096 == 0 })
        // The burst of 200 x 1000 bytes shows in the peak of some bucket.
        let peaks = points.compactMap { $0.int("peakLiveHeapBytes") }
        XCTAssertGreaterThanOrEqual(peaks.max() ?? 0, 200_000 + 32 * 1024)
        XCTAssertTrue(points.allSatisfy { $0.int("mappedBytes") == 0 })
        // At the end the live heap is what the report finds leaked (no mappings, no brk), the
        // runtime's own buffers included: the timeline applies no suppressions.
        let report = try GrowthSupport.json([trace, "--no-default-suppressions"])
        XCTAssertEqual(points.last?.int("liveHeapBytes"), report.object("summary").object("leaked").int("bytes"))
        let text = try LeakReportRunner.run(["timeline", trace])
        XCTAssertTrue(text.stdout.contains("rss "), text.stdout)
        XCTAssertTrue(text.stdout.contains("█"), text.stdout)
    }

    func testSyntheticTimelineValuesAreExact() throws {
        var records: [TraceRecord] = [.thread(tid: 1), .time(microseconds: 0), CLITests.sampleModules,
                                      .stack(id: 1, parent: 0, ip: 0x401000)]
        records.append(.sample(vmPages: 1000, rssPages: 100, sharedPages: 10))
        records.append(.alloc(function: .malloc, path: .heap, address: 0x10000, size: 5000, stack: 1))
        records.append(.time(microseconds: 25_000))
        records.append(.mmap(addressArgument: 0, length: 8000, prot: 3, flags: 0x22, fd: -1, offset: 0,
                             result: 0x7f00_0000_0000, errno: 0, path: "", stack: 1))
        records.append(.sample(vmPages: 1002, rssPages: 150, sharedPages: 10))
        records.append(.time(microseconds: 35_000))
        records.append(.free(address: 0x10000))
        let (path, _) = try CLITests.writeTrace([records])
        let points = try GrowthSupport.json(["timeline", path]).object("timeline").objects("points")
        // Buckets of 10 ms: [0,10) [10,20) [20,30) closed by TIME 35000, then the last one.
        XCTAssertEqual(points.compactMap { $0.int("endUs") }, [10_000, 20_000, 30_000, 35_000])
        XCTAssertEqual(points.compactMap { $0.int("liveHeapBytes") }, [5000, 5000, 5000, 0])
        XCTAssertEqual(points.compactMap { $0.int("peakLiveHeapBytes") }, [5000, 5000, 5000, 5000])
        XCTAssertEqual(points.compactMap { $0.int("mappedBytes") }, [0, 0, 8192, 8192])
        XCTAssertEqual(points.compactMap { $0.int("rssBytes") }, [409_600, 409_600, 614_400, 614_400])
        XCTAssertEqual(points.compactMap { $0.int("vmBytes") }, [4_096_000, 4_096_000, 4_104_192, 4_104_192])
    }
}
