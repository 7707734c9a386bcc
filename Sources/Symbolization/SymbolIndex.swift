// An address-sorted index of a module's ELF function symbols.
//
// libdwfl's own dwfl_module_addrinfo scans the whole symbol table on every call (about 130 µs
// per lookup in libc's .dynsym here); this index is built once per module in one pass and
// answers in O(log n). The choice of symbol follows libdwfl's rules: the sized symbol that
// contains the address and starts closest to it, a global one over a local one at the same
// start; failing that, an unsized label (hand-written assembly) earlier in the same section
// with no sized symbol in between.

import CLibDW

struct SymbolIndex {
    private struct Sized {
        let binding: UInt8
        let name: UnsafePointer<CChar>
    }

    private struct Label {
        let name: UnsafePointer<CChar>
    }

    /// Sized symbols over their code.
    private let sized: IntervalIndex<Sized>
    /// Labels from their address to the end of their section: an address outside the section
    /// is not their code.
    private let labels: IntervalIndex<Label>

    /// Reads the symbol table libdwfl chose for `module` (.symtab of the file or its debug file,
    /// the .gnu_debugdata mini table, else .dynsym). Addresses are module addresses.
    init(module: OpaquePointer) {
        var sized: [IntervalIndex<Sized>.Entry] = []
        var labels: [IntervalIndex<Label>.Entry] = []
        var sectionEnds: [SectionKey: UInt64?] = [:]
        let count = dwfl_module_getsymtab(module)
        if count > 1 {
            for index in 1 ..< count {
                var symbol = GElf_Sym()
                var address: GElf_Addr = 0
                var sectionIndex: GElf_Word = 0
                var elf: OpaquePointer?
                var bias: Dwarf_Addr = 0
                guard let name = dwfl_module_getsym_info(module, index, &symbol, &address, &sectionIndex, &elf, &bias),
                      name.pointee != 0, Self.isCode(symbol),
                      sectionIndex != GElf_Word(SHN_UNDEF), sectionIndex != GElf_Word.max
                else { continue }
                let binding = symbol.st_info >> 4
                if symbol.st_size > 0 {
                    let (end, overflow) = address.addingReportingOverflow(symbol.st_size)
                    sized.append(.init(start: address, end: overflow ? .max : end,
                                       payload: Sized(binding: binding, name: name)))
                } else if let elf, sectionIndex < GElf_Word(SHN_LORESERVE) {
                    let key = SectionKey(elf: elf, index: sectionIndex)
                    let sectionEnd = sectionEnds[key] ?? Self.executableSectionEnd(elf: elf, index: sectionIndex, bias: bias)
                    sectionEnds[key] = sectionEnd
                    if let sectionEnd, address < sectionEnd {
                        labels.append(.init(start: address, end: sectionEnd, payload: Label(name: name)))
                    }
                }
            }
        }
        // Among aliases at one start, table order decides between equal bindings.
        self.sized = IntervalIndex(sized)
        self.labels = IntervalIndex(labels)
    }

    var isEmpty: Bool { sized.isEmpty && labels.isEmpty }

    /// The name of the function symbol at `address`, as libdw's own string.
    func name(at address: UInt64) -> UnsafePointer<CChar>? {
        if let symbol = containingSymbol(address) { return symbol.payload.name }
        return label(before: address)?.payload.name
    }

    /// The sized symbol containing `address` that starts closest to it; among those starting
    /// there, the strongest binding (global over local), the first in the table.
    private func containingSymbol(_ address: UInt64) -> IntervalIndex<Sized>.Entry? {
        var best: IntervalIndex<Sized>.Entry?
        sized.forEach(containing: address) { candidate in
            if let chosen = best, candidate.start < chosen.start { return false }
            if best.map({ candidate.payload.binding > $0.payload.binding }) ?? true { best = candidate }
            return true
        }
        return best
    }

    /// The last label at or before `address`, if `address` is still in its section and no
    /// sized function starts between the two (that function owns the code after the label).
    private func label(before address: UInt64) -> IntervalIndex<Label>.Entry? {
        let index = labels.lastIndex(startingAtOrBefore: address)
        guard index >= 0 else { return nil }
        let label = labels[index]
        guard address < label.end else { return nil }
        let sizedAfterLabel = sized.lastIndex(startingAtOrBefore: address)
        if sizedAfterLabel >= 0, sized[sizedAfterLabel].start > label.start { return nil }
        return label
    }

    // MARK: Symbol classification

    /// Functions, indirect functions and untyped labels; not data, sections, files or TLS.
    private static func isCode(_ symbol: GElf_Sym) -> Bool {
        switch Int32(symbol.st_info & 0xF) {
        case STT_FUNC, STT_GNU_IFUNC, STT_NOTYPE: return true
        default: return false
        }
    }

    private struct SectionKey: Hashable {
        let elf: OpaquePointer
        let index: GElf_Word
    }

    /// The module address where an executable section ends, or nil for other sections.
    private static func executableSectionEnd(elf: OpaquePointer, index: GElf_Word, bias: Dwarf_Addr) -> UInt64? {
        var header = GElf_Shdr()
        guard let section = elf_getscn(elf, Int(index)), gelf_getshdr(section, &header) != nil,
              header.sh_flags & UInt64(SHF_EXECINSTR) != 0 else { return nil }
        let (end, overflow) = (header.sh_addr &+ bias).addingReportingOverflow(header.sh_size)
        return overflow ? .max : end
    }
}
