import Foundation
import XCTest
import TraceFormat

/// End-to-end tests of libleaktrace.so: real programs from Tests/LeakTraceTests/Programs are
/// built, traced, and their traces decoded with the reader, with exact expectations.
final class TracerTests: XCTestCase {

    // MARK: - every hooked function

    func testEveryHookedFunctionIsRecordedWithItsSizeAndCallSite() throws {
        let exe = try TracedProgram.build("hooks_all")
        let plain = try TracedProgram.runPlain(exe)
        let run = try TracedProgram.trace(exe)
        XCTAssertEqual(run.stdout, plain.stdout)
        XCTAssertEqual(run.stdout, "done 1\n")
        XCTAssertEqual(run.status, 7)
        XCTAssertEqual(run.status, plain.status)
        XCTAssertEqual(run.stderr, "")
        XCTAssertEqual(run.traces.count, 1)
        let trace = try DecodedTrace(path: run.traces[0])
        XCTAssertTrue(trace.isComplete, "\(String(describing: trace.endState))")
        XCTAssertEqual(trace.unwindMismatches, 0)

        func allocation(from function: String) -> (function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64)? {
            for a in trace.allocs where trace.functionName(at: trace.stacks.frames(a.stack, limit: 1).first ?? 0) == function {
                return (a.function, a.path, a.address, a.size)
            }
            return nil
        }
        let expected: [(String, AllocFunction, UInt64)] = [
            ("call_malloc", .malloc, 101), ("call_calloc", .calloc, 77),
            ("call_posix_memalign", .posixMemalign, 300), ("call_aligned_alloc", .alignedAlloc, 256),
            ("call_memalign", .memalign, 96), ("call_valloc", .valloc, 1000), ("call_pvalloc", .pvalloc, 2000),
            ("kept_malloc", .malloc, 4242),
        ]
        for (site, function, size) in expected {
            guard let a = allocation(from: site) else {
                XCTFail("no allocation recorded from \(site)")
                continue
            }
            XCTAssertEqual(a.function, function, site)
            XCTAssertEqual(a.size, size, site)
            XCTAssertEqual(a.path, .heap, site)
        }
        XCTAssertEqual((allocation(from: "call_posix_memalign")?.address ?? 1) % 64, 0)
        XCTAssertEqual((allocation(from: "call_aligned_alloc")?.address ?? 1) % 128, 0)
        XCTAssertEqual((allocation(from: "call_valloc")?.address ?? 1) % 4096, 0)

        // realloc and reallocarray: a release before the call, then the result.
        var reallocs: [(status: ReallocStatus, isArray: Bool, old: UInt64, new: UInt64, size: UInt64, site: String)] = []
        var releases: [UInt64] = []
        for (record, _) in trace.records {
            switch record {
            case let .realloc(status, _, isArray, old, new, size, stack):
                let site = trace.functionName(at: trace.stacks.frames(stack, limit: 1).first ?? 0) ?? "?"
                reallocs.append((status, isArray, old, new, size, site))
            case let .reallocRelease(address):
                releases.append(address)
            default:
                break
            }
        }
        XCTAssertEqual(reallocs.count, 3)
        XCTAssertEqual(reallocs.map(\.site), ["call_realloc_grow", "call_reallocarray", "main"])
        XCTAssertEqual(reallocs.map(\.size), [5000, 300, 0])
        XCTAssertEqual(reallocs.map(\.status), [.movedOrResized, .movedOrResized, .freed])
        XCTAssertEqual(reallocs.map(\.isArray), [false, true, false])
        XCTAssertEqual(releases, reallocs.map(\.old))
        XCTAssertEqual(reallocs[0].old, allocation(from: "call_malloc")?.address)
        XCTAssertEqual(reallocs[1].old, allocation(from: "call_calloc")?.address)

        // Seven frees from main (free(NULL) is not recorded); the kept block stays live.
        let live = replayLiveAddresses(trace)
        XCTAssertTrue(live.contains(allocation(from: "kept_malloc")?.address ?? 0))
        for site in ["call_posix_memalign", "call_aligned_alloc", "call_memalign", "call_valloc", "call_pvalloc"] {
            XCTAssertFalse(live.contains(allocation(from: site)?.address ?? 0), site)
        }
        XCTAssertFalse(trace.frees.contains(0))

        // The END record counts what was written.
        guard case let .complete(end) = trace.endState else { return XCTFail("no END") }
        XCTAssertEqual(end.allocs, UInt64(trace.allocs.count))
        XCTAssertEqual(end.frees, UInt64(trace.frees.count))
        XCTAssertEqual(end.reallocs, 3)
        XCTAssertEqual(end.stacks, UInt64(trace.stacks.count))
    }

    // MARK: - paths and the mmap threshold

    func testPathsFollowTheThresholdMalloptAndThreadArenas() throws {
        let exe = try TracedProgram.build("paths")
        let run = try TracedProgram.trace(exe)
        XCTAssertEqual(run.status, 0)
        let trace = try DecodedTrace(path: run.traces[0])
        XCTAssertEqual(trace.header.mmapThreshold, 128 * 1024)
        XCTAssertEqual(trace.header.allocatorKind, 1)
        let bySize = { (size: UInt64) in trace.allocs.filter { $0.size == size } }
        XCTAssertEqual(bySize(1000).map(\.path), [.heap])
        XCTAssertEqual(bySize(200000).map(\.path), [.mmapThreshold, .heap], "glibc raises the threshold after the free")
        XCTAssertEqual(bySize(160000).map(\.path), [.mmapThreshold], "mallopt lowered the threshold to 64 KiB")
        let arena = bySize(777)
        XCTAssertEqual(arena.map(\.path), [.threadArena])
        XCTAssertNotEqual(arena.first?.tid, trace.header.pid, "allocated on the second thread")
        let mallopts = trace.records.compactMap { r -> [Int64]? in
            if case let .mallopt(p, v, result) = r.record { return [p, v, result] }
            return nil
        }
        XCTAssertEqual(mallopts, [[MalloptParameter.mmapThreshold, 65536, 1]])
    }

    // MARK: - C++

    func testOperatorNewShowsNewAndItsCaller() throws {
        let exe = try TracedProgram.build("cxx_new")
        let run = try TracedProgram.trace(exe)
        XCTAssertEqual(run.stdout, "0 1000\n")
        let trace = try DecodedTrace(path: run.traces[0])
        let widgets = trace.allocs.filter { $0.size == 64 }
        XCTAssertEqual(widgets.count, 2, "one leaked and one deleted Widget")
        let names = trace.functionNames(ofStack: widgets[0].stack, limit: 3)
        XCTAssertEqual(names.first, "_Znwm", "operator new is the first frame")
        XCTAssertEqual(names.dropFirst().first, "_ZN4shop7FactoryI6WidgetE4makeEv")
        XCTAssertEqual(names.dropFirst(2).first, "main")
        let buffer = trace.allocs.filter { $0.size == 4000 }
        XCTAssertEqual(buffer.count, 1, "the vector's buffer")
    }

    // MARK: - stack cache

    /// One caller frame reached through two outer paths in turn (one cache key, two stacks):
    /// every event has its exact stack, and after one walk for each path every later call is a
    /// verified cache hit (before, each alternation re-walked the stack: about 2,000 walks here).
    func testStackCacheKeepsAlternatingCallPaths() throws {
        let exe = try TracedProgram.build("alternating_paths", flags: ["-O2"])
        let run = try TracedProgram.trace(exe)
        XCTAssertEqual(run.status, 0)
        XCTAssertEqual(run.stdout, "2000\n")
        guard let path = run.traces.first else { return XCTFail("no trace") }
        let trace = try DecodedTrace(path: path)
        let viaA = trace.allocs.filter { $0.size == 48 }, viaB = trace.allocs.filter { $0.size == 49 }
        XCTAssertEqual(viaA.count, 1000)
        XCTAssertEqual(viaB.count, 1000)
        XCTAssertEqual(Set(viaA.map(\.stack)).count, 1)
        XCTAssertEqual(Set(viaB.map(\.stack)).count, 1)
        if let a = viaA.first?.stack, let b = viaB.first?.stack {
            XCTAssertEqual(Array(trace.functionNames(ofStack: a, limit: 3)), ["leaf", "via_a", "main"])
            XCTAssertEqual(Array(trace.functionNames(ofStack: b, limit: 3)), ["leaf", "via_b", "main"])
        }
        XCTAssertEqual(trace.unwindMismatches, 0)
        XCTAssertLessThanOrEqual(trace.unwindCount("walks") ?? .max, 3)
        XCTAssertGreaterThanOrEqual(trace.unwindCount("checked") ?? 0, 1990)
    }

    // MARK: - fork and exec

    func testForkedChildAndExecedProgramWriteTheirOwnTraces() throws {
        let exe = try TracedProgram.build("forker")
        let run = try TracedProgram.trace(exe, timeout: 60)
        XCTAssertEqual(run.status, 0)
        XCTAssertEqual(run.stdout.split(separator: "\n").sorted(), ["child 1", "exec target 1", "parent 1 0"])
        XCTAssertEqual(run.traces.count, 4, "parent, forked child, exec'ing child, exec'd program: \(run.traces)")
        let traces = try run.traces.map { try DecodedTrace(path: $0) }
        let parentPid = traces.compactMap(\.header.pid).min()
        guard let parent = traces.first(where: { $0.header.pid == parentPid && $0.header.parentTrace == nil }) else {
            return XCTFail("no parent trace")
        }
        XCTAssertTrue(parent.isComplete)
        XCTAssertEqual(parent.allocs.filter { $0.size == 1111 }.count, 1)
        XCTAssertEqual(parent.allocs.filter { [2222, 3333].contains($0.size) }.count, 0, "no child event in the parent's trace")
        let forks = parent.records.compactMap { r -> UInt64? in if case let .fork(pid) = r.record { return pid }; return nil }
        XCTAssertEqual(forks.count, 2)

        let parentPath = zip(run.traces, traces).first { $0.1.header.pid == parentPid && $0.1.header.parentTrace == nil }?.0
        let children = traces.filter { $0.header.parentTrace != nil }
        XCTAssertEqual(children.count, 2)
        for child in children {
            XCTAssertEqual(child.header.ppid, parentPid)
            XCTAssertEqual(child.header.parentTrace, parentPath)
            let size = (try? FileManager.default.attributesOfItem(atPath: child.header.parentTrace!)[.size] as? UInt64) ?? 0
            XCTAssertLessThanOrEqual(child.header.parentForkOffset ?? .max, size)
        }
        guard let leaker = children.first(where: { c in c.allocs.contains { $0.size == 2222 } }) else {
            return XCTFail("no forked child trace with its allocation")
        }
        XCTAssertTrue(leaker.isComplete, "the child ends with _exit, which writes END")
        let childAllocated = Set(leaker.allocs.map(\.address))
        let inheritedFrees = leaker.frees.filter { !childAllocated.contains($0) }
        XCTAssertEqual(inheritedFrees.count, 1, "the block inherited from the parent and freed in the child")
        let parent555 = parent.allocs.first { $0.size == 555 }?.address
        XCTAssertEqual(inheritedFrees.first, parent555)

        guard let execer = children.first(where: { c in c.records.contains { if case .exec = $0.record { return true }; return false } }) else {
            return XCTFail("no trace ending with EXEC")
        }
        if case let .exec(path) = execer.records.last(where: { if case .exec = $0.record { return true }; return false })?.record {
            XCTAssertEqual(path, exe)
        }
        // A trace that ends at its exec is whole, not cut: the reader says so; no other does.
        XCTAssertEqual(execer.endedByExec, exe)
        XCTAssertFalse(execer.isComplete)
        XCTAssertEqual(traces.filter { $0.endedByExec != nil }.count, 1)
        let execerPath = zip(run.traces, traces).first { $0.1.endedByExec != nil }?.0 ?? ""
        let report = try LeakReportRunner.run([execerPath, "--no-follow-exec"])
        XCTAssertEqual(report.status, 0)
        XCTAssertTrue(report.stdout.contains("trace ends where the process called exec (\(exe))"), report.stdout)
        XCTAssertFalse(report.stdout.contains("INCOMPLETE"), report.stdout)
        XCTAssertFalse(report.stderr.contains("incomplete"), report.stderr)
        let execed = traces.filter { $0.header.parentTrace == nil && $0.header.pid != parentPid }
        XCTAssertEqual(execed.count, 1)
        XCTAssertEqual(execed.first?.allocs.filter { $0.size == 3333 }.count, 1)
        XCTAssertEqual(execed.first?.header.arguments, [exe, "exec-target"])
    }

    // MARK: - dlopen / dlclose

    func testAllocationInADlclosedLibraryKeepsItsModule() throws {
        let lib = try TracedProgram.buildLibrary("plugin")
        let exe = try TracedProgram.build("dlopen_user")
        let run = try TracedProgram.trace(exe, arguments: [lib])
        XCTAssertEqual(run.stdout, "1\n")
        let trace = try DecodedTrace(path: run.traces[0])
        guard let leak = trace.allocs.first(where: { $0.size == 6060 }) else { return XCTFail("no plugin allocation") }
        let ip = trace.stacks.frames(leak.stack, limit: 1).first ?? 0
        let module = trace.moduleMaps.module(containing: ip, snapshot: trace.moduleMaps.count - 1)
        XCTAssertEqual(module?.path, lib)
        XCTAssertEqual(trace.functionName(at: ip), "plugin_make")
        let fromConstructor = trace.allocs.filter { $0.size == 48 }
        XCTAssertEqual(fromConstructor.count, 1)
        XCTAssertEqual(trace.functionName(at: trace.stacks.frames(fromConstructor[0].stack, limit: 1).first ?? 0), "plugin_init")
        XCTAssertTrue(trace.moduleMaps.snapshots.last.map { !$0.contains { $0.path == lib } } ?? false,
                      "the last snapshot is taken after dlclose")
        // Each plugin allocation (from its constructor, during dlopen, and from plugin_make)
        // comes after a snapshot that has the plugin: a reader that stops right there (growth,
        // --at) can still name the frames.
        var pluginLoaded = false
        var checked = 0
        for (record, _) in trace.records {
            if case let .modules(_, modules) = record { pluginLoaded = modules.contains { $0.path == lib } }
            if case let .alloc(_, _, _, size, _) = record, size == 48 || size == 6060 {
                XCTAssertTrue(pluginLoaded, "the \(size)-byte allocation precedes a snapshot with the plugin")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 2)
    }

    // MARK: - direct mappings and the program break

    func testDirectMappingsOfFourKindsPartialUnmapMremapAndBrk() throws {
        let exe = try TracedProgram.build("mappings")
        let dir = try TracedProgram.makeTraceDirectory()
        let file = dir.appendingPathComponent("mapped.dat").path
        let run = try TracedProgram.trace(exe, arguments: [file])
        XCTAssertEqual(run.stdout, "1\n")
        let trace = try DecodedTrace(path: run.traces[0])
        let page: UInt64 = 4096
        var maps: [(length: UInt64, flags: UInt64, fd: Int64, path: String, result: UInt64)] = []
        var unmaps: [(address: UInt64, length: UInt64)] = []
        var remaps: [(old: UInt64, oldSize: UInt64, newSize: UInt64, result: UInt64)] = []
        var sbrks: [Int64] = []
        var brks: [(argument: UInt64, before: UInt64, after: UInt64)] = []
        for (record, _) in trace.records {
            switch record {
            case let .mmap(_, length, _, flags, fd, _, result, _, path, _): maps.append((length, flags, fd, path, result))
            case let .munmap(address, length, _, _, _): unmaps.append((address, length))
            case let .mremap(old, oldSize, newSize, _, _, result, _, _): remaps.append((old, oldSize, newSize, result))
            case let .sbrk(increment, _, _, _): sbrks.append(increment)
            case let .brk(argument, _, before, after, _): brks.append((argument, before, after))
            default: break
            }
        }
        XCTAssertEqual(maps.map(\.length), [4 * page, 2 * page, 3 * page, page, page])
        XCTAssertEqual(maps.map { $0.flags & 0x23 }, [0x22, 0x21, 0x02, 0x01, 0x22])
        XCTAssertEqual(maps.map(\.fd).map { $0 >= 0 }, [false, false, true, true, false])
        XCTAssertEqual(maps.map(\.path), ["", "", file, file, ""])
        XCTAssertEqual(unmaps.map(\.length), [page, page])
        XCTAssertEqual(unmaps.first?.address, maps[0].result + page)
        XCTAssertEqual(unmaps.last?.address, maps[4].result)
        XCTAssertEqual(remaps.count, 1)
        XCTAssertEqual(remaps.first?.old, maps[1].result)
        XCTAssertEqual(remaps.first?.oldSize, 2 * page)
        XCTAssertEqual(remaps.first?.newSize, 5 * page)
        XCTAssertEqual(sbrks, [8 * 4096, -2 * 4096])
        XCTAssertEqual(brks.count, 1)
        if let b = brks.first {
            XCTAssertEqual(b.after, b.argument)
            XCTAssertEqual(b.before - b.after, 3 * page, "6 pages up, then back to 3")
        }
    }

    // MARK: - many threads

    func testEightThreadsLoseNoEventAndNeverFreeBeforeAllocating() throws {
        let exe = try TracedProgram.build("threads8")
        let run = try TracedProgram.trace(exe, timeout: 300)
        XCTAssertEqual(run.stdout, "ok\n")
        let trace = try DecodedTrace(path: run.traces[0])
        XCTAssertTrue(trace.isComplete)
        XCTAssertEqual(trace.unwindMismatches, 0)
        let workerAllocs = trace.allocs.filter { $0.tid != trace.header.pid && (16..<80).contains($0.size) }
        XCTAssertEqual(workerAllocs.count, 800_000)
        XCTAssertEqual(Set(workerAllocs.map(\.tid)).count, 8)
        // Replay in file order: no address is live twice, no free precedes its malloc.
        var live = Set<UInt64>()
        var doubleLive = 0, unknownFrees = 0
        for (record, _) in trace.records {
            switch record {
            case let .alloc(_, _, address, _, _):
                if !live.insert(address).inserted { doubleLive += 1 }
            case let .free(address):
                if live.remove(address) == nil { unknownFrees += 1 }
            default: break
            }
        }
        XCTAssertEqual(doubleLive, 0)
        XCTAssertEqual(unknownFrees, 0)
        let leakedWorkerBlocks = workerAllocs.filter { live.contains($0.address) }
        XCTAssertEqual(leakedWorkerBlocks.count, 0)
        guard case let .complete(end) = trace.endState else { return }
        XCTAssertEqual(end.allocs, UInt64(trace.allocs.count))
        XCTAssertEqual(end.frees, UInt64(trace.frees.count))
    }

    // MARK: - killed, closed descriptors

    func testTraceOfAKilledProcessReadsUpToTheCut() throws {
        let exe = try TracedProgram.build("slow_killed")
        let dir = try TracedProgram.makeTraceDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: exe)
        process.environment = ["LD_PRELOAD": TracedProgram.shimPath,
                               "LEAKTRACE_OUTPUT": dir.appendingPathComponent("killed.%p.lt").path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let ready = out.fileHandleForReading.availableData
        XCTAssertEqual(String(decoding: ready, as: UTF8.self), "ready\n")
        // The flush interval passes on the writer's clock, however busy the machine: wait (under a
        // watchdog) until the file, read as a cut trace, holds everything allocated before
        // 'ready', then kill.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(files.count, 1)
        let path = dir.appendingPathComponent(files.first ?? "none").path
        func flushed() -> Int { ((try? DecodedTrace(path: path))?.allocs.filter { $0.size == 100 }.count) ?? 0 }
        let deadline = Date().addingTimeInterval(60)
        while flushed() < 1001 && Date() < deadline { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let trace = try DecodedTrace(path: path)
        guard case .cut = trace.endState else { return XCTFail("a killed process has no END: \(String(describing: trace.endState))") }
        XCTAssertGreaterThanOrEqual(trace.allocs.filter { $0.size == 100 }.count, 1001,
                                    "everything before 'ready' is on disk, flushed while the process ran, and read after SIGKILL")
    }

    func testDaemonThatClosesAndReusesDescriptorsKeepsItsFilesAndTrace() throws {
        let exe = try TracedProgram.build("close_fds")
        let dir = try TracedProgram.makeTraceDirectory()
        let run = try TracedProgram.trace(exe, arguments: [dir.path])
        XCTAssertEqual(run.stdout, "1\n")
        XCTAssertEqual(run.status, 0)
        for n in 3..<12 {
            let text = try String(contentsOfFile: dir.appendingPathComponent("out\(n).txt").path, encoding: .utf8)
            XCTAssertEqual(text, "file \(n)\n")
        }
        let trace = try DecodedTrace(path: run.traces[0])
        XCTAssertTrue(trace.isComplete)
        XCTAssertEqual(trace.allocs.filter { $0.size == 999 }.count, 1)
        XCTAssertEqual(trace.allocs.filter { $0.size == 32 }.count, 1000)
    }

    // MARK: - output file safety and failures

    func testTraceFileIsPrivateAndNeverFollowsASymlink() throws {
        let exe = try TracedProgram.build("hooks_all")
        let dir = try TracedProgram.makeTraceDirectory()
        let target = dir.appendingPathComponent("victim.txt").path
        try "precious".write(toFile: target, atomically: true, encoding: .utf8)
        let planted = dir.appendingPathComponent("planted.lt").path
        try FileManager.default.createSymbolicLink(atPath: planted, withDestinationPath: target)
        let run = try TracedProgram.trace(exe, environment: ["LEAKTRACE_OUTPUT": planted])
        XCTAssertEqual(run.status, 7)
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "precious")
        let written = dir.appendingPathComponent("planted.lt.1").path
        let attributes = try FileManager.default.attributesOfItem(atPath: written)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        XCTAssertTrue(try DecodedTrace(path: written).isComplete)
    }

    func testUnwritableOutputSaysSoOnceAndTheProgramRunsUnchanged() throws {
        let exe = try TracedProgram.build("hooks_all")
        for output in ["/dev/full", "/nonexistent-dir/trace.lt"] {
            let run = try TracedProgram.trace(exe, environment: ["LEAKTRACE_OUTPUT": output])
            XCTAssertEqual(run.stdout, "done 1\n", output)
            XCTAssertEqual(run.status, 7, output)
            let lines = run.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(output): \(run.stderr)")
            XCTAssertTrue(lines.first?.hasPrefix("leaktrace: ") ?? false, run.stderr)
        }
    }

    // MARK: - the library itself

    func testPreloadLibraryNeedsOnlyLibcLibunwindAndZstd() throws {
        let result = try TracedProgram.run(executable: "/usr/bin/readelf", arguments: ["-d", TracedProgram.shimPath],
                                           environment: [:], timeout: 30)
        let needed = result.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line -> String? in
            guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        XCTAssertEqual(Set(needed), ["libc.so.6", "libunwind.so.8", "libzstd.so.1"])
    }

    func testWrapperRunsTheProgramAndReportsItsTraces() throws {
        let exe = try TracedProgram.build("hooks_all")
        let dir = try TracedProgram.makeTraceDirectory()
        let wrapper = TracedProgram.repositoryRoot.appendingPathComponent("Scripts/leaktrace").path
        let run = try TracedProgram.run(executable: wrapper, arguments: ["-o", dir.appendingPathComponent("w.%p.lt").path,
                                                                         "--no-family", "--", exe],
                                        environment: ["LEAKTRACE_LIB": TracedProgram.shimPath], timeout: 60)
        XCTAssertEqual(run.status, 7)
        XCTAssertEqual(run.stdout, "done 1\n")
        XCTAssertTrue(run.stderr.contains("leaktrace: 1 trace(s) written:"), run.stderr)
        XCTAssertTrue(run.stderr.contains("read with:"), run.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(files.count, 1)
    }

    func testWrapperRunsAStaticProgramUntracedWithOneLine() throws {
        let exe = try TracedProgram.build("hooks_all", flags: ["-static"], output: "hooks_all_static")
        let wrapper = TracedProgram.repositoryRoot.appendingPathComponent("Scripts/leaktrace").path
        let run = try TracedProgram.run(executable: wrapper, arguments: [exe],
                                        environment: ["LEAKTRACE_LIB": TracedProgram.shimPath], timeout: 60)
        XCTAssertEqual(run.status, 7)
        XCTAssertEqual(run.stdout, "done 1\n")
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1)
        XCTAssertTrue(run.stderr.contains("statically linked"), run.stderr)
    }

    // MARK: - helpers

    private func replayLiveAddresses(_ trace: DecodedTrace) -> Set<UInt64> {
        var live = Set<UInt64>()
        for (record, _) in trace.records {
            switch record {
            case let .alloc(_, _, address, _, _): live.insert(address)
            case let .free(address), let .reallocRelease(address): live.remove(address)
            case let .realloc(status, _, _, old, new, _, _):
                if status == .failed { live.insert(old) } else if new != 0 { live.insert(new) }
            default: break
            }
        }
        return live
    }
}
