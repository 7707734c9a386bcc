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
        var units: [Dwarf_Die] = []
        var splitUnits: [Int: Dwarf_Die] = [:]
        var ranges: [IntervalIndex<Int>.Entry] = []
        let listed = Self.arangesByUnit(dwarf)
        var unit: OpaquePointer? = nil
        while true {
            var next: OpaquePointer?
            var version: Dwarf_Half = 0
            var unitType: UInt8 = 0
            var unitDie = Dwarf_Die()
            var splitDie = Dwarf_Die()
            guard dwarf_get_units(dwarf, unit, &next, &version, &unitType, &unitDie, &splitDie) == 0 else { break }
            unit = next
            // Type units describe no code and partial (dwz) units have no ranges of their own.
            // Skeleton units (split DWARF) do: their line table lives in this file.
            guard unitType == UInt8(DW_UT_compile) || unitType == UInt8(DW_UT_skeleton) else { continue }
            let unitRanges = listed[dwarf_dieoffset(&unitDie)] ?? addressRanges(of: &unitDie)
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

    /// The ranges .debug_aranges gives each unit, by the offset of the unit's DIE; empty
    /// without the section. Ranges at address 0 are code the linker discarded, as in
    /// `addressRanges(of:)`.
    private static func arangesByUnit(_ dwarf: OpaquePointer) -> [Dwarf_Off: [(UInt64, UInt64)]] {
        var aranges: OpaquePointer?
        var count = 0
        guard dwarf_getaranges(dwarf, &aranges, &count) == 0, let aranges else { return [:] }
        var byUnit: [Dwarf_Off: [(UInt64, UInt64)]] = [:]
        for index in 0..<count {
            var start: Dwarf_Addr = 0
            var length: Dwarf_Word = 0
            var unit: Dwarf_Off = 0
            guard let arange = dwarf_onearange(aranges, index),
                  dwarf_getarangeinfo(arange, &start, &length, &unit) == 0 else { continue }
            // A unit listed with discarded code only is listed all the same: it has no code.
            var listed = byUnit[unit] ?? []
            if start > 0, length > 0, start &+ length > start { listed.append((start, start + length)) }
            byUnit[unit] = listed
        }
        return byUnit
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
