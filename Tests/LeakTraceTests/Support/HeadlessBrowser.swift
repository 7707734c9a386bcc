import Foundation

/// Debian's Chromium, headless (Scripts/setup.sh installs it): opens a page, lets its scripts
/// run, and returns the DOM they left and the console messages.
enum HeadlessBrowser {
    static let executable = "/usr/bin/chromium"

    struct Page {
        /// The DOM after the page's scripts ran, serialized.
        var dom: String
        /// The page's console messages as Chromium logs them (`...:CONSOLE:LINE] "text", source: ...`).
        var console: [String]
    }

    static func open(_ url: String) throws -> Page {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestFailure("\(executable) is missing: run Scripts/setup.sh")
        }
        // A profile of its own: two browsers at once must not share one.
        let profile = try TracedProgram.makeTraceDirectory().path
        let run = try TracedProgram.run(executable: executable, arguments: [
            "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--user-data-dir=\(profile)",
            "--enable-logging=stderr", "--v=0", "--dump-dom", url,
        ], environment: ["HOME": profile], timeout: 120)
        guard run.status == 0 else { throw TestFailure("chromium exited \(run.status): \(run.stderr.suffix(2000))") }
        return Page(dom: run.stdout, console: run.stderr.split(separator: "\n").map(String.init)
            .filter { $0.contains(":CONSOLE") || $0.contains("Uncaught") })
    }
}
