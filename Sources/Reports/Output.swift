#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The output formats of `leakreport`.
public enum OutputFormat: String, CaseIterable, Sendable {
    /// The human report.
    case text
    /// The versioned JSON document of docs/report-json.md.
    case json
    /// glibc's mtrace text, for the `mtrace` script.
    case mtrace
    /// Collapsed stacks weighted by leaked bytes, for flamegraph.pl and speedscope.
    case folded
    /// One self-contained page to open in a browser.
    case html
}

/// Buffers text and writes it to a file descriptor in large pieces: exports such as mtrace
/// write one line per event, and one write(2) per line would dominate their cost.
public final class BufferedOutput {
    private var buffer: [UInt8] = []
    private let descriptor: Int32
    private let capacity: Int
    /// Set when a write failed (a closed pipe, a full disk); later writes are dropped.
    public private(set) var failed = false

    public init(descriptor: Int32 = 1, capacity: Int = 1 << 16) {
        self.descriptor = descriptor
        self.capacity = capacity
        buffer.reserveCapacity(capacity)
    }

    deinit { flush() }

    public func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= capacity { flush() }
    }

    public func flush() {
        guard !buffer.isEmpty else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        guard !failed else { return }
        var written = 0
        buffer.withUnsafeBytes { bytes in
            while written < bytes.count {
                let result = Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    failed = true
                    return
                }
                written += result
            }
        }
    }
}
