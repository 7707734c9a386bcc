import Foundation
import XCTest

/// What a test throws when a tool or package it needs is not installed: a skip on a developer's
/// machine, a failure when `CI` is set (`.ci/run` sets it), so that a green CI run means every
/// test ran. `Scripts/setup.sh` installs everything the tests need.
func missingTool(_ what: String, package: String) -> Error {
    let message = "\(what) is not installed (apt-get install \(package), or run Scripts/setup.sh)"
    if runningInCI { return TestFailure("CI is set and the test cannot run: " + message) }
    return XCTSkip(message)
}

/// True when the `CI` environment variable is set to anything but empty, `0` or `false`.
let runningInCI: Bool = {
    guard let value = ProcessInfo.processInfo.environment["CI"] else { return false }
    return !["", "0", "false"].contains(value.lowercased())
}()

extension HazardKit {
    static func missingTool(_ what: String, package: String) -> Error { LeakTraceTests.missingTool(what, package: package) }
}
