import FoundationEssentials

/// The JSON of the report and of the diff, growth, timeline and merge documents
/// (docs/report-json.md, schemaVersion 1): pretty-printed with sorted keys, so that the output
/// is the same from run to run.
public enum JSONDocument {
    public static func render<Document: Encodable>(_ document: Document) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(document), as: UTF8.self) + "\n"
    }
}
