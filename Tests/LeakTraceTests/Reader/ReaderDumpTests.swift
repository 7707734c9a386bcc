// The dump text of every record kind and of the header, exactly.

import XCTest
import TraceFormat

final class ReaderDumpTests: XCTestCase {
    func testDumpLineOfEveryRecordKind() {
        let expected = [
            "MODULES generation=1 count=2: \"/usr/bin/sample-app\" bias=0x555555554000 build-id=deadbeef01 "
                + "segments=[0x555555554000+0x1000 r--, 0x555555555000+0x2000 r-x]; "
                + "\"/lib/x86_64-linux-gnu/libc.so.6\" bias=0x7ffff7d80000 build-id=none "
                + "segments=[0x7ffff7da8000+0x155000 r-x]",
            "THREAD tid=4242",
            "TIME us=1500",
            "STACK id=1 parent=0 ip=0x555555555123",
            "STACK id=2 parent=1 ip=0x555555555456",
            "ALLOC malloc heap 0x5555555602a0 size=24 stack=2",
            "ALLOC calloc mmap-threshold 0x7ffff7a00010 size=1048576 stack=1",
            "ALLOC posix_memalign thread-arena 0x7fffe8000b70 size=64 stack=2",
            "ALLOC pvalloc unknown 0x10 size=4096 stack=0",
            "ALLOC aligned_alloc heap 0xffffffffffffffff size=18446744073709551615 stack=2",
            "ALLOC realloc heap 0x555555560400 size=7 stack=1",
            "ALLOC reallocarray mmap-threshold 0x7ffff7900010 size=300000 stack=2",
            "ALLOC memalign thread-arena 0x7fffe8000200 size=256 stack=1",
            "FREE 0x5555555602a0",
            "REALLOC_RELEASE 0x7fffe8000b70",
            "REALLOC realloc moved-or-resized thread-arena old=0x7fffe8000b70 new=0x7fffe8001000 size=128 stack=2",
            "REALLOC reallocarray failed unknown old=0x7fffe8001000 new=0x0 size=4611686018427387904 stack=1",
            "REALLOC realloc freed unknown old=0x7fffe8001000 new=0x0 size=0 stack=0",
            "REALLOC reallocarray moved-or-resized heap old=0x0 new=0x555555560300 size=10 stack=1",
            "THREAD tid=4243",
            "MMAP addr=0x0 len=4096 prot=rw- flags=private|anonymous fd=-1 -> 0x7ffff7ff0000 stack=2",
            "MMAP addr=0x0 len=8192 prot=r-- flags=private fd=3 offset=4096 path=\"/etc/ld.so.cache\" "
                + "-> 0x7ffff7fe0000 stack=1",
            "MMAP addr=0x1000 len=1099511627776 prot=rw- flags=private|fixed|anonymous fd=-9223372036854775808 "
                + "offset=18446744073709551615 -> MAP_FAILED errno=12 stack=0",
            "MUNMAP addr=0x7ffff7ff0000 len=4096 -> 0 stack=1",
            "MUNMAP addr=0x3 len=4096 -> -1 errno=22 stack=2",
            "MREMAP old=0x7ffff7fe0000 old-size=8192 new-size=16384 flags=maymove new-addr=0x0 -> 0x7ffff7f00000 stack=2",
            "MREMAP old=0x7ffff7f00000 old-size=16384 new-size=35184372088832 flags=0 new-addr=0x0 "
                + "-> MAP_FAILED errno=12 stack=0",
            "BRK addr=0x555555579000 -> 0 before=0x555555578000 after=0x555555579000 stack=1",
            "BRK addr=0x1 -> -1 before=0x555555579000 after=0x555555579000 stack=0",
            "SBRK increment=-4096 -> 0x555555579000 after=0x555555578000 stack=2",
            "SBRK increment=-9223372036854775808 -> failed after=0x555555578000 stack=0",
            "MALLOPT M_MMAP_THRESHOLD value=131072 -> 1",
            "MALLOPT M_ARENA_MAX value=-9223372036854775808 -> 0",
            "SAMPLE vm-pages=12345 rss-pages=678 shared-pages=90",
            "MARK \"after warmup\" source=program",
            "MARK \"SIGUSR1 \\\"snapshot\\\"\\n\" source=signal",
            "THREAD_NAME tid=4243 name=\"worker-1\"",
            "FORK child-pid=4300",
            "EXEC path=\"/bin/sh\"",
            "NOTE warning \"stack depth capped at 64 frames\"",
            "NOTE info \"\"",
            "FOLD first-us=1500 last-us=1900 peak-bytes=4096 low-heap=0x555555560100 count=2: "
                + "stack=1 realloc thread-arena blocks=0 bytes=0 temporary=1 by-realloc=0; "
                + "stack=2 malloc heap blocks=300 bytes=14400 temporary=299 by-realloc=12",
            "FOLD first-us=0 last-us=18446744073709551615 peak-bytes=18446744073709551615 low-heap=0x0 count=0",
            "MODULES generation=2 count=3: \"/usr/bin/sample-app\" bias=0x555555554000 build-id=deadbeef01 "
                + "segments=[0x555555554000+0x1000 r--, 0x555555555000+0x2000 r-x]; "
                + "\"/lib/x86_64-linux-gnu/libc.so.6\" bias=0x7ffff7d80000 build-id=none "
                + "segments=[0x7ffff7da8000+0x155000 r-x]; "
                + "\"/opt/plugins/libplugin.so\" bias=0x7ffff0000000 build-id=ab segments=[0x7ffff0001000+0x800 r-x]",
            "MODULES generation=3 count=0",
            "TIME us=18446744073709551615",
            "THREAD tid=18446744073709551615",
            "STACK id=3 parent=2 ip=0xffffffffffffffff",
            "ALLOC valloc heap 0x0 size=0 stack=3",
            "UNKNOWN tag=0x5a length=3",
            "UNKNOWN tag=0xff length=0",
            "END allocs=6 frees=1 reallocs=4 mappings=10 stacks=3 chunks=0 untraced=7",
        ]
        let lines = SampleRecords.everyKind.map(\.dumpLine)
        XCTAssertEqual(lines.count, expected.count)
        for (line, want) in zip(lines, expected) { XCTAssertEqual(line, want) }
        XCTAssertTrue(lines.allSatisfy { !$0.contains("\n") })
    }

    func testFlagNamesKeepUnnamedBits() {
        XCTAssertEqual(MapBits.protectionName(0), "---")
        XCTAssertEqual(MapBits.protectionName(7 | 0x0100_0000), "rwx|0x1000000")
        XCTAssertEqual(MapBits.mmapFlagsName(0x01 | 0x4000 | 0x8000), "shared|noreserve|populate")
        XCTAssertEqual(MapBits.mmapFlagsName(0x03 | 0x40), "shared_validate|0x40")
        XCTAssertEqual(MapBits.mmapFlagsName(0), "0")
        XCTAssertEqual(MapBits.mremapFlagsName(1 | 2 | 4 | 8), "maymove|fixed|dontunmap|0x8")
        XCTAssertEqual(MapBits.segmentFlagsName(6), "rw-")
    }

    func testHeaderDumpLines() throws {
        var header = TraceBuilder.sampleHeader
        header.ppid = nil
        header.parentTrace = "/tmp/parent.lt"
        header.parentForkOffset = 4096
        let reader = try TraceReader(bytes: TraceBuilder(header: header).bytes, name: "h.lt")
        XCTAssertEqual(reader.header.dumpLines, [
            "format-version: 1",
            "pointer-size: 8",
            "page-size: 4096",
            "pid: 4242",
            "program: \"/usr/bin/sample-app\"",
            "argv: \"sample-app\" \"--iterations\" \"3\"",
            "start-realtime-us: 1763769600000000",
            "clock: \"monotonic-coarse\"",
            "libc-version: \"2.36\"",
            "mmap-threshold: 131072",
            "allocator: 1 (glibc)",
            "malloc-env: \"MALLOC_ARENA_MAX=2\" \"GLIBC_TUNABLES=glibc.malloc.tcache_count=0\"",
            "parent-trace: \"/tmp/parent.lt\"",
            "parent-fork-offset: 4096",
            "stack-depth: 64",
            "sample-interval-ms: 100",
            "allocator-name: \"glibc\"",
            "tracer-version: \"0.1.0\"",
            "events: all (every allocator event written)",
        ])
        XCTAssertEqual(TraceHeader().dumpLines, ["format-version: 1", "events: all (every allocator event written)"])
        header.events = 1
        header.foldWindow = 16384
        let folded = try TraceReader(bytes: TraceBuilder(header: header, version: 2).bytes, name: "h2.lt")
        XCTAssertEqual(Array(folded.header.dumpLines.suffix(2)),
                       ["events: folded (short-lived blocks counted in FOLD records)", "fold-window: 16384"])
    }
}
