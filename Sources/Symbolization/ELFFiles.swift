// Small, careful file and ELF helpers shared by the module sessions and the debug-file search.
// Paths come from trace files, so anything may sit there: a FIFO that would block open(2),
// a directory, a truncated ELF. Every helper fails softly with a reason instead.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLibDW

// MARK: - Opening files

/// Why a file could not be used.
struct FileProblem: Error, Equatable {
    let reason: String
}

/// Opens `path` read-only if it is a regular file. O_NONBLOCK keeps a FIFO from blocking the
/// open; the regular-file check then rejects it (and devices, directories, sockets).
func openRegularFile(_ path: String) -> Result<Int32, FileProblem> {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return .failure(FileProblem(reason: errnoDescription(errno))) }
    var status = stat()
    guard fstat(fd, &status) == 0 else {
        let reason = errnoDescription(errno)
        close(fd)
        return .failure(FileProblem(reason: reason))
    }
    guard status.st_mode & S_IFMT == S_IFREG else {
        close(fd)
        return .failure(FileProblem(reason: "not a regular file"))
    }
    return .success(fd)
}

func errnoDescription(_ code: Int32) -> String {
    guard let message = strerror(code) else { return "error \(code)" }
    return String(cString: message)
}

/// Device and inode of an open file, to recognise one file reached by two names.
struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    init?(fd: Int32) {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return nil }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}

// MARK: - Reading ELF notes and sections

/// libelf refuses to work until a version is negotiated; do it once per process.
let libelfReady: Bool = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)

/// Runs `body` on a libelf handle for the open file `fd`, or returns nil if it is not ELF.
/// The handle is only valid inside `body`; `fd` stays open.
func withELF<T>(fd: Int32, _ body: (OpaquePointer) -> T?) -> T? {
    guard libelfReady, let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else { return nil }
    defer { elf_end(elf) }
    guard elf_kind(elf) == ELF_K_ELF else { return nil }
    return body(elf)
}

/// The GNU build-id note of an ELF file; empty if it has none.
func gnuBuildID(of elf: OpaquePointer) -> [UInt8] {
    var bits: UnsafeRawPointer?
    let length = dwelf_elf_gnu_build_id(elf, &bits)
    guard length > 0, let bits else { return [] }
    return Array(UnsafeRawBufferPointer(start: bits, count: length))
}

/// The build-id of the ELF file at `fd`, or nil if it is not an ELF file. Empty: no note.
func gnuBuildID(fd: Int32) -> [UInt8]? {
    withELF(fd: fd) { gnuBuildID(of: $0) }
}

/// What a `.gnu_debugaltlink` section says: the shared (dwz) debug file's name and build-id.
struct AltDebugLink: Equatable {
    let name: String
    let buildID: [UInt8]
}

/// Reads the `.gnu_debugaltlink` section of the ELF file at `path`, if it has one.
func altDebugLink(ofFileAt path: String) -> AltDebugLink? {
    guard case .success(let fd) = openRegularFile(path) else { return nil }
    defer { close(fd) }
    return withELF(fd: fd) { elf in
        guard let bytes = sectionBytes(named: ".gnu_debugaltlink", in: elf),
              let nul = bytes.firstIndex(of: 0), nul > 0 else { return nil }
        let id = Array(bytes[(nul + 1)...])
        guard !id.isEmpty else { return nil }
        return AltDebugLink(name: String(decoding: bytes[..<nul], as: UTF8.self), buildID: id)
    }
}

/// The raw contents of the first section called `name`.
private func sectionBytes(named name: String, in elf: OpaquePointer) -> [UInt8]? {
    sectionData(named: name, in: elf).map { Array($0) }
}

/// Calls `body` with each section of `elf` that has a name, its header and its name, until
/// `body` returns false.
func forEachSection(in elf: OpaquePointer,
                    _ body: (_ section: OpaquePointer, _ header: GElf_Shdr, _ name: UnsafePointer<CChar>) -> Bool) {
    var namesIndex = 0
    guard elf_getshdrstrndx(elf, &namesIndex) == 0 else { return }
    var section: OpaquePointer? = nil
    while let current = elf_nextscn(elf, section) {
        section = current
        var header = GElf_Shdr()
        guard gelf_getshdr(current, &header) != nil,
              let name = elf_strptr(elf, namesIndex, Int(header.sh_name)) else { continue }
        if !body(current, header, name) { return }
    }
}

/// The contents of the first section called `name`, in libelf's memory (valid while `elf` is).
func sectionData(named name: String, in elf: OpaquePointer) -> UnsafeRawBufferPointer? {
    var found: UnsafeRawBufferPointer?
    forEachSection(in: elf) { section, header, sectionName in
        guard strcmp(sectionName, name) == 0 else { return true }
        // NOBITS sections (as in a debug file's copies of loaded sections) have no bytes.
        if header.sh_type != UInt32(SHT_NOBITS), let data = elf_rawdata(section, nil), let buffer = data.pointee.d_buf {
            found = UnsafeRawBufferPointer(start: buffer, count: data.pointee.d_size)
        }
        return false
    }
    return found
}

// MARK: - CRC-32 for .gnu_debuglink

/// The CRC-32 (IEEE 802.3, as zlib computes it) of everything readable from `fd`, the checksum a
/// `.gnu_debuglink` section records for its debug file. Nil on a read error.
func crc32OfFile(fd: Int32) -> UInt32? {
    var crc: UInt32 = 0xFFFF_FFFF
    let chunkSize = 1 << 16
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
    defer { buffer.deallocate() }
    var offset: off_t = 0
    while true {
        let count = pread(fd, buffer.baseAddress, chunkSize, offset)
        if count < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if count == 0 { break }
        for byte in buffer[..<count] {
            crc = crc32Table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        offset += off_t(count)
    }
    return ~crc
}

private let crc32Table: [UInt32] = (0 ..< 256).map { index in
    var value = UInt32(index)
    for _ in 0 ..< 8 {
        value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1
    }
    return value
}

// MARK: - Paths

func directoryName(_ path: String) -> String? {
    guard let slash = path.lastIndex(of: "/") else { return nil }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

func lastPathComponent(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}

/// Joins path parts with single slashes (`/usr/lib/debug` + `/usr/lib` + `x.debug`).
func joinPath(_ parts: String...) -> String {
    var result = ""
    for part in parts where !part.isEmpty {
        if result.isEmpty {
            result = part
        } else {
            let trimmedEnd = result.hasSuffix("/") ? String(result.dropLast()) : result
            let trimmedStart = part.hasPrefix("/") ? String(part.dropFirst()) : part
            result = trimmedEnd + "/" + trimmedStart
        }
    }
    return result
}

/// Folds `.` components, repeated slashes and `dir/..` pairs without touching the file system
/// (DWARF paths name files on the build machine). Leading `..` of a relative path are kept.
func lexicallyNormalizedPath(_ path: String) -> String {
    let isAbsolute = path.hasPrefix("/")
    var components: [Substring] = []
    for component in path.split(separator: "/", omittingEmptySubsequences: true) {
        if component == "." { continue }
        if component == "..", let last = components.last, last != ".." {
            components.removeLast()
        } else if component == "..", isAbsolute {
            continue // "/.." is "/"
        } else {
            components.append(component)
        }
    }
    let joined = components.joined(separator: "/")
    if isAbsolute { return "/" + joined }
    return joined.isEmpty ? "." : joined
}

func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    var text = ""
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 15)])
    }
    return text
}
