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
        let start: UInt64
        let end: UInt64
        let binding: UInt8
        let name: UnsafePointer<CChar>
    }

    private struct Label {
        let start: UInt64
        /// The bounds of the section holding the label: an address outside them is not its code.
        let sectionEnd: UInt64
        let name: UnsafePointer<CChar>
    }

    /// Sized symbols by start, and for each position the largest end seen up to it, so a
    /// backwards walk for containing symbols can stop as soon as nothing earlier reaches far enough.
    private let sized: [Sized]
    private let furthestEnd: [UInt64]
    private let labels: [Label]

    /// Reads the symbol table libdwfl chose for `module` (.symtab of the file or its debug file,
    /// the .gnu_debugdata mini table, else .dynsym). Addresses are module addresses.
    init(module: OpaquePointer) {
        var sized: [Sized] = []
        var labels: [Label] = []
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
                    sized.append(Sized(start: address, end: overflow ? .max : end, binding: binding, name: name))
                } else if let elf, sectionIndex < GElf_Word(SHN_LORESERVE) {
                    let key = SectionKey(elf: elf, index: sectionIndex)
                    let sectionEnd = sectionEnds[key] ?? Self.executableSectionEnd(elf: elf, index: sectionIndex, bias: bias)
                    sectionEnds[key] = sectionEnd
                    if let sectionEnd, address < sectionEnd {
                        labels.append(Label(start: address, sectionEnd: sectionEnd, name: name))
                    }
                }
            }
        }
        // Stable on start so that, among aliases, table order decides between equal bindings.
        sized = sized.enumerated().sorted { ($0.element.start, $0.offset) < ($1.element.start, $1.offset) }.map(\.element)
        var furthest: [UInt64] = []
        furthest.reserveCapacity(sized.count)
        var maximum: UInt64 = 0
        for symbol in sized {
            maximum = max(maximum, symbol.end)
            furthest.append(maximum)
        }
        self.sized = sized
        self.furthestEnd = furthest
        self.labels = labels.enumerated().sorted { ($0.element.start, $0.offset) < ($1.element.start, $1.offset) }
            .map(\.element)
    }

    var isEmpty: Bool { sized.isEmpty && labels.isEmpty }

    /// The name of the function symbol at `address`, as libdw's own string.
    func name(at address: UInt64) -> UnsafePointer<CChar>? {
        if let symbol = containingSymbol(address) { return symbol.name }
        return label(before: address)?.name
    }

    private func containingSymbol(_ address: UInt64) -> Sized? {
        var index = lastIndex(in: sized.count, startingAtOrBefore: address) { sized[$0].start }
        var best: Sized?
        while index >= 0, furthestEnd[index] > address {
            let candidate = sized[index]
            if let chosen = best, candidate.start < chosen.start { break }
            if candidate.end > address, best.map({ candidate.binding > $0.binding }) ?? true {
                best = candidate
            }
            index -= 1
        }
        return best
    }

    private func label(before address: UInt64) -> Label? {
        let index = lastIndex(in: labels.count, startingAtOrBefore: address) { labels[$0].start }
        guard index >= 0 else { return nil }
        let label = labels[index]
        guard address < label.sectionEnd else { return nil }
        // A sized function between the label and the address owns the code after the label.
        let sizedAfterLabel = lastIndex(in: sized.count, startingAtOrBefore: address) { sized[$0].start }
        if sizedAfterLabel >= 0, sized[sizedAfterLabel].start > label.start { return nil }
        return label
    }

    /// Binary search: the last index whose start is <= address, or -1.
    private func lastIndex(in count: Int, startingAtOrBefore address: UInt64, start: (Int) -> UInt64) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if start(middle) <= address { low = middle + 1 } else { high = middle }
        }
        return low - 1
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
