// Opening what is not a readable trace fails at once with one line naming the file.

import Foundation
import XCTest
import TraceFormat

final class ReaderOpenErrorTests: XCTestCase {
    private func assertOpenFails(_ path: String, _ expected: String, file: StaticString = #filePath,
                                 line: UInt = #line) {
        XCTAssertThrowsError(try TraceReader(path: path), file: file, line: line) { error in
            XCTAssertEqual(error as? TraceError, TraceError(expected), file: file, line: line)
        }
    }

    private func assertBytesFail(_ bytes: [UInt8], _ expected: String, file: StaticString = #filePath,
                                 line: UInt = #line) {
        XCTAssertThrowsError(try TraceReader(bytes: bytes, name: "trace.lt"), file: file, line: line) { error in
            XCTAssertEqual(error as? TraceError, TraceError(expected), file: file, line: line)
            XCTAssertFalse("\(error)".contains("\n"), file: file, line: line)
        }
    }

    // MARK: - Not a regular file

    func testMissingFile() throws {
        let path = try temporaryDirectory() + "/absent.lt"
        assertOpenFails(path, "\(path): no such file")
    }

    func testDirectory() throws {
        let path = try temporaryDirectory()
        assertOpenFails(path, "\(path): is a directory")
    }

    func testFIFOIsRefusedWithoutBlocking() throws {
        let path = try temporaryDirectory() + "/pipe.lt"
        XCTAssertEqual(mkfifo(path, 0o600), 0)
        // Opening a FIFO for reading blocks until a writer appears; the reader must not open it.
        withWatchdog(seconds: 10, "opening a FIFO") {
            do {
                _ = try TraceReader(path: path)
                XCTFail("a FIFO was opened as a trace")
            } catch {
                XCTAssertEqual(error as? TraceError, TraceError("\(path): not a regular file (a FIFO)"))
            }
        }
    }

    func testCharacterDevice() {
        assertOpenFails("/dev/null", "/dev/null: not a regular file (a character device)")
    }

    /// Root reads files whatever their mode, so as root (CI) the refusal is checked through
    /// `leakreport info` run as nobody (setpriv, util-linux): the reader's one line, as the
    /// command prints it.
    func testUnreadableFile() throws {
        let path = try temporaryFile(TraceBuilder().bytes)
        XCTAssertEqual(chmod(path, 0), 0)
        guard getuid() == 0 else { return assertOpenFails(path, "\(path): permission denied") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw missingTool("/usr/bin/setpriv", package: "util-linux")
        }
        let run = try TracedProgram.run(
            executable: "/usr/bin/setpriv",
            arguments: ["--reuid=65534", "--regid=65534", "--clear-groups", TracedProgram.leakreportPath, "info", path],
            environment: [:], timeout: 60)
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.stderr, "leakreport: error: \(path): permission denied\n")
    }

    // MARK: - Not a trace

    func testEmptyFile() throws {
        let path = try temporaryFile([])
        assertOpenFails(path, "\(path): empty file")
    }

    func testELFBinary() {
        assertOpenFails("/bin/sh", "/bin/sh: not a leaktrace file (starts with 7f 45 4c 46)")
    }

    func testGzipFile() throws {
        // The first bytes of `echo hello | gzip`.
        let gzip: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xCB, 0x48, 0xCD, 0xC9,
                             0xC9, 0xE7, 0x02, 0x00, 0x20, 0x30, 0x3A, 0x36, 0x06, 0x00, 0x00, 0x00]
        let path = try temporaryFile(gzip, name: "trace.lt.gz")
        assertOpenFails(path, "\(path): not a leaktrace file (starts with 1f 8b 08 00)")
    }

    func testTextFileShorterThanFourBytes() {
        assertBytesFail(Array("hi\n".utf8), "trace.lt: not a leaktrace file (starts with 68 69 0a)")
    }

    func testAWholeTraceCompressedWithZstdIsNotATrace() {
        var builder = TraceBuilder()
        builder.appendChunk(SampleRecords.everyKind)
        let compressed = TraceBuilder.zstdFrame(builder.bytes, declareContentSize: true)
        assertBytesFail(compressed, "trace.lt: not a leaktrace file (starts with 28 b5 2f fd)")
    }

    // MARK: - Header problems

    func testNewerFormatVersion() {
        assertBytesFail(TraceBuilder(version: 7).bytes, "trace.lt: format version 7 is newer than this reader (2)")
    }

    func testVersionZero() {
        assertBytesFail(TraceBuilder(version: 0).bytes, "trace.lt: damaged header (format version 0 does not exist)")
    }

    func testFileCutInsideTheFixedHeader() {
        let bytes = Array(TraceBuilder().bytes.prefix(11))
        assertBytesFail(bytes, "trace.lt: damaged header (the file is 11 bytes, shorter than the 16-byte file header)")
    }

    func testHeaderSizeOverTheLimit() {
        let bytes = TraceBuilder(rawHeaderFields: [], declaredHeaderSize: (1 << 20) + 1).bytes
        assertBytesFail(bytes, "trace.lt: damaged header (header-size 1048577 is over the 1 MiB limit)")
    }

    func testHeaderCutShort() {
        let bytes = Array(TraceBuilder().bytes.prefix(40))
        let declared = TraceBuilder().bytes.count - 16
        assertBytesFail(bytes, "trace.lt: damaged header (header-size \(declared) but only 24 bytes follow; the file is cut)")
    }

    func testHeaderFieldLongerThanTheHeader() {
        var fields = FieldWriter()
        fields.uv(5)
        fields.uv(1 << 40)
        fields.raw(Array("/bin/x".utf8))
        assertBytesFail(TraceBuilder(rawHeaderFields: fields.bytes).bytes,
                        "trace.lt: damaged header (field 5 at byte 16 claims 1099511627776 bytes, 6 remain)")
    }

    func testNumericHeaderFieldThatIsNotOneVarint() {
        // pid with two bytes of value where the varint ends after the first.
        assertBytesFail(TraceBuilder(rawHeaderFields: [0x03, 0x02, 0x05, 0x06]).bytes,
                        "trace.lt: damaged header (pid: not a single varint)")
    }

    func testHeaderFieldKeyCutShort() {
        assertBytesFail(TraceBuilder(rawHeaderFields: [0x01, 0x01, 0x08, 0x85]).bytes,
                        "trace.lt: damaged header (field at byte 19 has no valid key and length)")
    }
}
