// The analyzer against hostile input, starting from real traces (the corpus): cut at every byte,
// 10,000 bit flips, references to stacks that do not exist and frames in no module, lengths that
// claim terabytes, other tools' files, a future version, an empty file, a directory, a FIFO.
// Never a crash or a hang: a one-line error, or the records up to the damage and where reading
// stopped. The synthetic-trace versions of these checks are in ReaderDamageTests and
// ReaderOpenErrorTests; these use what the tracer really writes.

import Foundation
import XCTest
import TraceFormat
import Symbolization

final class FuzzHostileInputTests: XCTestCase {
    private var scratch: [String] = []

    override func tearDown() {
        for path in scratch { try? FileManager.default.removeItem(atPath: path) }
        scratch.removeAll()
        super.tearDown()
    }

    private func scratchDirectory() throws -> String {
        let path = try temporaryDirectory()
        scratch.append(path)
        return path
    }

    // MARK: - Cuts and bit flips of real traces

    /// Every prefix of two real traces (one with raw chunks, one with zstd chunks): opening
    /// succeeds exactly when the header is whole, the records delivered are always a prefix of the
    /// whole trace's records (never one that is not in it), they never shrink as the cut moves
    /// later, and the reader says where it stopped.
    func testCutAtEveryByteOffsetOfRealTraces() throws {
        var cuts = 0
        for name in ["every-record-raw.lt", "every-record-zstd.lt"] {
            let bytes = try FuzzKit.corpusFile(name)
            let whole = FuzzKit.execute(bytes, keepRecords: true)
            XCTAssertTrue(whole.endState?.isComplete ?? false, name)
            let headerEnd = Int(try TraceReader(bytes: bytes, name: name).firstChunkOffset)
            var previous = 0
            for length in 0...bytes.count {
                let cut = FuzzKit.execute(Array(bytes[..<length]), keepRecords: true)
                cuts += 1
                XCTAssertEqual(cut.violations, [], "\(name) cut at \(length)")
                XCTAssertEqual(cut.refusal != nil, length < headerEnd, "\(name) cut at \(length): \(cut.refusal ?? "opened")")
                let count = cut.records.count
                XCTAssertLessThanOrEqual(count, whole.records.count, "\(name) cut at \(length)")
                XCTAssertEqual(cut.records, Array(whole.records.prefix(count)), "\(name) cut at \(length): not a prefix")
                XCTAssertEqual(cut.contexts, Array(whole.contexts.prefix(count)), "\(name) cut at \(length)")
                XCTAssertGreaterThanOrEqual(count, previous, "\(name) cut at \(length): fewer records than a shorter cut")
                previous = count
                if length < bytes.count, length >= headerEnd {
                    guard case let .cut(offset, _)? = cut.endState else {
                        XCTFail("\(name) cut at \(length): \(String(describing: cut.endState))"); continue
                    }
                    XCTAssertLessThanOrEqual(offset, UInt64(length), "\(name) cut at \(length)")
                }
            }
            XCTAssertEqual(previous, whole.records.count, name)
        }
        FuzzKit.reportFigures(["cuts": cuts])
    }

    /// 10,000 random single-bit flips of a real trace with raw chunks: no crash, no hang, no
    /// violated promise; every chunk that lies wholly before the flipped byte is delivered
    /// exactly as in the undamaged trace.
    func testTenThousandBitFlipsOfARealTrace() throws {
        let name = "every-record-raw.lt"
        let bytes = try FuzzKit.corpusFile(name)
        let whole = FuzzKit.execute(bytes, keepRecords: true)
        let headerEnd = Int(try TraceReader(bytes: bytes, name: name).firstChunkOffset)
        let chunkStarts = Set(whole.contexts.map { Int($0.chunkOffset) }).sorted()
        XCTAssertGreaterThan(chunkStarts.count, 1, "a trace of several chunks")
        let flips = FuzzKit.environmentNumber("LEAKTRACE_FUZZ_BITFLIPS", 10_000)
        final class Tally: @unchecked Sendable { var survived = 0, refused = 0, cut = 0, complete = 0 }
        let tally = Tally()
        withWatchdog(seconds: 600, "\(flips) bit flips") {
            var random = SeededGenerator(seed: 0xB17F_11B5)
            for flip in 0..<flips {
                var damaged = bytes
                let position = Int(random.next() % UInt64(bytes.count))
                let bit = UInt8(random.next() % 8)
                damaged[position] ^= 1 << bit
                let outcome = FuzzKit.execute(damaged, keepRecords: true)
                let label = "flip \(flip): byte \(position) bit \(bit)"
                XCTAssertEqual(outcome.violations, [], label)
                if position >= headerEnd {
                    // Records of the chunks that end before the damaged one are untouched.
                    let damagedChunk = chunkStarts.last { $0 <= position } ?? headerEnd
                    let intact = whole.contexts.prefix { Int($0.chunkOffset) < damagedChunk }.count
                    XCTAssertNil(outcome.refusal, label)
                    XCTAssertGreaterThanOrEqual(outcome.records.count, intact, label)
                    XCTAssertEqual(Array(outcome.records.prefix(intact)), Array(whole.records.prefix(intact)), label)
                }
                if outcome.violations.isEmpty { tally.survived += 1 }
                switch outcome.endState {
                case .complete?: tally.complete += 1
                case .cut?: tally.cut += 1
                case nil: tally.refused += 1
                }
            }
        }
        print("bit flips: \(flips) flips, \(tally.survived) survived; \(tally.refused) refused at open, "
              + "\(tally.cut) read to a cut, \(tally.complete) still complete")
        FuzzKit.reportFigures(["bitflips": flips, "survived": tally.survived])
        XCTAssertEqual(tally.survived, flips)
        XCTAssertGreaterThan(tally.cut, 0)
        XCTAssertGreaterThan(tally.refused, 0)
    }

    // MARK: - References to what does not exist

    /// A real trace cut by SIGKILL (so without END), with one more raw chunk appended.
    private func killedTrace(appending records: ChunkRecords) throws -> (bytes: [UInt8], chunkOffset: Int, original: FuzzKit.Outcome) {
        let bytes = try FuzzKit.corpusFile("killed-after-flush.lt")
        let original = FuzzKit.execute(bytes, keepRecords: true)
        var builder = TraceBuilder(rawHeaderFields: [])
        let start = builder.bytes.count
        builder.appendChunk(records)
        return (bytes + builder.bytes[start...], bytes.count, original)
    }

    func testARecordNamingAnUndefinedStack() throws {
        let original = FuzzKit.execute(try FuzzKit.corpusFile("killed-after-flush.lt"), keepRecords: true)
        let defined = original.records.filter { $0.kindName == "STACK" }.count
        var chunk = ChunkRecords([.thread(tid: 7), .time(microseconds: 1)])
        let badStart = chunk.bytes.count
        chunk.append(.alloc(function: .malloc, path: .heap, address: 0x1000, size: 10, stack: UInt32(defined + 7)))
        let (bytes, chunkOffset, _) = try killedTrace(appending: chunk)
        let outcome = FuzzKit.execute(bytes, keepRecords: true)
        XCTAssertEqual(outcome.violations, [])
        XCTAssertEqual(outcome.records, original.records + [.thread(tid: 7), .time(microseconds: 1)])
        let at = chunkOffset + 16 + badStart
        XCTAssertEqual(outcome.endState, .cut(atOffset: UInt64(at), reason: "chunk at offset \(chunkOffset): ALLOC record "
                                              + "names undefined stack id \(defined + 7) (\(defined) defined) at offset \(at)"))
    }

    /// A stack whose frame lies in no loaded module: the trace reads, the module lookup says
    /// none, and symbolization gives the bare address rather than failing or guessing.
    func testAFrameInNoModuleIsShownAsABareAddress() throws {
        let original = FuzzKit.execute(try FuzzKit.corpusFile("killed-after-flush.lt"), keepRecords: true)
        let defined = UInt32(original.records.filter { $0.kindName == "STACK" }.count)
        let nowhere: UInt64 = 0x0000_1234_5678_9ABC
        let chunk = ChunkRecords([.thread(tid: 7), .time(microseconds: 1), .stack(id: defined + 1, parent: 0, ip: nowhere),
                                  .alloc(function: .malloc, path: .heap, address: 0x1000, size: 10, stack: defined + 1)])
        let (bytes, _, _) = try killedTrace(appending: chunk)
        let path = try temporaryFile(bytes)
        scratch.append((path as NSString).deletingLastPathComponent)
        let reader = try TraceReader(path: path)
        var last: TraceRecord?
        reader.forEachRecord { record, _ in last = record }
        XCTAssertEqual(last, .alloc(function: .malloc, path: .heap, address: 0x1000, size: 10, stack: defined + 1))
        XCTAssertEqual(reader.stacks.frames(defined + 1), [nowhere])
        XCTAssertNil(reader.moduleMaps.module(containing: nowhere, snapshot: reader.moduleMaps.count - 1))
        let frames = Symbolizer().symbolize(stack: [nowhere]) { reader.moduleMaps.module(containing: $0, snapshot: 0) }
        XCTAssertEqual(frames, [SymbolizedFrame(address: nowhere)])
    }

    // MARK: - Paths named by a trace

    /// A hostile trace names, as its modules, a shell script that would leave a marker file if
    /// anything ran it, a writable text file, a FIFO nobody writes to, a directory and a device.
    /// Symbolizing frames in all of them finishes (nothing blocks), gives bare module+offset
    /// frames, runs nothing, and leaves every file exactly as it was.
    func testPathsNamedByATraceAreOnlyReadNeverRunOrWritten() throws {
        let directory = try scratchDirectory()
        let marker = directory + "/ran"
        let script = directory + "/module.sh"
        try "#!/bin/sh\ntouch '\(marker)'\n".write(toFile: script, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(script, 0o755), 0)
        let text = directory + "/notes.txt"
        try "keep me\n".write(toFile: text, atomically: true, encoding: .utf8)
        let fifo = directory + "/module.fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let paths = [script, text, fifo, directory, "/dev/zero"]
        let before = try [script, text].map { try FileManager.default.attributesOfItem(atPath: $0) }
        let modules = paths.enumerated().map { index, path in
            Module(path: path, bias: UInt64(0x10_0000 * (index + 1)), buildID: [0xAB, UInt8(index)],
                   segments: [ModuleSegment(start: UInt64(0x10_0000 * (index + 1)), size: 0x1000, flags: 5)])
        }
        var records: [TraceRecord] = [.modules(generation: 1, modules: modules), .thread(tid: 1), .time(microseconds: 1)]
        for index in paths.indices {
            records.append(.stack(id: UInt32(index + 1), parent: UInt32(index), ip: UInt64(0x10_0000 * (index + 1) + 0x123)))
        }
        records.append(.alloc(function: .malloc, path: .heap, address: 0x5000, size: 8, stack: UInt32(paths.count)))
        var builder = TraceBuilder()
        builder.appendChunk(records)
        let tracePath = directory + "/hostile.lt"
        try Data(builder.bytes).write(to: URL(fileURLWithPath: tracePath))

        withWatchdog(seconds: 60, "symbolizing frames in hostile module paths") {
            do {
                let reader = try TraceReader(path: tracePath)
                reader.forEachRecord { _, _ in }
                let symbolizer = Symbolizer()
                let frames = symbolizer.symbolize(stack: reader.stacks.frames(UInt32(paths.count))) {
                    reader.moduleMaps.module(containing: $0, snapshot: 0)
                }
                XCTAssertEqual(frames.map(\.module), paths.reversed().map { Optional($0) })
                XCTAssertEqual(frames.compactMap(\.function), [], "no function can come from these files")
                XCTAssertEqual(frames.map(\.moduleOffset), Array(repeating: Optional(UInt64(0x123)), count: paths.count))
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the analyzer ran a program named by a trace")
        XCTAssertEqual(try String(contentsOfFile: text, encoding: .utf8), "keep me\n")
        let after = try [script, text].map { try FileManager.default.attributesOfItem(atPath: $0) }
        XCTAssertEqual(after.map { $0[.modificationDate] as? Date }, before.map { $0[.modificationDate] as? Date })
        XCTAssertEqual(after.map { $0[.size] as? NSNumber }, before.map { $0[.size] as? NSNumber })
    }

    // MARK: - Lengths that claim terabytes

    /// Length fields claiming 2^40 bytes inside a real trace: the reader refuses them before it
    /// allocates anything for them (resident memory does not move by more than a few MiB).
    func testLengthFieldsClaimingTerabytesAllocateNothing() throws {
        let before = ReaderBenchmarkTests.residentBytes()
        var sized = ChunkRecords([.thread(tid: 7)])
        let badStart = sized.bytes.count
        var tail = FieldWriter()
        tail.u8(0x4C) // NOTE
        tail.uv(1 << 40)
        tail.raw([0, 5, 104, 101, 108, 108, 111])
        sized.appendRaw(tail.bytes)
        let (bytes, chunkOffset, original) = try killedTrace(appending: sized)
        let outcome = FuzzKit.execute(bytes, keepRecords: true)
        XCTAssertEqual(outcome.violations, [])
        XCTAssertEqual(outcome.records, original.records + [.thread(tid: 7)])
        let at = chunkOffset + 16 + badStart
        XCTAssertEqual(outcome.endState, .cut(atOffset: UInt64(at), reason: "chunk at offset \(chunkOffset): NOTE record runs "
                                              + "past the end of the chunk at offset \(at)"))

        // A chunk header claiming the most a 32-bit size can say, and one over the 64 MiB limit.
        var header = [UInt8](try FuzzKit.corpusFile("killed-after-flush.lt"))
        let cutAt = header.count
        header += Array("LTCK".utf8) + [1, 0, 0, 0] + [0xFF, 0xFF, 0xFF, 0xFF] + [0x00, 0x00, 0x00, 0x04]
        header += [UInt8](repeating: 0x28, count: 64)
        let huge = FuzzKit.execute(header)
        XCTAssertEqual(huge.violations, [])
        XCTAssertEqual(huge.endState, .cut(atOffset: UInt64(cutAt),
                                           reason: "chunk at offset \(cutAt): stored-size 4294967295 is over the 64 MiB limit"))

        // A header-size of 4 GiB in the file header.
        var fileHeader = try FuzzKit.corpusFile("every-record-zstd.lt")
        fileHeader.replaceSubrange(12..<16, with: [0xFF, 0xFF, 0xFF, 0xFF])
        let refused = FuzzKit.execute(fileHeader)
        XCTAssertEqual(refused.refusal, "fuzz.lt: damaged header (header-size 4294967295 is over the 1 MiB limit)")
        XCTAssertLessThan(ReaderBenchmarkTests.residentBytes() - before, 16 << 20)
    }

    // MARK: - Files that are not traces

    /// Other tools' files and things that are not files: each is refused at once with one line
    /// that names it, by the reader and (when it has its dump command) by leakreport.
    func testForeignFilesAndNonFilesAreRefusedInOneLine() throws {
        let directory = try scratchDirectory()
        var cases: [(path: String, expected: String)] = []

        // gzip, made here; an ELF executable; an empty file.
        let text = directory + "/text.txt"
        try "hello leaktrace\n".write(toFile: text, atomically: true, encoding: .utf8)
        let gzip = try TracedProgram.run(executable: "/usr/bin/gzip", arguments: ["-k", "-n", text], environment: [:], timeout: 30)
        XCTAssertEqual(gzip.status, 0, gzip.stderr)
        cases.append((text + ".gz", "not a leaktrace file (starts with 1f 8b 08 00)"))
        cases.append(("/bin/true", "not a leaktrace file (starts with 7f 45 4c 46)"))
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/empty.lt", contents: Data()))
        cases.append((directory + "/empty.lt", "empty file"))

        // A trace from a future version of the format.
        var future = try FuzzKit.corpusFile("every-record-zstd.lt")
        future[8] = 3
        try Data(future).write(to: URL(fileURLWithPath: directory + "/future.lt"))
        cases.append((directory + "/future.lt", "format version 3 is newer than this reader (2)"))

        // A directory, and a FIFO nobody writes to (opening it for reading would block).
        cases.append((directory, "is a directory"))
        XCTAssertEqual(mkfifo(directory + "/fifo.lt", 0o600), 0)
        cases.append((directory + "/fifo.lt", "not a regular file (a FIFO)"))

        // A heaptrack capture, made here when heaptrack is installed.
        if let capture = try heaptrackCapture(in: directory) {
            let prefix = try Data(contentsOf: URL(fileURLWithPath: capture)).prefix(4).map { String(format: "%02x", $0) }
            cases.append((capture, "not a leaktrace file (starts with \(prefix.joined(separator: " ")))"))
        } else {
            print("heaptrack is not installed (apt-get install heaptrack): its capture is not tried")
        }

        for (path, expected) in cases {
            withWatchdog(seconds: 30, "opening \(path)") {
                do {
                    _ = try TraceReader(path: path)
                    XCTFail("\(path) was opened as a trace")
                } catch let error as TraceError {
                    XCTAssertEqual(error.description, "\(path): \(expected)")
                } catch {
                    XCTFail("\(path): \(error) is not a TraceError")
                }
            }
            if HazardKit.leakreportHasDump {
                let run = try TracedProgram.run(executable: TracedProgram.leakreportPath, arguments: ["dump", path],
                                                environment: [:], timeout: 30)
                XCTAssertNotEqual(run.status, 0, path)
                XCTAssertFalse(run.terminatedBySignal, path)
                XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, "\(path): \(run.stderr)")
            }
        }
    }

    /// `heaptrack -o` of a small program; nil when heaptrack is not installed.
    private func heaptrackCapture(in directory: String) throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/heaptrack") else { return nil }
        let exe = try HazardKit.build("hazard_output")
        let run = try TracedProgram.run(executable: "/usr/bin/heaptrack",
                                        arguments: ["-o", directory + "/capture", exe, "1000"],
                                        environment: [:], timeout: 120)
        XCTAssertEqual(run.status, 0, run.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("capture") }
        XCTAssertEqual(files.count, 1, "\(files)")
        return files.first.map { directory + "/" + $0 }
    }
}
