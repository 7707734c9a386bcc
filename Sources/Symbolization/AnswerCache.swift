// Answers of earlier runs, kept on disk per module file and looked up before its debug info.
//
// Opening a module's DWARF is the fixed cost of a report: libdw decompresses whole debug
// sections (libc's from libc6-dbg: about 200 million instructions of zlib) and indexes units,
// whatever few addresses are then looked up. A program is reported on again and again while
// its developer works, and most of its modules (libc, libstdc++, an interpreter) have not
// changed in between: their answers are stored here, one file per build-id, and a later run
// that only needs addresses already answered never opens their DWARF.
//
// An answer depends on the file (its build-id names its contents) and on the debug files that
// libdwfl found for it: each stored file records those files' paths, sizes and modification
// times, and is used only while they are unchanged. Only modules with DWARF are stored (a
// module read from its symbol table alone costs little), and only when the DWARF is in the file
// itself or in a debug file found by the build-id, which the search tries first (a debug file
// found by its debug link could later be shadowed by a build-id file, which a stored list
// would not notice).
//
// A module without DWARF is answered from its symbol table (.symtab, the .gnu_debugdata mini
// table, else .dynsym), which the file itself holds, unless a separate debug file is found for
// it: such answers (a compiler without debug info: cc1 re-read its symbol table and resolved
// every frame again in every report) are kept in a file of their own, `<build-id>.symtab-answers`,
// and used only while no file exists at any place the debug file search would look (the
// build-id path under each debug directory, and the module's .gnu_debuglink name next to it and
// under the debug directories: the list of DebugFileLocator.findDebugFile, taken again for the
// module's path and debug directories of the run that reads them). A debug file installed since
// is then found, and the answers are not used. Answers are not kept when a debug file without
// DWARF was found (its symbol table answered), nor when anything already exists at those places.
//
// The directory is written by concurrent runs: a file is written whole under a temporary name
// and renamed into place, so a reader sees an old file or a new one, never a mix. A file that
// does not read back exactly (its checksum, its structure) is ignored and rewritten.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLibDW
import TraceFormat

/// Where a debug file stood when answers were taken from it.
struct DebugFileStamp: Equatable {
    var path: String
    var size: UInt64
    var modifiedNanoseconds: UInt64

    /// The file at `path` as it is now, or nil when it cannot be examined.
    init?(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        self.path = path
        size = UInt64(status.st_size)
        modifiedNanoseconds = nanoseconds(status.st_mtim)
    }

    init(path: String, size: UInt64, modifiedNanoseconds: UInt64) {
        self.path = path; self.size = size; self.modifiedNanoseconds = modifiedNanoseconds
    }
}

/// A file time as nanoseconds since the epoch.
func nanoseconds(_ time: timespec) -> UInt64 {
    UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

/// The stored answers of one module file: source frames by module offset looked up.
final class ModuleAnswers {
    let file: String
    let debugFiles: [DebugFileStamp]
    private(set) var frames: [UInt64: [SourceFrame]]
    /// Answers added since the file was read.
    private(set) var added = 0

    private init(file: String, debugFiles: [DebugFileStamp], frames: [UInt64: [SourceFrame]]) {
        self.file = file; self.debugFiles = debugFiles; self.frames = frames
    }

    /// The stored symbol-table answers for `buildID` in `directory`, if the file reads back whole
    /// and no debug file could be found now for the module at `modulePath` (see the top of this
    /// file).
    static func loadSymbolTableAnswers(directory: String, buildID: [UInt8], modulePath: String,
                                       debugDirectories: [String]) -> ModuleAnswers? {
        guard !buildID.isEmpty else { return nil }
        let file = symbolTablePath(directory: directory, buildID: buildID)
        guard let bytes = readWholeFile(file), let decoded = AnswerFileFormat.decode(bytes), decoded.debugFiles.isEmpty,
              noDebugFileCouldBeFound(modulePath: modulePath, buildID: buildID, debugDirectories: debugDirectories)
        else { return nil }
        return ModuleAnswers(file: file, debugFiles: [], frames: decoded.frames)
    }

    /// Empty symbol-table answers for a module without DWARF, for which the debug file search
    /// found `debugFiles`; nil when they cannot be kept safely (see the top of this file).
    static func startSymbolTableAnswers(directory: String, buildID: [UInt8], modulePath: String,
                                        debugDirectories: [String], debugFiles: [String]) -> ModuleAnswers? {
        guard !buildID.isEmpty, debugFiles.isEmpty,
              noDebugFileCouldBeFound(modulePath: modulePath, buildID: buildID, debugDirectories: debugDirectories)
        else { return nil }
        return ModuleAnswers(file: symbolTablePath(directory: directory, buildID: buildID), debugFiles: [], frames: [:])
    }

    /// True when nothing exists at any place the debug file search looks for the module at
    /// `modulePath` (anything there, even a file the search would turn down, counts).
    private static func noDebugFileCouldBeFound(modulePath: String, buildID: [UInt8],
                                                debugDirectories: [String]) -> Bool {
        guard let places = debugFilePlaces(modulePath: modulePath, buildID: buildID,
                                           debugDirectories: debugDirectories) else { return false }
        var status = stat()
        return places.allSatisfy { lstat($0, &status) != 0 && errno == ENOENT }
    }

    /// Where DebugFileLocator looks for the module's debug file, in its order; nil when the
    /// module's file cannot be read for its debug link.
    static func debugFilePlaces(modulePath: String, buildID: [UInt8], debugDirectories: [String]) -> [String]? {
        guard buildID.count >= 2 else { return nil }
        guard case .success(let fd) = openRegularFile(modulePath) else { return nil }
        defer { close(fd) }
        guard let link = withELF(fd: fd, { elf -> String? in
            var crc: GElf_Word = 0
            return .some(dwelf_elf_gnu_debuglink(elf, &crc).map { String(cString: $0) } ?? "")
        }) else { return nil }
        return DebugFileLocator.debugFileCandidates(mainPath: modulePath, buildID: buildID, debugLink: link,
                                                    debugDirectories: debugDirectories)
    }

    /// The stored answers for `buildID` in `directory`, if the file reads back whole and the
    /// debug files it names are unchanged.
    static func load(directory: String, buildID: [UInt8]) -> ModuleAnswers? {
        guard !buildID.isEmpty else { return nil }
        let file = path(directory: directory, buildID: buildID)
        guard let bytes = readWholeFile(file), let decoded = AnswerFileFormat.decode(bytes),
              decoded.debugFiles.allSatisfy({ DebugFileStamp(path: $0.path) == $0 }) else { return nil }
        return ModuleAnswers(file: file, debugFiles: decoded.debugFiles, frames: decoded.frames)
    }

    /// Empty answers for a module whose DWARF came from the file itself or from `debugFiles`;
    /// nil when they cannot be stored safely (see the top of this file).
    static func start(directory: String, buildID: [UInt8], debugFiles: [String]) -> ModuleAnswers? {
        guard !buildID.isEmpty else { return nil }
        // The first debug file is the module's own; a second one is the dwz file it refers to.
        if let own = debugFiles.first, !own.contains("/.build-id/") { return nil }
        var stamps: [DebugFileStamp] = []
        for debugFile in debugFiles {
            guard let stamp = DebugFileStamp(path: debugFile) else { return nil }
            stamps.append(stamp)
        }
        return ModuleAnswers(file: path(directory: directory, buildID: buildID), debugFiles: stamps, frames: [:])
    }

    func record(_ source: [SourceFrame], at offset: UInt64) {
        frames[offset] = source
        added += 1
    }

    /// Writes the answers under a temporary name, then renames it into place. Failures are
    /// silent: the answers are only a cache.
    func store() {
        guard added > 0, let directory = directoryName(file), makeDirectories(directory) else { return }
        let bytes = AnswerFileFormat.encode(debugFiles: debugFiles, frames: frames)
        let temporary = "\(file).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written == bytes.count && rename(temporary, file) == 0 { return }
        unlink(temporary)
    }

    private static func path(directory: String, buildID: [UInt8]) -> String {
        joinPath(directory, "symbols", hexString(buildID) + ".answers")
    }

    private static func symbolTablePath(directory: String, buildID: [UInt8]) -> String {
        joinPath(directory, "symbols", hexString(buildID) + ".symtab-answers")
    }
}

/// Makes `path` and its parents as directories (mode 0700: the answers name the user's files).
func makeDirectories(_ path: String) -> Bool {
    var status = stat()
    if stat(path, &status) == 0 { return status.st_mode & S_IFMT == S_IFDIR }
    if let parent = directoryName(path), parent != path, !makeDirectories(parent) { return false }
    return mkdir(path, 0o700) == 0 || errno == EEXIST
}

private func readWholeFile(_ path: String) -> [UInt8]? {
    guard case .success(let fd) = openRegularFile(path) else { return nil }
    defer { close(fd) }
    var status = stat()
    guard fstat(fd, &status) == 0, status.st_size > 0, status.st_size < 256 << 20 else { return nil }
    var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
    var filled = 0
    while filled < bytes.count {
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
        guard count > 0 else { return nil }
        filled += count
    }
    return bytes
}

/// The file: "LTANSWR1", the debug files (count, then path, size, mtime each), the strings
/// (count, then each), the answers (count, then offset and frames each), and an FNV-1a
/// checksum of everything before it. Integers are little-endian varints; a missing string is 0,
/// string n is n + 1.
enum AnswerFileFormat {
    static let magic = Array("LTANSWR1".utf8)

    static func encode(debugFiles: [DebugFileStamp], frames: [UInt64: [SourceFrame]]) -> [UInt8] {
        var strings: [String: Int] = [:]
        strings.reserveCapacity(frames.count)
        var table: [String] = []
        func reference(_ text: String?) -> UInt64 {
            guard let text else { return 0 }
            if let known = strings[text] { return UInt64(known + 1) }
            strings[text] = table.count
            table.append(text)
            return UInt64(table.count)
        }
        var body: [UInt8] = []
        body.appendVarint(UInt64(frames.count))
        for (offset, source) in frames.sorted(by: { $0.key < $1.key }) {
            body.appendVarint(offset)
            body.appendVarint(UInt64(source.count))
            for frame in source {
                body.appendVarint(reference(frame.function))
                body.appendVarint(reference(frame.file))
                body.appendVarint(UInt64(frame.line ?? 0))
                body.appendVarint(UInt64(frame.column ?? 0))
                body.append(frame.isInlined ? 1 : 0)
            }
        }
        var bytes = magic
        bytes.appendVarint(UInt64(debugFiles.count))
        for stamp in debugFiles {
            bytes.appendString(stamp.path)
            bytes.appendVarint(stamp.size)
            bytes.appendVarint(stamp.modifiedNanoseconds)
        }
        bytes.appendVarint(UInt64(table.count))
        for text in table { bytes.appendString(text) }
        bytes += body
        bytes.appendChecksum()
        return bytes
    }

    static func decode(_ bytes: [UInt8]) -> (debugFiles: [DebugFileStamp], frames: [UInt64: [SourceFrame]])? {
        guard bytes.count >= magic.count + 8, bytes.starts(with: magic),
              fnv1a(bytes[..<(bytes.count - 8)]) == bytes.suffix(8).littleEndianInteger else { return nil }
        return bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return nil }
            var cursor = ByteCursor(base, count: buffer.count - 8, offset: magic.count)
            return decode(&cursor)
        }
    }

    private static func decode(_ cursor: inout ByteCursor) -> (debugFiles: [DebugFileStamp], frames: [UInt64: [SourceFrame]])? {
        /// A count of items of at least one byte each: never more than the bytes left.
        func count() -> Int? {
            guard let value = cursor.readVarint(), value <= UInt64(cursor.remaining) else { return nil }
            return Int(value)
        }
        guard let fileCount = count() else { return nil }
        var debugFiles: [DebugFileStamp] = []
        for _ in 0 ..< fileCount {
            guard let path = cursor.readString(), let size = cursor.readVarint(),
                  let modified = cursor.readVarint() else { return nil }
            debugFiles.append(DebugFileStamp(path: path, size: size, modifiedNanoseconds: modified))
        }
        guard let stringCount = count() else { return nil }
        var table: [String] = []
        for _ in 0 ..< stringCount {
            guard let text = cursor.readString() else { return nil }
            table.append(text)
        }
        /// A string reference: 0 for none, n + 1 for string n; nil when it names no string.
        func text(_ reference: UInt64) -> String?? {
            guard reference > 0 else { return .some(nil) }
            guard reference <= UInt64(table.count) else { return nil }
            return table[Int(reference - 1)]
        }
        guard let answerCount = count() else { return nil }
        var frames: [UInt64: [SourceFrame]] = [:]
        for _ in 0 ..< answerCount {
            guard let offset = cursor.readVarint(), let frameCount = count() else { return nil }
            var source: [SourceFrame] = []
            for _ in 0 ..< frameCount {
                guard let functionReference = cursor.readVarint(), let function = text(functionReference),
                      let fileReference = cursor.readVarint(), let file = text(fileReference),
                      let line = cursor.readVarint(), let column = cursor.readVarint(), let inlined = cursor.readByte(),
                      inlined <= 1, line <= UInt64(Int32.max), column <= UInt64(Int32.max) else { return nil }
                source.append(SourceFrame(function: function, file: file, line: line > 0 ? Int(line) : nil,
                                          column: column > 0 ? Int(column) : nil, isInlined: inlined == 1))
            }
            frames[offset] = source
        }
        return cursor.isAtEnd ? (debugFiles, frames) : nil
    }

    static func fnv1a<Bytes: Collection>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}

private extension Array where Element == UInt8 {
    mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        append(UInt8(value))
    }

    mutating func appendString(_ text: String) {
        let utf8 = Array(text.utf8)
        appendVarint(UInt64(utf8.count))
        self += utf8
    }

    mutating func appendChecksum() {
        var checksum = AnswerFileFormat.fnv1a(self)
        for _ in 0 ..< 8 {
            append(UInt8(truncatingIfNeeded: checksum))
            checksum >>= 8
        }
    }
}

private extension ArraySlice where Element == UInt8 {
    var littleEndianInteger: UInt64 {
        reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}
