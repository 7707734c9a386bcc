import LiveSet

// Parsing of the values users type: byte sizes, times and `--at` targets.

/// Why a command line value was refused.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum ValueParsing {
    /// `4096`, `64K`, `64KiB`, `1.5M`, `2MiB`, `1G` (binary multiples; a trailing `B` is allowed).
    static func bytes(_ text: String) throws -> UInt64 {
        let trimmed = text.trimmingWhitespace()
        var number = Substring(trimmed)
        var multiplier: Double = 1
        let kibi = 1024.0, mebi = kibi * 1024, gibi = mebi * 1024, tebi = gibi * 1024
        let suffixes: [(String, Double)] = [("KIB", kibi), ("MIB", mebi), ("GIB", gibi), ("TIB", tebi),
                                            ("KB", kibi), ("MB", mebi), ("GB", gibi), ("TB", tebi),
                                            ("K", kibi), ("M", mebi), ("G", gibi), ("T", tebi), ("B", 1)]
        let upper = trimmed.uppercased()
        for (suffix, value) in suffixes where upper.hasSuffix(suffix) {
            number = number.dropLast(suffix.count)
            multiplier = value
            break
        }
        if multiplier == 1, let exact = UInt64(number) { return exact }
        guard let value = Double(number), value.isFinite, value >= 0 else {
            throw UsageError("'\(text)' is not a size (examples: 4096, 64K, 1.5MiB)")
        }
        let total = value * multiplier
        guard total < 1.8e19 else { throw UsageError("'\(text)' is too large") }
        return UInt64(total.rounded())
    }

    /// `2.5s`, `1500ms`, `300us`, `1m`, a bare number of seconds, or `mark:NAME`.
    static func replayLimit(_ text: String) throws -> ReplayLimit {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("mark:") {
            let name = String(trimmed.dropFirst(5))
            guard !name.isEmpty else { throw UsageError("'--at mark:' needs a mark name") }
            return .mark(name)
        }
        let units: [(String, Double)] = [("us", 1), ("µs", 1), ("ms", 1000), ("s", 1_000_000), ("m", 60_000_000),
                                         ("h", 3_600_000_000)]
        var number = Substring(trimmed)
        var scale: Double = 1_000_000
        for (unit, value) in units where trimmed.hasSuffix(unit) {
            number = number.dropLast(unit.count)
            scale = value
            break
        }
        guard let value = Double(number), value.isFinite, value >= 0, value * scale < 1.8e19 else {
            throw UsageError("'\(text)' is not a time (examples: 2.5s, 1500ms, 300us, mark:NAME)")
        }
        return .time(UInt64((value * scale).rounded()))
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
