// Debug data handed to libdwfl with its compressed sections already decompressed (CDebugImage).
//
// libdw inflates every compressed debug section of a file when it opens it, with zlib, on one
// thread; for libc's debug file that was two thirds of a small program's first report. The image
// written here holds the same ELF file with those sections stored plain: libdeflate on two
// threads takes about 40% of zlib's instructions, and the sections no report reads are left out.
//
// Images are kept in the answer directory, `debug/<build-id>-<size>-<mtime>.debug`, named by the
// build-id of the file they copy and by that file's size and modification time, so a reinstalled
// debug file is never answered from an image of the old one. libc's image is 8.6 MB and serves
// the first report of every program after the first: mapping it costs page faults, not inflating.
// A run writes under a temporary name and renames the image into place, so concurrent runs see
// a whole image or none; an image whose structure does not read back whole is deleted and
// written again. The images together are kept under a budget (1 GiB unless set): the least
// recently used go first. Without an answer directory, or when it cannot be written, the image lives in memory
// for the run.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CDebugImage

/// Where decompressed images of debug files are kept between runs; nil: nowhere (memory only).
struct DebugImageStore {
    let directory: String?
    /// The most the kept images may take on disk together.
    let budget: UInt64

    init(answerDirectory: String?, budget: UInt64) {
        directory = answerDirectory.map { joinPath($0, "debug") }
        self.budget = budget
    }

    /// A descriptor to hand libdwfl in place of `fd`: an image of the file with its compressed
    /// sections decompressed, or `fd` itself when the file has none or no image can be made
    /// (libdw then reads the file as it is). When an image is returned, `fd` has been closed.
    func descriptor(for fd: Int32) -> Int32 {
        guard debug_image_is_needed(fd) != 0 else { return fd }
        guard let path = imagePath(for: fd) else { return replace(fd, with: debug_image_write(fd, nil, 0, nil, 0)) }
        if case .success(let kept) = openRegularFile(path) {
            if debug_image_is_complete(kept) != 0 {
                futimens(kept, nil) // last used now: the budget removes the least recently used
                close(fd)
                return kept
            }
            close(kept)
            unlink(path)
        }
        guard let directory, makeDirectories(directory) else {
            return replace(fd, with: debug_image_write(fd, nil, 0, nil, 0))
        }
        let written = debug_image_write(fd, path, Int(clamping: budget), nil, 0)
        if written == DEBUG_IMAGE_NOT_NEEDED { return fd }
        if written >= 0 {
            // (An image larger than the whole budget comes back in memory only, not kept.)
            removeOlderImages(than: path)
            return replace(fd, with: written)
        }
        // The directory refused the image (full, read-only): keep it in memory for this run. A
        // section that does not decompress fails here again, and libdw gets the file as it is.
        return replace(fd, with: debug_image_write(fd, nil, 0, nil, 0))
    }

    private func replace(_ fd: Int32, with image: Int32) -> Int32 {
        guard image >= 0 else { return fd }
        close(fd)
        return image
    }

    /// The kept image's path for the file at `fd`, or nil when it has no build-id or no store.
    private func imagePath(for fd: Int32) -> String? {
        guard let directory, let buildID = gnuBuildID(fd: fd), !buildID.isEmpty else { return nil }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return nil }
        return joinPath(directory, "\(hexString(buildID))-\(status.st_size)-\(nanoseconds(status.st_mtim)).debug")
    }

    /// Removes the images of older versions of the same build-id's file, then the least recently
    /// used images while all of them take more than the budget.
    private func removeOlderImages(than kept: String) {
        guard let directory, let stream = opendir(directory) else { return }
        defer { closedir(stream) }
        let keptName = lastPathComponent(kept)
        let buildIDPrefix = keptName.prefix(while: { $0 != "-" }) + "-"
        var images: [(path: String, size: UInt64, used: UInt64)] = []
        var total: UInt64 = 0
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard name.hasSuffix(".debug") else { continue }
            let path = joinPath(directory, name)
            if name != keptName && name.hasPrefix(buildIDPrefix) {
                unlink(path)
                continue
            }
            var status = stat()
            guard stat(path, &status) == 0 else { continue }
            images.append((path, UInt64(status.st_size), nanoseconds(status.st_mtim)))
            total += UInt64(status.st_size)
        }
        guard total > budget else { return }
        for image in images.sorted(by: { $0.used < $1.used }) where image.path != kept {
            unlink(image.path)
            total -= image.size
            if total <= budget { break }
        }
    }
}
