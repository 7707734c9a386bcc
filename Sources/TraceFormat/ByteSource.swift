// Where trace bytes come from: a regular file read with pread(2), or bytes already in memory.
// Opening refuses anything that is not a regular file *before* opening it for reading, so a FIFO
// or a device never blocks or changes state because someone pointed the reader at it.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Random-access bytes of a trace.
protocol ByteSource: AnyObject {
    /// Bytes in the source, fixed when it was opened.
    var size: UInt64 { get }
    /// Fills `buffer` from `offset`. Returns the bytes read (fewer only at the end of the source);
    /// a read error is returned as its description.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Result<Int, ReadFailure>
}

struct ReadFailure: Error {
    let description: String
}

// MARK: - Files

/// A regular file opened read-only.
final class FileByteSource: ByteSource {
    let descriptor: Int32
    let size: UInt64

    /// Opens `path`, refusing what is not a regular file. Errors are the text after "path: ".
    init(path: String) throws(ReadFailure) {
        var status = stat()
        guard stat(path, &status) == 0 else { throw ReadFailure(description: Self.describe(errno: errno)) }
        if let kind = Self.nonRegularKind(status.st_mode) { throw ReadFailure(description: kind) }
        // O_NONBLOCK: if the path was swapped for a FIFO since stat, opening still returns at once.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { throw ReadFailure(description: Self.describe(errno: errno)) }
        guard fstat(descriptor, &status) == 0 else {
            let problem = Self.describe(errno: errno)
            close(descriptor)
            throw ReadFailure(description: problem)
        }
        if let kind = Self.nonRegularKind(status.st_mode) {
            close(descriptor)
            throw ReadFailure(description: kind)
        }
        self.descriptor = descriptor
        self.size = UInt64(max(0, status.st_size))
    }

    deinit { close(descriptor) }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Result<Int, ReadFailure> {
        guard let base = buffer.baseAddress else { return .success(0) }
        var done = 0
        while done < buffer.count {
            let got = pread(descriptor, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if got > 0 {
                done += got
            } else if got == 0 {
                break
            } else if errno != EINTR {
                return .failure(ReadFailure(description: "read error at offset \(offset + UInt64(done)): "
                                            + Self.describe(errno: errno)))
            }
        }
        return .success(done)
    }

    /// A message for a file that is not a regular file, or nil for a regular one.
    static func nonRegularKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "is a directory"
        case S_IFIFO: return "not a regular file (a FIFO)"
        case S_IFCHR: return "not a regular file (a character device)"
        case S_IFBLK: return "not a regular file (a block device)"
        case S_IFSOCK: return "not a regular file (a socket)"
        default: return "not a regular file"
        }
    }

    static func describe(errno code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file"
        case EACCES: return "permission denied"
        default:
            guard let text = strerror(code) else { return "error \(code)" }
            return String(cString: text).lowercased()
        }
    }
}

// MARK: - Memory

/// Bytes held in memory (tests, or a trace received some other way).
final class MemoryByteSource: ByteSource {
    let bytes: [UInt8]
    var size: UInt64 { UInt64(bytes.count) }

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Result<Int, ReadFailure> {
        guard offset < size else { return .success(0) }
        let start = Int(offset)
        let length = min(buffer.count, bytes.count - start)
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + length)]))
        }
        return .success(length)
    }
}
