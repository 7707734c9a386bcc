// Which function DIE of a compile unit holds an address, and the inline chain inside it.
//
// dwarf_getscopes walks a unit's whole DIE tree on every call, which costs hundreds of
// microseconds in a Swift module (one unit per module, thousands of functions); and for inlined
// code it returns the scopes around the inlined function's abstract definition rather than the
// chain of callers it was inlined into. Instead, each unit's functions are indexed once by their
// code ranges, and a lookup walks only the one function's own subtree.

import CLibDW

struct FunctionIndex {
    /// Code ranges of the unit's subprograms.
    private let functions: IntervalIndex<Dwarf_Die>

    /// Indexes every subprogram with code in `unit`, including those nested in namespaces, types
    /// and other functions, and those in partial units the unit imports (dwz output).
    init(unit: Dwarf_Die) {
        var ranges: [IntervalIndex<Dwarf_Die>.Entry] = []
        var importedUnits = Set<UInt64>()
        var pending: [Dwarf_Die] = []
        var root = unit
        var child = Dwarf_Die()
        if dwarf_child(&root, &child) == 0 { pending.append(child) }

        while var die = pending.popLast() {
            var sibling = Dwarf_Die()
            if dwarf_siblingof(&die, &sibling) == 0 { pending.append(sibling) }
            switch Int(dwarf_tag(&die)) {
            case DW_TAG_subprogram:
                for (start, end) in addressRanges(of: &die) {
                    ranges.append(.init(start: start, end: end, payload: die))
                }
                // Swift closures, GCC's C++ lambdas (operator() inside a local structure) and GNU C
                // nested functions are subprograms inside their parent's DIE, with code of their own.
                var first = Dwarf_Die()
                if dwarf_child(&die, &first) == 0 { pending.append(first) }
            case DW_TAG_namespace, DW_TAG_module, DW_TAG_class_type, DW_TAG_structure_type,
                 DW_TAG_union_type, DW_TAG_interface_type, DW_TAG_lexical_block:
                var first = Dwarf_Die()
                if dwarf_child(&die, &first) == 0 { pending.append(first) }
            case DW_TAG_imported_unit:
                var attribute = Dwarf_Attribute()
                var imported = Dwarf_Die()
                guard dwarf_attr(&die, UInt32(DW_AT_import), &attribute) != nil,
                      dwarf_formref_die(&attribute, &imported) != nil,
                      importedUnits.insert(dwarf_dieoffset(&imported)).inserted else { break }
                var first = Dwarf_Die()
                if dwarf_child(&imported, &first) == 0 { pending.append(first) }
            default:
                break
            }
        }
        functions = IntervalIndex(ranges)
    }

    /// The subprogram whose code contains the DWARF address (the latest-starting one if several do).
    func function(containing address: UInt64) -> Dwarf_Die? {
        functions.payload(containing: address)
    }
}

/// The DIEs from `function` down to the innermost inlined subroutine containing `address`,
/// outermost first. Lexical blocks are passed through (and left out of the result): inlined
/// code often sits inside one. A block without any address attributes is searched too, since
/// some producers omit ranges on blocks.
func inlineScopes(in function: Dwarf_Die, containing address: Dwarf_Addr) -> [Dwarf_Die] {
    var chain = [function]
    var current = function
    // Each step goes one level deeper in a finite tree, so this ends; the bound guards against
    // a corrupt file whose sibling links loop.
    var steps = 0
    search: while steps < 100_000 {
        var child = Dwarf_Die()
        guard dwarf_child(&current, &child) == 0 else { break }
        var candidate = child
        while true {
            steps += 1
            let tag = dwarf_tag(&candidate)
            if tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block {
                let contains = dwarf_haspc(&candidate, address) == 1
                    || (tag == DW_TAG_lexical_block && !hasAddressAttributes(&candidate)
                        && blockContains(candidate, address, depth: 0))
                if contains {
                    if tag == DW_TAG_inlined_subroutine { chain.append(candidate) }
                    current = candidate
                    continue search
                }
            }
            var next = Dwarf_Die()
            guard dwarf_siblingof(&candidate, &next) == 0, steps < 100_000 else { break search }
            candidate = next
        }
    }
    return chain
}

/// Whether an address-less lexical block holds a scope (at any depth) that contains `address`.
private func blockContains(_ block: Dwarf_Die, _ address: Dwarf_Addr, depth: Int) -> Bool {
    guard depth < 64 else { return false }
    var parent = block
    var child = Dwarf_Die()
    guard dwarf_child(&parent, &child) == 0 else { return false }
    var candidate = child
    var visited = 0
    while visited < 100_000 {
        visited += 1
        let tag = dwarf_tag(&candidate)
        if tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block {
            if dwarf_haspc(&candidate, address) == 1 { return true }
            if tag == DW_TAG_lexical_block, !hasAddressAttributes(&candidate),
               blockContains(candidate, address, depth: depth + 1) { return true }
        }
        var next = Dwarf_Die()
        guard dwarf_siblingof(&candidate, &next) == 0 else { return false }
        candidate = next
    }
    return false
}

private func hasAddressAttributes(_ die: UnsafeMutablePointer<Dwarf_Die>) -> Bool {
    dwarf_hasattr(die, UInt32(DW_AT_low_pc)) != 0 || dwarf_hasattr(die, UInt32(DW_AT_ranges)) != 0
}

/// A DIE's code ranges. Ranges of code the linker discarded are resolved to 0 (or to lld's
/// tombstone values near 2^64) and would claim addresses that belong to other code.
func addressRanges(of die: UnsafeMutablePointer<Dwarf_Die>) -> [(UInt64, UInt64)] {
    var result: [(UInt64, UInt64)] = []
    var base: Dwarf_Addr = 0
    var start: Dwarf_Addr = 0
    var end: Dwarf_Addr = 0
    var offset = dwarf_ranges(die, 0, &base, &start, &end)
    while offset > 0 {
        if start > 0, start < end, end < UInt64.max - 1 { result.append((start, end)) }
        offset = dwarf_ranges(die, offset, &base, &start, &end)
    }
    return result
}
