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

/// A progress bar on standard error, shown only on a terminal and only once the work has taken
/// more than a second (a quick run should print nothing extra).
///
/// Reading shows the share of the trace's bytes replayed; what follows the replay (grouping,
/// symbolizing the call sites, which is most of a first report) shows as a count of frame
/// addresses looked up, so the line never sits at 100% while work goes on. Cleared before the
/// report is written.
final class ProgressBar {
    private let label: String
    private let total: UInt64
    let enabled: Bool
    private let start = Terminal.now()
    private var lastDraw = 0.0
    private var shown = false
    private var done: UInt64 = 0
    /// Set once reading is over: what is being done now.
    private var phase: String?
    private var framesLookedUp = 0

    init(label: String, total: UInt64, enabled: Bool) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = enabled && Terminal.isTerminal(2)
    }

    /// Reading has consumed `done` bytes of the trace.
    func update(_ done: UInt64) {
        guard enabled else { return }
        self.done = done
        draw()
    }

    /// Reading is over; `phase` names what comes next ("grouping and symbolizing").
    func beginPhase(_ phase: String) {
        guard enabled else { return }
        self.phase = phase
        draw()
    }

    /// One more frame address looked up (the symbolizer's questions, during and after reading).
    func frameLookedUp() {
        framesLookedUp += 1
        if framesLookedUp & 63 == 0 { draw() }
    }

    private func draw() {
        let now = Terminal.now()
        guard now - start > 1, now - lastDraw > 0.1 else { return }
        lastDraw = now
        shown = true
        let frames = framesLookedUp > 0 ? ", \(framesLookedUp) frame addresses looked up" : ""
        if let phase {
            Terminal.writeError("\r\u{1B}[K\(phase) (\(label))\(frames)")
            return
        }
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        let percent = Int(fraction * 100)
        Terminal.writeError("\r\u{1B}[Kreading \(label) [\(bar)] \(percent)%\(frames)")
    }

    func finish() {
        guard shown else { return }
        shown = false
        Terminal.writeError("\r\u{1B}[K")
    }
}
