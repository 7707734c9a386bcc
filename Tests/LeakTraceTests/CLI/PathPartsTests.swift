import XCTest
@testable import LeakReportCommands

/// The path splitting that finds a trace's family in its directory: what NSString's
/// `deletingLastPathComponent` and `lastPathComponent` gave for the paths a trace can have.
final class PathPartsTests: XCTestCase {
    func testDirectoryAndFileNameOfTracePaths() {
        let cases: [(path: String, directory: String, file: String)] = [
            ("/tmp/rp/perl.25964.lt", "/tmp/rp", "perl.25964.lt"),
            ("perl.lt", "", "perl.lt"),
            ("runs/perl.lt", "runs", "perl.lt"),
            ("/perl.lt", "/", "perl.lt"),
            ("/tmp//perl.lt", "/tmp", "perl.lt"),
            ("/tmp/runs/", "/tmp", "runs"),
            ("/", "/", "/"),
        ]
        for (path, directory, file) in cases {
            XCTAssertEqual(directoryPart(of: path), directory, path)
            XCTAssertEqual(fileNamePart(of: path), file, path)
        }
    }
}
