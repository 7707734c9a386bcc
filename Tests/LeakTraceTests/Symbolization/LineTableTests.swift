// The compact line tables (Sources/Symbolization/LineTables.swift) against libdw's own lookup,
// dwarf_getsrc_die, on a Dwarf handle of their own: at every row's address and the addresses
// either side of it, in every unit of this test executable's DWARF (C and Swift units, DWARF 4
// and 5), the same row (line, column, file name) or the same absence of one. Small budgets make
// the reader take the first tables through the module's handle, then end its own handle again and
// again, so tables read each way and after a reset are checked.

import CLibDW
@testable import Symbolization
import XCTest

final class LineTableTests: XCTestCase {
    func testRowsAgreeWithLibdwAtEveryRowAddressAndAroundIt() throws {
        let fd = open("/proc/self/exe", O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        guard let truth = dwarf_begin(fd, DWARF_C_READ) else { throw XCTSkip("the test executable has no DWARF") }
        defer { dwarf_end(truth) }
        let reader = try XCTUnwrap(LineTableReader(dwarf: truth, rowBudget: 2_000, mainBytes: 4_096))

        var offset: Dwarf_Off = 0
        var next: Dwarf_Off = 0
        var headerSize = 0
        var unitsChecked = 0
        var rowsChecked = 0
        // Enough rows for many resets of the reader's handle, in a few seconds.
        while rowsChecked < 300_000, dwarf_nextcu(truth, offset, &next, &headerSize, nil, nil, nil) == 0 {
            defer { offset = next }
            var unit = Dwarf_Die()
            var lines: OpaquePointer?
            var lineCount = 0
            guard dwarf_offdie(truth, offset + Dwarf_Off(headerSize), &unit) != nil,
                  dwarf_getsrclines(&unit, &lines, &lineCount) == 0, lineCount > 0 else { continue }
            let table = try XCTUnwrap(reader.table(unitOffset: dwarf_dieoffset(&unit)))
            XCTAssertEqual(table.addresses.count, lineCount)
            unitsChecked += 1
            for index in 0 ..< lineCount {
                var address: Dwarf_Addr = 0
                XCTAssertEqual(dwarf_lineaddr(dwarf_onesrcline(lines, index), &address), 0)
                for probe in [address &- 1, address, address &+ 1] {
                    let expected = dwarf_getsrc_die(&unit, probe).flatMap { row -> (Int32, Int32, String)? in
                        guard let file = dwarf_linesrc(row, nil, nil) else { return nil }
                        var line: Int32 = 0
                        var column: Int32 = 0
                        _ = dwarf_lineno(row, &line)
                        _ = dwarf_linecol(row, &column)
                        return (line, column, String(cString: file))
                    }
                    let found = table.row(at: probe).flatMap { row -> (Int32, Int32, String)? in
                        row.file >= 0 ? (row.line, row.column, table.fileNames[Int(row.file)]) : nil
                    }
                    XCTAssertEqual(found?.0, expected?.0, "unit at \(offset), address \(probe)")
                    XCTAssertEqual(found?.1, expected?.1, "unit at \(offset), address \(probe)")
                    XCTAssertEqual(found?.2, expected?.2, "unit at \(offset), address \(probe)")
                }
                rowsChecked += 1
            }
            // The file table, as DW_AT_call_file counts in it.
            var files: OpaquePointer?
            var fileCount = 0
            XCTAssertEqual(dwarf_getsrcfiles(&unit, &files, &fileCount), 0)
            XCTAssertEqual(table.fileCount, fileCount)
            for index in 0 ..< fileCount {
                XCTAssertEqual(table.fileNames[index], dwarf_filesrc(files, index, nil, nil).map { String(cString: $0) } ?? "")
            }
        }
        XCTAssertGreaterThan(unitsChecked, 10)
        XCTAssertGreaterThan(rowsChecked, 2_000 * 5, "the reader's handle was never ended")
    }
}
