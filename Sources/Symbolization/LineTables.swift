// Line tables, read once per unit and kept compact.
//
// libdw keeps every line table it has read until its Dwarf handle ends, at about 80 bytes a row:
// the units of libpython that a report of CPython looks into held 23 MB of rows, all of it on top
// of the replay's live table at its peak (sites are named during the replay). Here each unit's
// table is copied out at 20 bytes a row, read through a Dwarf handle of its own over the same
// ELF file, and that handle is ended whenever the rows it holds pass a bound, which gives libdw's
// memory back; the first few small programs are read through the module's own handle. A lookup
// answers as dwarf_getsrc_die (libdw 0.188) does: the last row at or before the address in
// libdw's order, unless that row ends a sequence.

import CLibDW

/// One unit's line table: its rows in libdw's order (by address; at one address a row that ends a
/// sequence first, then the order of the line program), and its file names.
final class LineTable {
    struct Row {
        var line: Int32
        var column: Int32
        /// Index into `fileNames`, or `LineTable.noFile`, or `LineTable.endOfSequence`.
        var file: Int32
    }

    /// A row whose file index names no file of the table.
    static let noFile: Int32 = -1
    /// A row that ends a sequence: the address after its code.
    static let endOfSequence: Int32 = -2

    let addresses: [UInt64]
    let rows: [Row]
    /// File names as libdw gives them (dwarf_filesrc), by index; the first `fileCount` are the
    /// unit's file table (what DW_AT_call_file counts in).
    let fileNames: [String]
    let fileCount: Int
    /// File names as the report gives them (made absolute), by index, filled as they are asked for.
    var reportedNames: [String?]

    init(addresses: [UInt64], rows: [Row], fileNames: [String], fileCount: Int) {
        self.addresses = addresses; self.rows = rows; self.fileNames = fileNames; self.fileCount = fileCount
        reportedNames = Array(repeating: nil, count: fileNames.count)
    }

    /// The row covering `address`: the last one starting at or before it, unless that row ends
    /// its sequence (the address is past the code the table describes).
    func row(at address: UInt64) -> Row? {
        guard !addresses.isEmpty else { return nil }
        var low = 0
        var high = addresses.count - 1
        while low < high {
            let middle = high - (high - low) / 2
            if address < addresses[middle] { high = middle - 1 } else { low = middle }
        }
        guard rows[low].file != Self.endOfSequence, addresses[low] <= address else { return nil }
        return rows[low]
    }
}

/// Reads units' line tables through a Dwarf handle of its own, and ends that handle whenever the
/// rows libdw holds in it pass `rowBudget`. Each unit is read once.
final class LineTableReader {
    /// The rows libdw may hold before its handle is ended (the default, about 650 KB).
    let rowBudget: Int

    private let main: OpaquePointer
    private let elf: OpaquePointer
    private let alternate: OpaquePointer?
    private var handle: OpaquePointer?
    private var rowsHeld = 0
    /// Bytes of line programs that may still be read through the module's own handle, whose rows
    /// stay until the module is let go: a few small tables (a program of libc) cost less kept
    /// there than the reader's own handle does, which reads every unit header before the one
    /// it wants (3.4 M instructions for a unit near the end of libc's). A program has a byte
    /// or more per row, so this bounds those rows too.
    private var mainBytesLeft: Int
    /// .debug_line of the module's file, for the length of a unit's program.
    private lazy var lineSection: UnsafeRawBufferPointer? = sectionData(named: ".debug_line", in: elf)
    /// By the offset of the unit's DIE; nil for a unit whose table cannot be read.
    private var tables: [Dwarf_Off: LineTable?] = [:]
    /// Units whose tables have been read (or tried).
    var unitsRead: Int { tables.count }

    /// A reader over the ELF file `dwarf` was read from, sharing its dwz file; nil when libdw
    /// does not give the ELF file.
    init?(dwarf: OpaquePointer, rowBudget: Int = 8_192, mainBytes: Int = 16_384) {
        guard let elf = dwarf_getelf(dwarf) else { return nil }
        main = dwarf
        self.elf = elf
        self.rowBudget = rowBudget
        mainBytesLeft = mainBytes
        alternate = dwarf_getalt(dwarf)
    }

    deinit {
        if let handle { dwarf_end(handle) }
    }

    /// The line table of the unit whose DIE is at `unitOffset` in .debug_info.
    func table(unitOffset: Dwarf_Off) -> LineTable? {
        if let known = tables[unitOffset] { return known }
        let table = read(unitOffset)
        tables[unitOffset] = .some(table)
        return table
    }

    private func read(_ unitOffset: Dwarf_Off) -> LineTable? {
        var unit = Dwarf_Die()
        if dwarf_offdie(main, unitOffset, &unit) != nil, let size = programSize(of: &unit), size <= mainBytesLeft {
            mainBytesLeft -= size
            return copy(&unit)
        }
        if handle == nil {
            handle = dwarf_begin_elf(elf, DWARF_C_READ, nil)
            if let handle, let alternate { dwarf_setalt(handle, alternate) }
        }
        guard let handle, dwarf_offdie(handle, unitOffset, &unit) != nil else { return nil }
        let table = copy(&unit)
        rowsHeld += table?.addresses.count ?? 0
        if rowsHeld > rowBudget {
            dwarf_end(handle)
            self.handle = nil
            rowsHeld = 0
        }
        return table
    }

    /// The bytes of `unit`'s line program (its header included), from its length field.
    private func programSize(of unit: UnsafeMutablePointer<Dwarf_Die>) -> Int? {
        var attribute = Dwarf_Attribute()
        var offset: Dwarf_Word = 0
        guard dwarf_attr(unit, UInt32(DW_AT_stmt_list), &attribute) != nil, dwarf_formudata(&attribute, &offset) == 0,
              let section = lineSection, offset < UInt64(section.count), section.count - Int(offset) >= 4 else { return nil }
        let length = UInt32(littleEndian: section.loadUnaligned(fromByteOffset: Int(offset), as: UInt32.self))
        guard length < 0xFFFF_FFF0 else { return nil } // 64-bit DWARF: through the reader's handle
        return Int(length) + 4
    }

    /// `unit`'s line table, copied out of libdw.
    private func copy(_ unit: UnsafeMutablePointer<Dwarf_Die>) -> LineTable? {
        var lines: OpaquePointer?
        var lineCount = 0
        var files: OpaquePointer?
        var fileCount = 0
        guard dwarf_getsrclines(unit, &lines, &lineCount) == 0, dwarf_getsrcfiles(unit, &files, &fileCount) == 0
        else { return nil }

        var fileNames: [String] = []
        var fileIndex = NameIndex(expected: fileCount)
        fileNames.reserveCapacity(fileCount)
        for index in 0 ..< fileCount {
            guard let name = dwarf_filesrc(files, index, nil, nil) else { fileNames.append(""); continue }
            fileNames.append(String(cString: name))
            if fileIndex[name] == nil { fileIndex.insert(name, Int32(index)) }
        }
        var addresses: [UInt64] = []
        var rows: [LineTable.Row] = []
        addresses.reserveCapacity(lineCount)
        rows.reserveCapacity(lineCount)
        // Consecutive rows nearly always name one file.
        var lastName: UnsafePointer<CChar>?
        var lastFile = LineTable.noFile
        for index in 0 ..< lineCount {
            guard let line = dwarf_onesrcline(lines, index) else { return nil }
            var address: Dwarf_Addr = 0
            var endsSequence = false
            var number: Int32 = 0
            var column: Int32 = 0
            if dwarf_lineaddr(line, &address) != 0 { return nil }
            if dwarf_lineendsequence(line, &endsSequence) != 0 { endsSequence = false }
            if dwarf_lineno(line, &number) != 0 { number = 0 }
            if dwarf_linecol(line, &column) != 0 { column = 0 }
            var file = LineTable.endOfSequence
            if !endsSequence {
                let name = dwarf_linesrc(line, nil, nil)
                if name == lastName {
                    file = lastFile
                } else if let name {
                    if let known = fileIndex[name] {
                        file = known
                    } else {
                        file = Int32(fileNames.count)
                        fileIndex.insert(name, file)
                        fileNames.append(String(cString: name))
                    }
                } else {
                    file = LineTable.noFile
                }
                lastName = name
                lastFile = file
            }
            addresses.append(address)
            rows.append(LineTable.Row(line: number, column: column, file: file))
        }
        return LineTable(addresses: addresses, rows: rows, fileNames: fileNames, fileCount: fileCount)
    }
}

/// File indexes by the address of libdw's name string. Open addressing with a multiplicative
/// hash: rows change file every few rows where headers were inlined (CPython's ceval.c), and a
/// Dictionary's SipHash of the pointer was most of copying a table.
private struct NameIndex {
    private var keys: [UInt]
    private var values: [Int32]
    private var count = 0

    init(expected: Int) {
        var capacity = 16
        while capacity < 2 * expected { capacity *= 2 }
        keys = Array(repeating: 0, count: capacity)
        values = Array(repeating: 0, count: capacity)
    }

    private func slot(of key: UInt) -> Int {
        let mask = keys.count - 1
        var slot = Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
        while keys[slot] != 0 && keys[slot] != key { slot = (slot + 1) & mask }
        return slot
    }

    subscript(name: UnsafePointer<CChar>) -> Int32? {
        let key = UInt(bitPattern: name)
        let found = slot(of: key)
        return keys[found] == key ? values[found] : nil
    }

    /// Adds a name the index does not hold.
    mutating func insert(_ name: UnsafePointer<CChar>, _ value: Int32) {
        if (count + 1) * 2 > keys.count {
            let old = (keys, values)
            keys = Array(repeating: 0, count: keys.count * 2)
            values = Array(repeating: 0, count: keys.count)
            for (key, value) in zip(old.0, old.1) where key != 0 {
                let free = slot(of: key)
                keys[free] = key
                values[free] = value
            }
        }
        let free = slot(of: UInt(bitPattern: name))
        keys[free] = UInt(bitPattern: name)
        values[free] = value
        count += 1
    }
}
