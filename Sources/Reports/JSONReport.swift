import Foundation
import LeakAnalysis

/// The JSON form of a report (docs/report-json.md, schemaVersion 1).
public enum JSONReport {
    /// Pretty-printed JSON with sorted keys, so that output is stable from run to run.
    public static func render(_ report: LeakReport) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(report)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
