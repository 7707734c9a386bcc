// Finds separate debug files for a module, offline only.
//
// libdwfl asks its `find_debuginfo` callback for a module's debug file (and later for the dwz
// "alt" file the debug file points to). The standard callback would fall back to debuginfod,
// i.e. the network, when DEBUGINFOD_URLS is set; this replacement looks only on disk:
//   1. <debug dir>/.build-id/<first byte>/<other bytes>.debug   (the module's build-id)
//   2. the .gnu_debuglink name next to the binary, in its .debug/ subdirectory, and under
//      <debug dir>/<binary's directory>/ (also for the binary's real path when it is a symlink)
// and for the alt file: the build-id directory, the name as written (absolute or relative to
// the debug file), and <debug dir>/.dwz/<name>.
// A candidate is accepted only if its build-id matches (or, with no build-id at all, the
// debuglink CRC does): a stale debug file would give confidently wrong lines.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLibDW

/// A debug file that was found and opened.
struct FoundDebugFile {
    let path: String
    let fd: Int32
}

/// Per-module search state. libdwfl hands it back to the callbacks as the module's userdata.
final class DebugFileLocator {
    let mainPath: String
    let mainIdentity: FileIdentity?
    /// The build-id of the main file on disk; empty if it has none.
    let buildID: [UInt8]
    let debugDirectories: [String]
    /// Where the debug files found are decompressed to before libdwfl reads them.
    let images: DebugImageStore
    /// Paths of the debug files handed to libdwfl, in order (the alt file included).
    private(set) var foundPaths: [String] = []

    init(mainPath: String, mainIdentity: FileIdentity?, buildID: [UInt8], debugDirectories: [String],
         images: DebugImageStore) {
        self.mainPath = mainPath
        self.mainIdentity = mainIdentity
        self.buildID = buildID
        self.debugDirectories = debugDirectories
        self.images = images
    }

    /// Answers one `find_debuginfo` call. `fileName` is the file whose debug data is wanted: the
    /// main file, or a debug file when libdwfl is after its `.gnu_debugaltlink` target.
    func find(fileName: String?, debugLink: String?, debugLinkCRC: UInt32) -> FoundDebugFile? {
        let found: FoundDebugFile?
        if let fileName, let debugLink, debugLinkCRC == 0,
           let alt = altDebugLink(ofFileAt: fileName), alt.name == debugLink {
            found = findAltFile(alt, linkedFrom: fileName)
        } else {
            found = findDebugFile(debugLink: debugLink, crc: debugLinkCRC)
        }
        if let found { foundPaths.append(found.path) }
        return found
    }

    // MARK: Separate debug file

    private func findDebugFile(debugLink: String?, crc: UInt32) -> FoundDebugFile? {
        let candidates = Self.debugFileCandidates(mainPath: mainPath, buildID: buildID, debugLink: debugLink,
                                                  debugDirectories: debugDirectories)
        for path in candidates {
            guard case .success(let fd) = openRegularFile(path) else { continue }
            if let identity = FileIdentity(fd: fd), identity == mainIdentity {
                close(fd) // the main file under another name: it has no debug info to add
                continue
            }
            if isMatchingDebugFile(fd: fd, crc: crc) {
                return FoundDebugFile(path: path, fd: fd)
            }
            close(fd)
        }
        return nil
    }

    private func isMatchingDebugFile(fd: Int32, crc: UInt32) -> Bool {
        if !buildID.isEmpty {
            return gnuBuildID(fd: fd) == buildID
        }
        // No build-id to compare: fall back on the debuglink checksum, when there is one.
        guard gnuBuildID(fd: fd) != nil else { return false }
        return crc == 0 || crc32OfFile(fd: fd) == crc
    }

    // MARK: dwz alt file

    private func findAltFile(_ link: AltDebugLink, linkedFrom debugFile: String) -> FoundDebugFile? {
        var candidates = Self.buildIDPaths(for: link.buildID, debugDirectories: debugDirectories)
        let name = lastPathComponent(link.name)
        if link.name.hasPrefix("/") {
            candidates.append(link.name)
        } else if let directory = directoryName(debugFile) {
            candidates.append(joinPath(directory, link.name))
        }
        for debugDirectory in debugDirectories {
            candidates.append(joinPath(debugDirectory, ".dwz", name))
        }
        for path in candidates {
            guard case .success(let fd) = openRegularFile(path) else { continue }
            if gnuBuildID(fd: fd) == link.buildID { return FoundDebugFile(path: path, fd: fd) }
            close(fd)
        }
        return nil
    }

    /// Where a module's separate debug file is looked for, in order: the build-id directories,
    /// then the debug link's name next to the binary (and its real path when it is a symlink),
    /// in its `.debug/` subdirectory, and under each debug directory mirroring the binary's.
    /// The answers kept for a module without DWARF check these same places.
    static func debugFileCandidates(mainPath: String, buildID: [UInt8], debugLink: String?,
                                    debugDirectories: [String]) -> [String] {
        var candidates = buildIDPaths(for: buildID, debugDirectories: debugDirectories)
        guard let debugLink, !debugLink.isEmpty else { return candidates }
        var directories: [String] = []
        if let directory = directoryName(mainPath) { directories.append(directory) }
        if let real = resolvedPath(mainPath), let directory = directoryName(real), !directories.contains(directory) {
            directories.append(directory)
        }
        for directory in directories {
            candidates.append(joinPath(directory, debugLink))
            candidates.append(joinPath(directory, ".debug", debugLink))
            guard directory.hasPrefix("/") else { continue }
            for debugDirectory in debugDirectories { candidates.append(joinPath(debugDirectory, directory, debugLink)) }
        }
        return candidates
    }

    /// `<dir>/.build-id/ab/cdef....debug` for every debug directory.
    private static func buildIDPaths(for id: [UInt8], debugDirectories: [String]) -> [String] {
        guard id.count >= 2 else { return [] }
        let hex = hexString(id)
        let subdirectory = String(hex.prefix(2))
        let file = String(hex.dropFirst(2)) + ".debug"
        return debugDirectories.map { joinPath($0, ".build-id", subdirectory, file) }
    }
}

// MARK: - libdwfl callbacks

/// Callbacks shared by every session. libdwfl keeps the pointer it is given, so they live for
/// the whole process.
let offlineCallbacks: UnsafeMutablePointer<Dwfl_Callbacks> = {
    let callbacks = UnsafeMutablePointer<Dwfl_Callbacks>.allocate(capacity: 1)
    callbacks.initialize(to: Dwfl_Callbacks(
        find_elf: { _, _, _, _, _, _ in
            // Modules are reported with an open descriptor, so libdwfl never has to look for
            // the main file. Refuse quietly (errno 0 means "nothing found", not an error).
            errno = 0
            return -1
        },
        find_debuginfo: { _, userdata, _, _, fileName, debugLink, debugLinkCRC, foundName in
            // errno must be 0 on failure: libdwfl treats a non-zero errno as a hard error and
            // would then skip its fallback to the dynamic symbol table.
            errno = 0
            guard let context = userdata?.pointee else { return -1 }
            let locator = Unmanaged<DebugFileLocator>.fromOpaque(context).takeUnretainedValue()
            guard let found = locator.find(fileName: fileName.map { String(cString: $0) },
                                           debugLink: debugLink.map { String(cString: $0) },
                                           debugLinkCRC: debugLinkCRC)
            else { return -1 }
            foundName?.pointee = strdup(found.path)
            return locator.images.descriptor(for: found.fd)
        },
        section_address: dwfl_offline_section_address,
        debuginfo_path: nil))
    return callbacks
}()
