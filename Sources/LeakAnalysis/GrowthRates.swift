import Symbolization

// Leak rate of a call site: a least-squares line through its live bytes over time, and what
// the shape says (a steady leak, a cache that levelled off, a burst that was given back).

/// The shape of a site's live bytes over time.
public enum SiteTrend: String, Sendable, Encodable, CaseIterable {
    /// Grows along a line (R² at least 0.8) and still grows in the second half.
    case steadyLeak = "steady-leak"
    /// Grows, but only roughly along a line (R² from 0.4 to 0.8): bursts partly freed, uneven load.
    case growing
    /// Rose in one or a few jumps with no trend over time (R² below 0.4), e.g. a buffer
    /// allocated once late in the run.
    case step
    /// Grew and then levelled off: the second half grows at less than a fifth of the whole.
    case plateau
    /// Went up and was given back: the final live bytes are at most a quarter of the peak.
    case freedBurst = "freed-burst"
    /// Neither grows nor was freed (allocated once and kept, or shrinking).
    case flat

    /// True for the shapes the report lists as growing.
    public var isGrowing: Bool { self == .steadyLeak || self == .growing }
}

/// One site's live bytes over a window of time, reduced to a rate.
public struct SiteRate: Equatable, Sendable, Encodable {
    public var key: SiteKey
    public var name: String
    public var callsite: SymbolizedFrame?
    /// Least-squares slope of live bytes over time, bytes per second (0 over a window of no length).
    public var bytesPerSecond: Double
    /// How well the line fits, 0...1 (absent when live bytes never changed or the window has no length).
    public var rSquared: Double?
    /// Slope over the second half of the window, bytes per second.
    public var recentBytesPerSecond: Double
    public var trend: SiteTrend
    /// Live bytes at the start of the window, at its end, and the most in between.
    public var startBytes: Int64
    public var endBytes: Int64
    public var peakBytes: Int64
    /// Points the line was fitted to.
    public var samples: Int

    init(label: SiteLabel, fit: SiteFit) {
        key = label.key
        name = label.name
        callsite = label.callsite
        bytesPerSecond = fit.bytesPerSecond
        rSquared = fit.rSquared
        recentBytesPerSecond = fit.recentBytesPerSecond
        trend = fit.trend
        startBytes = fit.startBytes
        endBytes = fit.endBytes
        peakBytes = fit.peakBytes
        samples = fit.samples
    }

    enum CodingKeys: String, CodingKey {
        case key, name, callsite, bytesPerSecond, rSquared, recentBytesPerSecond, trend, startBytes, endBytes,
             peakBytes, samples
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(callsite, forKey: .callsite)
        // Whole bytes per second and R² to three places: stable output, no float noise.
        try container.encode(wholeNumber(bytesPerSecond), forKey: .bytesPerSecond)
        try container.encodeIfPresent(rSquared.map { ($0 * 1000).rounded() / 1000 }, forKey: .rSquared)
        try container.encode(wholeNumber(recentBytesPerSecond), forKey: .recentBytesPerSecond)
        try container.encode(trend, forKey: .trend)
        try container.encode(startBytes, forKey: .startBytes)
        try container.encode(endBytes, forKey: .endBytes)
        try container.encode(peakBytes, forKey: .peakBytes)
        try container.encode(samples, forKey: .samples)
    }
}

/// A site's live bytes over a window reduced to a line: the figures of a `SiteRate`, before
/// the site is named (most sites are never shown, and naming one copies its strings).
struct SiteFit {
    var bytesPerSecond: Double
    var rSquared: Double?
    var recentBytesPerSecond: Double
    var trend: SiteTrend
    var startBytes: Int64
    var endBytes: Int64
    var peakBytes: Int64
    var samples: Int

    /// Fits `points` (time µs, live bytes), in time order. `exactPeak` is the highest live
    /// total the replay saw inside the window (a burst can rise and fall between two points).
    /// Nil when the site never held anything in the window.
    init?(points: ArraySlice<(time: UInt64, bytes: Int64)>, exactPeak: Int64) {
        guard let first = points.first, let last = points.last else { return nil }
        var highest = points[points.startIndex].bytes
        for point in points where point.bytes > highest { highest = point.bytes }
        let peak = max(exactPeak, highest)
        guard peak > 0 else { return nil }
        startBytes = first.bytes
        endBytes = last.bytes
        peakBytes = peak
        samples = points.count
        let fit = Self.leastSquares(points)
        bytesPerSecond = fit.slope
        rSquared = fit.rSquared
        // The points are in time order: those of the second half are a suffix.
        let middle = first.time + (last.time - first.time) / 2
        let secondHalf = points.firstIndex { $0.time >= middle } ?? points.endIndex
        recentBytesPerSecond = Self.leastSquares(points[secondHalf...]).slope
        trend = Self.classify(slope: bytesPerSecond, rSquared: rSquared, recent: recentBytesPerSecond,
                              end: endBytes, peak: peak)
    }

    static func classify(slope: Double, rSquared: Double?, recent: Double, end: Int64, peak: Int64) -> SiteTrend {
        if end <= peak / 4 { return .freedBurst }
        guard slope > 0 else { return .flat }
        if recent <= slope / 5 { return .plateau }
        guard let rSquared else { return .step }
        if rSquared >= 0.8 { return .steadyLeak }
        return rSquared >= 0.4 ? .growing : .step
    }

    /// Slope (per second) and coefficient of determination of the least-squares line.
    static func leastSquares(_ points: ArraySlice<(time: UInt64, bytes: Int64)>) -> (slope: Double, rSquared: Double?) {
        guard points.count >= 2 else { return (0, nil) }
        let count = Double(points.count)
        // Centre on the first point: microseconds since 1970 squared would lose precision.
        let origin = points[points.startIndex].time
        func x(_ point: (time: UInt64, bytes: Int64)) -> Double { Double(point.time - origin) / 1_000_000 }
        var sumX = 0.0, sumY = 0.0
        for point in points {
            sumX += x(point)
            sumY += Double(point.bytes)
        }
        let meanX = sumX / count
        let meanY = sumY / count
        var sxx = 0.0, sxy = 0.0, syy = 0.0
        for point in points {
            let dx = x(point) - meanX, dy = Double(point.bytes) - meanY
            sxx += dx * dx
            sxy += dx * dy
            syy += dy * dy
        }
        guard sxx > 0 else { return (0, nil) }
        let slope = sxy / sxx
        guard syy > 0 else { return (slope, nil) }
        return (slope, min(1, (sxy * sxy) / (sxx * syy)))
    }

    /// True for the fits the report lists as growing (`topGrowers`).
    var isGrower: Bool { trend.isGrowing && bytesPerSecond > 0 }
}

extension Array where Element == SiteRate {
    /// The sites that keep growing (steady leaks and irregular growth), steepest first.
    public func topGrowers(_ count: Int) -> [SiteRate] {
        Array(filter { $0.trend.isGrowing && $0.bytesPerSecond > 0 }.prefix(count))
    }
}

/// `value` rounded to a whole number, clamped to Int64 (a damaged trace can make any slope).
func wholeNumber(_ value: Double) -> Int64 {
    guard value.isFinite else { return 0 }
    if value >= 9.2e18 { return .max }
    if value <= -9.2e18 { return .min }
    return Int64(value.rounded())
}
