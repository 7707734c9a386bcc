#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Facts about where output goes, and the progress bar.
enum Terminal {
    static func isTerminal(_ descriptor: Int32) -> Bool { isatty(descriptor) == 1 }

    /// Colour on standard output: only on a terminal, and not when NO_COLOR is set or TERM is dumb.
    static func wantsColor() -> Bool {
        guard isTerminal(1) else { return false }
        if let noColor = getenv("NO_COLOR"), noColor.pointee != 0 { return false }
        if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
        return true
    }

    /// Seconds on a monotonic clock.
    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    static func writeError(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// A progress bar on standard error, shown only on a terminal and only once reading has taken
/// more than a second (a quick run should print nothing extra).
final class ProgressBar {
    private let label: String
    private let total: UInt64
    private let enabled: Bool
    private let start = Terminal.now()
    private var lastDraw = 0.0
    private var shown = false

    init(label: String, total: UInt64, enabled: Bool) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = enabled && Terminal.isTerminal(2)
    }

    func update(_ done: UInt64) {
        guard enabled else { return }
        let now = Terminal.now()
        guard now - start > 1, now - lastDraw > 0.1 else { return }
        lastDraw = now
        shown = true
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        let percent = Int(fraction * 100)
        Terminal.writeError("\r\(label) [\(bar)] \(percent)%")
    }

    func finish() {
        guard shown else { return }
        Terminal.writeError("\r\u{1B}[K")
    }
}
