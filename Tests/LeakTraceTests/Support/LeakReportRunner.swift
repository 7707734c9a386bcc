import Foundation

/// Runs the built `leakreport` executable.
enum LeakReportRunner {
    static var executable: String { TracedProgram.leakreportPath }

    /// `using`: another build of leakreport (the release one, for ReleaseBuildTests).
    static func run(_ arguments: [String], timeout: TimeInterval = 120, using leakreport: String = executable) throws -> TracedRun {
        try TracedProgram.run(executable: leakreport, arguments: arguments,
                              environment: ["NO_COLOR": "1"], timeout: timeout)
    }

    /// Runs `leakreport --format json ...` and parses the document.
    static func json(_ arguments: [String], using leakreport: String = executable) throws -> [String: Any] {
        let result = try run(["--format", "json"] + arguments, using: leakreport)
        guard result.status == 0 else { throw TestFailure("leakreport exited \(result.status): \(result.stderr)") }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(result.stdout.prefix(200))")
        }
        return object
    }
}

/// Small accessors for parsed JSON.
extension Dictionary where Key == String, Value == Any {
    func object(_ key: String) -> [String: Any] { self[key] as? [String: Any] ?? [:] }
    func objects(_ key: String) -> [[String: Any]] { self[key] as? [[String: Any]] ?? [] }
    func int(_ key: String) -> Int? { self[key] as? Int }
    func string(_ key: String) -> String? { self[key] as? String }
}
