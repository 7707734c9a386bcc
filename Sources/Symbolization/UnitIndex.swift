// Which DWARF compile unit covers an address.
//
// libdwfl finds units through .debug_aranges and, in elfutils 0.188, gives up when that section
// is missing: clang, swiftc and rustc do not emit it by default, so their binaries would get no
// lines at all. This index reads every unit's own address ranges (DW_AT_low_pc/high_pc or
// DW_AT_ranges) once, which works for every producer.

import CLibDW

struct UnitIndex {
    /// Unit DIEs; libdw keeps the memory they point into alive as long as the Dwarf handle.
    private let units: [Dwarf_Die]
    /// For a split-DWARF skeleton unit, the split unit (from its .dwo) that holds its functions.
    private let splitUnits: [Int: Dwarf_Die]
    /// Code ranges of the units, with the unit's number.
    private let ranges: IntervalIndex<Int>

    init(dwarf: OpaquePointer) {
        // Every unit of .debug_info first (what .debug_aranges may name), then the code units.
        var all: [(start: Dwarf_Off, die: Dwarf_Die, type: UInt8, split: Dwarf_Die)] = []
        var unit: OpaquePointer? = nil
        while true {
            var next: OpaquePointer?
            var version: Dwarf_Half = 0
            var unitType: UInt8 = 0
            var unitDie = Dwarf_Die()
            var splitDie = Dwarf_Die()
            guard dwarf_get_units(dwarf, unit, &next, &version, &unitType, &unitDie, &splitDie) == 0 else { break }
            unit = next
            // DWARF 4 type units live in .debug_types, whose offsets .debug_aranges never names.
            guard !(version < 5 && unitType == UInt8(DW_UT_type)) else { continue }
            all.append((dwarf_dieoffset(&unitDie) - dwarf_cuoffset(&unitDie), unitDie, unitType, splitDie))
        }
        let listed = Self.arangesByUnit(dwarf, unitStarts: all.map(\.start))
        var units: [Dwarf_Die] = []
        var splitUnits: [Int: Dwarf_Die] = [:]
        var ranges: [IntervalIndex<Int>.Entry] = []
        for (position, (_, die, unitType, splitDie)) in all.enumerated() {
            var unitDie = die
            // Type units describe no code and partial (dwz) units have no ranges of their own.
            // Skeleton units (split DWARF) do: their line table lives in this file.
            guard unitType == UInt8(DW_UT_compile) || unitType == UInt8(DW_UT_skeleton) else { continue }
            let unitRanges = listed?.ranges(ofUnit: position) ?? addressRanges(of: &unitDie)
            guard !unitRanges.isEmpty else { continue }
            units.append(unitDie)
            // libdw looks for the .dwo itself (next to the compilation directory); without it
            // the skeleton still has the line table.
            if unitType == UInt8(DW_UT_skeleton), splitDie.addr != nil { splitUnits[units.count - 1] = splitDie }
            for (start, end) in unitRanges {
                ranges.append(.init(start: start, end: end, payload: units.count - 1))
            }
        }
        self.units = units
        self.splitUnits = splitUnits
        self.ranges = IntervalIndex(ranges)
    }

    /// The ranges .debug_aranges gives units: each a unit's position in `unitStarts` (the
    /// ascending header offsets of the .debug_info units) and a range.
    private struct ListedRanges {
        var unitCount: Int
        var units: [Int32] = []
        var ranges: [(UInt64, UInt64)] = []
        /// Per unit: listed at all, and where its ranges start in `grouped` (built by `group()`).
        var isListed: [Bool]
        var groupStart: [Int32] = []
        var grouped: [(UInt64, UInt64)] = []

        init(unitCount: Int) {
            self.unitCount = unitCount
            isListed = Array(repeating: false, count: unitCount)
        }

        /// Groups the ranges by unit, each unit's in the order listed.
        mutating func group() {
            groupStart = Array(repeating: 0, count: unitCount + 1)
            for unit in units { groupStart[Int(unit) + 1] += 1 }
            for index in 0 ..< unitCount { groupStart[index + 1] += groupStart[index] }
            var next = groupStart
            grouped = Array(repeating: (0, 0), count: ranges.count)
            for (unit, range) in zip(units, ranges) {
                grouped[Int(next[Int(unit)])] = range
                next[Int(unit)] += 1
            }
        }

        /// The unit's ranges, or nil when .debug_aranges does not list it.
        func ranges(ofUnit unit: Int) -> [(UInt64, UInt64)]? {
            guard isListed[unit] else { return nil }
            return Array(grouped[Int(groupStart[unit]) ..< Int(groupStart[unit + 1])])
        }
    }

    /// The ranges .debug_aranges gives each unit; nil without the section or when any of it
    /// does not read as libdw 0.188's dwarf_getaranges reads it (which then fails as a whole).
    /// Ranges at address 0 are code the linker discarded, as in `addressRanges(of:)`. Read here
    /// rather than through dwarf_getaranges, which allocates and sorts every range (7.5 M
    /// instructions for libc's). A set names the unit whose bytes hold its offset.
    private static func arangesByUnit(_ dwarf: OpaquePointer, unitStarts: [Dwarf_Off]) -> ListedRanges? {
        guard let elf = dwarf_getelf(dwarf), let bytes = sectionData(named: ".debug_aranges", in: elf) else { return nil }
        var listed = ListedRanges(unitCount: unitStarts.count)
        var position = 0
        /// The little-endian integer of `size` bytes at `position`, which moves past it.
        func read(_ size: Int) -> UInt64? {
            guard size <= bytes.count - position else { return nil }
            let value: UInt64
            switch size {
            case 1: value = UInt64(bytes[position])
            case 2: value = UInt64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt16.self)))
            case 4: value = UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
            default: value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            }
            position += size
            return value
        }
        while position < bytes.count {
            let setStart = position
            guard var length = read(4) else { return nil }
            var offsetSize = 4
            if length == 0xFFFF_FFFF {
                guard let long = read(8) else { return nil }
                length = long
                offsetSize = 8
            } else if length >= 0xFFFF_FFF0 {
                return nil
            }
            guard length <= UInt64(bytes.count - position) else { return nil }
            let setEnd = position + Int(length)
            guard let version = read(2), version == 2, let unitOffset = read(offsetSize),
                  let addressSize = read(1), addressSize == 4 || addressSize == 8, let segmentSize = read(1),
                  segmentSize == 0 else { return nil }
            // The unit holding the offset, as libdw's __libdw_findcu finds it.
            var low = 0
            var high = unitStarts.count
            while low < high {
                let middle = (low + high) / 2
                if unitStarts[middle] <= unitOffset { low = middle + 1 } else { high = middle }
            }
            guard low > 0, low == unitStarts.count || unitOffset < unitStarts[low] else { return nil }
            let unit = low - 1
            listed.isListed[unit] = true
            // Tuples start at a multiple of twice the address size from the set's start.
            let tupleSize = 2 * Int(addressSize)
            position += (tupleSize - (position - setStart) % tupleSize) % tupleSize
            while true {
                guard let start = read(Int(addressSize)), let length = read(Int(addressSize)) else { return nil }
                if start == 0 && length == 0 { break }
                // A unit listed with discarded code only is listed all the same: it has no code.
                if start > 0, length > 0, start &+ length > start {
                    listed.units.append(Int32(unit))
                    listed.ranges.append((start, start + length))
                }
            }
            position = max(position, setEnd)
        }
        listed.group()
        return listed
    }

    var isEmpty: Bool { ranges.isEmpty }

    /// The DIE of unit number `unit` (as returned by `unit(containing:)`).
    func die(_ unit: Int) -> Dwarf_Die { units[unit] }

    /// The DIE whose children are unit `unit`'s functions: the split unit for a skeleton.
    func functionsDie(_ unit: Int) -> Dwarf_Die { splitUnits[unit] ?? units[unit] }

    /// The number of the unit whose ranges contain the DWARF address `address` (the
    /// latest-starting one if several claim it).
    func unit(containing address: UInt64) -> Int? {
        ranges.payload(containing: address)
    }
}
