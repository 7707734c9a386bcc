// The pages of a module's DWARF sections in the file mapping libelf reads them through.
//
// libelf maps a whole ELF file and libdw reads DWARF in place, so every page it has looked at
// stays resident: indexing units and functions and reading line tables left 20 MB of
// libpython's and libc's debug data in a CPython report's peak, on top of the replay's live
// table. Once such a step is over, the pages of the sections it walked are handed back to the
// page cache (MADV_DONTNEED); a later lookup faults in the few it reads again. Only whole pages
// inside sections of DWARF data are given back: libelf may have written into its private
// mapping of the headers (a decompressed section's flags), and writes would be lost, but neither
// libelf nor libdw writes into the data of sections of a file that needs no relocation.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLibDW

struct MappedDebugSections {
    private var ranges: [(start: UnsafeMutableRawPointer, count: Int)] = []

    init() {}

    /// The DWARF sections of `elf` when libelf reads it through a mapping of its file; none
    /// otherwise (a file read into memory must keep its pages).
    init(elf: OpaquePointer) {
        var size = 0
        guard let raw = elf_rawfile(elf, &size), size > 0, Self.isFileMapping(UnsafeRawPointer(raw)) else { return }
        var header = GElf_Ehdr()
        guard gelf_getehdr(elf, &header) != nil, header.e_type != UInt16(ET_REL) else { return }
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let headersStart = header.e_shoff > 0 ? min(header.e_shoff, UInt64(size)) : UInt64(size)
        var ranges: [(start: UnsafeMutableRawPointer, count: Int)] = []
        forEachSection(in: elf) { _, sectionHeader, name in
            guard sectionHeader.sh_type == UInt32(SHT_PROGBITS), sectionHeader.sh_flags & UInt64(SHF_COMPRESSED) == 0,
                  strncmp(name, ".debug_", 7) == 0 else { return true }
            let (end, overflow) = sectionHeader.sh_offset.addingReportingOverflow(sectionHeader.sh_size)
            guard !overflow, end <= headersStart else { return true }
            let first = (sectionHeader.sh_offset + page - 1) / page * page
            let last = end / page * page
            if last > first { ranges.append((UnsafeMutableRawPointer(raw) + Int(first), Int(last - first))) }
            return true
        }
        self.ranges = ranges
    }

    /// Hands the sections' resident pages back to the page cache.
    func release() {
        for range in ranges { madvise(range.start, range.count, MADV_DONTNEED) }
    }

    /// Whether `address` lies in a mapping of a file (not anonymous memory), from /proc/self/maps:
    /// its line is "start-end perms offset device inode path", and anonymous memory has inode 0.
    private static func isFileMapping(_ address: UnsafeRawPointer) -> Bool {
        let fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            text += chunk[..<count]
        }
        let target = UInt(bitPattern: address)
        return text.withUnsafeBufferPointer { bytes -> Bool in
            var position = 0
            /// The hexadecimal number at `position`, which is left after it.
            func hexadecimal() -> UInt {
                var value: UInt = 0
                while position < bytes.count, let digit = hexDigit(bytes[position]) {
                    value = value << 4 | UInt(digit)
                    position += 1
                }
                return value
            }
            func skipField() {
                while position < bytes.count, bytes[position] != UInt8(ascii: " ") { position += 1 }
                while position < bytes.count, bytes[position] == UInt8(ascii: " ") { position += 1 }
            }
            while position < bytes.count {
                let start = hexadecimal()
                position += 1 // "-"
                let end = hexadecimal()
                if target >= start && target < end {
                    skipField(); skipField(); skipField(); skipField() // the space, perms, offset, device
                    return hexadecimal() != 0 // the inode, in decimal: zero or not is all that counts
                }
                while position < bytes.count, bytes[position] != UInt8(ascii: "\n") { position += 1 }
                position += 1
            }
            return false
        }
    }
}

private func hexDigit(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0") ... UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a") ... UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    default: return nil
    }
}
