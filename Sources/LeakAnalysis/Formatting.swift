// Human-readable sizes and times, shared by notes in the analysis and the text report.

/// `512 B`, `1.5 KiB`, `12.0 MiB`, `3.25 GiB`.
public func formatBytes(_ bytes: UInt64) -> String {
    if bytes < 1024 { return "\(bytes) B" }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = Double(bytes) / 1024
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return "\(formatDecimal(value, digits: value < 10 ? 2 : 1)) \(units[unit])"
}

/// Signed version of `formatBytes`.
public func formatSignedBytes(_ bytes: Int64) -> String {
    bytes < 0 ? "-" + formatBytes(bytes.magnitude) : formatBytes(UInt64(bytes))
}

/// Microseconds since tracing began as seconds: `0.000s`, `12.345s`.
public func formatTime(_ microseconds: UInt64) -> String {
    let seconds = microseconds / 1_000_000
    let fraction = (microseconds % 1_000_000) / 1000
    let padded = String(fraction)
    return "\(seconds).\(String(repeating: "0", count: 3 - padded.count))\(padded)s"
}

/// Fixed-point formatting without Foundation's locale-dependent formatters.
func formatDecimal(_ value: Double, digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (value * scale).rounded()
    guard scaled.isFinite, scaled < 9.0e18 else { return String(value) }
    let integer = UInt64(scaled)
    let whole = integer / UInt64(scale)
    let fraction = String(integer % UInt64(scale))
    guard digits > 0 else { return String(whole) }
    return "\(whole).\(String(repeating: "0", count: digits - fraction.count))\(fraction)"
}
