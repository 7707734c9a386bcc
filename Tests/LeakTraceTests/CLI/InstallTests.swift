import Foundation
import XCTest

/// Scripts/install.sh into a temporary prefix (and a DESTDIR), the installed tools run from
/// another directory on a test program, the man pages, pkg-config file and completions, and
/// --uninstall leaving the prefix as it was. The built analyzer and library are installed
/// with --from, so the test builds nothing.
final class InstallTests: XCTestCase {
    static let installScript = TracedProgram.repositoryRoot.appendingPathComponent("Scripts/install.sh").path

    /// A directory holding the analyzer and the preload library under test, for --from.
    static func builtTools() throws -> String {
        let directory = try TracedProgram.makeTraceDirectory()
        for (name, source) in [("leakreport", LeakReportRunner.executable), ("libleaktrace.so", TracedProgram.shimPath)] {
            try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent(name).path,
                                                       withDestinationPath: source)
        }
        return directory.path
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    in directory: URL? = nil) throws -> TracedRun {
        try TracedProgram.run(executable: executable, arguments: arguments, environment: environment,
                              timeout: 120, currentDirectory: directory)
    }

    /// Every path under `root`, relative, sorted.
    static func listing(_ root: String) -> [String] {
        (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).sorted()
    }

    func testInstallRunFromAnotherDirectoryAndUninstall() throws {
        let prefix = try TracedProgram.makeTraceDirectory().path
        // Something of the user's already in the prefix stays, and nothing else does.
        try FileManager.default.createDirectory(atPath: prefix + "/bin", withIntermediateDirectories: true)
        try "mine\n".write(toFile: prefix + "/bin/mine", atomically: true, encoding: .utf8)
        let before = Self.listing(prefix)

        let install = try Self.run(Self.installScript, ["--prefix", prefix, "--from", try Self.builtTools()])
        XCTAssertEqual(install.status, 0, install.stderr)
        for file in ["bin/leakreport", "bin/leaktrace", "lib/libleaktrace.so", "include/leaktrace.h",
                     "lib/pkgconfig/leaktrace.pc", "share/man/man1/leakreport.1", "share/man/man1/leaktrace.1",
                     "share/bash-completion/completions/leakreport", "share/zsh/site-functions/_leakreport",
                     "share/fish/vendor_completions.d/leakreport.fish"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(prefix)/\(file)"), file)
        }

        // The installed wrapper and analyzer, from a directory that is neither the prefix nor
        // the repository, on a program whose leaks are known: 3 x 4000 bytes from chain_leak in
        // the program, 2222 bytes from child_leak in its forked child.
        let elsewhere = try TracedProgram.makeTraceDirectory()
        let program = try TracedProgram.build("exec_chain_target")
        let traced = try Self.run(prefix + "/bin/leaktrace", ["-o", "run.%p.lt", program],
                                  environment: ["PATH": "/usr/bin:/bin", "NO_COLOR": "1"], in: elsewhere)
        XCTAssertEqual(traced.status, 0, traced.stderr)
        XCTAssertTrue(traced.stderr.contains("read with: \(prefix)/bin/leakreport"), traced.stderr)
        let traces = Self.listing(elsewhere.path).filter { $0.hasSuffix(".lt") }
        XCTAssertEqual(traces.count, 2, "\(traces)")
        let parent = try XCTUnwrap(traces.first { trace in
            (try? Self.run(prefix + "/bin/leakreport", ["info", trace], in: elsewhere))?.stdout
                .contains("parent-trace") == false
        })
        let report = try Self.run(prefix + "/bin/leakreport", ["--format", "json", parent], in: elsewhere)
        XCTAssertEqual(report.status, 0, report.stderr)
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(root.object("summary").object("leaked").int("bytes"), 12000)
        XCTAssertEqual(CLIEndToEndTests.group(root, function: "chain_leak").int("blocks"), 3)

        // man renders both pages.
        for page in ["leakreport", "leaktrace"] {
            let man = try Self.run("/usr/bin/man", ["-l", "\(prefix)/share/man/man1/\(page).1"],
                                   environment: ["MANPAGER": "cat", "MANWIDTH": "80"])
            XCTAssertEqual(man.status, 0, man.stderr)
            XCTAssertTrue(man.stdout.contains("\(page.uppercased())(1)"), man.stdout.prefix(300).description)
            XCTAssertTrue(man.stdout.contains("family"), page)
        }
        // pkg-config finds leaktrace.h, and a program that includes it compiles with those flags.
        let flags = try Self.run("/usr/bin/pkg-config", ["--cflags", "leaktrace"],
                                 environment: ["PKG_CONFIG_PATH": prefix + "/lib/pkgconfig"])
        XCTAssertEqual(flags.status, 0, flags.stderr)
        XCTAssertEqual(flags.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "-I\(prefix)/include")
        let source = elsewhere.appendingPathComponent("mark.c").path
        try "#include <leaktrace.h>\nint main(void) { leaktrace_mark(\"x\"); return 0; }\n"
            .write(toFile: source, atomically: true, encoding: .utf8)
        let compiled = try Self.run("/usr/bin/cc", ["-I\(prefix)/include", "-o", source + ".out", source])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        // Completions: the bash one parses; the others name the command.
        let bash = try Self.run("/bin/bash", ["-n", prefix + "/share/bash-completion/completions/leakreport"])
        XCTAssertEqual(bash.status, 0, bash.stderr)
        for file in ["share/zsh/site-functions/_leakreport", "share/fish/vendor_completions.d/leakreport.fish"] {
            let text = try String(contentsOfFile: "\(prefix)/\(file)", encoding: .utf8)
            XCTAssertTrue(text.contains("leakreport") && text.contains("family"), file)
        }

        let uninstall = try Self.run(Self.installScript, ["--prefix", prefix, "--uninstall"])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        XCTAssertEqual(Self.listing(prefix), before)
    }

    /// DESTDIR stages the files; no installed file names the staging directory.
    func testDestdirStagesWithoutWritingItIntoFiles() throws {
        let stage = try TracedProgram.makeTraceDirectory().path
        let install = try Self.run(Self.installScript, ["--prefix", "/opt/lt", "--from", try Self.builtTools()],
                                   environment: ["DESTDIR": stage])
        XCTAssertEqual(install.status, 0, install.stderr)
        let pc = try String(contentsOfFile: stage + "/opt/lt/lib/pkgconfig/leaktrace.pc", encoding: .utf8)
        XCTAssertTrue(pc.hasPrefix("prefix=/opt/lt\n"), pc)
        XCTAssertFalse(pc.contains(stage))
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: stage + "/opt/lt/bin/leakreport"))
        let uninstall = try Self.run(Self.installScript, ["--prefix", "/opt/lt", "--uninstall"],
                                     environment: ["DESTDIR": stage])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
        XCTAssertEqual(Self.listing(stage), [])
    }

    /// --deb packages the same files under /usr, with the version leakreport reports.
    func testDebianPackage() throws {
        let package = try TracedProgram.makeTraceDirectory().appendingPathComponent("leaktrace.deb").path
        let build = try Self.run(Self.installScript, ["--deb", package, "--from", try Self.builtTools()])
        XCTAssertEqual(build.status, 0, build.stderr)
        let contents = try Self.run("/usr/bin/dpkg-deb", ["--contents", package])
        XCTAssertEqual(contents.status, 0, contents.stderr)
        for file in ["./usr/bin/leakreport", "./usr/bin/leaktrace", "./usr/lib/libleaktrace.so", "./usr/include/leaktrace.h",
                     "./usr/lib/pkgconfig/leaktrace.pc", "./usr/share/man/man1/leakreport.1"] {
            XCTAssertTrue(contents.stdout.contains(" \(file)\n"), file)
        }
        XCTAssertFalse(contents.stdout.contains("installed-files"))
        let version = try LeakReportRunner.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let field = try Self.run("/usr/bin/dpkg-deb", ["--field", package, "Version"])
        XCTAssertEqual(field.stdout.trimmingCharacters(in: .whitespacesAndNewlines), version)
    }

    /// The package depends on the package of every shared library its programs load by name
    /// (their NEEDED entries, as the loader resolves them here and dpkg says who owns them), so
    /// that installing it on a machine with nothing else pulls in what the tools need.
    /// Libraries no package owns (a debug build's Swift runtime in the toolchain) are not its
    /// concern: the release build links that runtime statically (Scripts/build.sh).
    func testDebianPackageDependsOnTheLibrariesItsProgramsLoad() throws {
        let package = try TracedProgram.makeTraceDirectory().appendingPathComponent("leaktrace.deb").path
        let tools = try Self.builtTools()
        let build = try Self.run(Self.installScript, ["--deb", package, "--from", tools])
        XCTAssertEqual(build.status, 0, build.stderr)
        let field = try Self.run("/usr/bin/dpkg-deb", ["--field", package, "Depends"])
        let depends = Set(field.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            .components(separatedBy: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        var checked: Set<String> = []
        for program in [LeakReportRunner.executable, TracedProgram.shimPath] {
            for library in try Self.neededLibraries(of: program) {
                guard let owner = try Self.owningPackage(of: library) else { continue }
                checked.insert(owner)
                XCTAssertTrue(depends.contains(owner), "\(program) loads \(library) from \(owner), not in Depends: \(depends)")
            }
        }
        // The libraries both tools load whatever the build: the check above saw them.
        XCTAssertTrue(checked.isSuperset(of: ["libc6", "libzstd1", "libdw1", "libunwind8", "libdeflate0"]), "\(checked)")
    }

    /// The paths the loader resolves `program`'s own NEEDED entries to (`ldd` lists the libraries
    /// those load in turn as well; their packages depend on them).
    static func neededLibraries(of program: String) throws -> [String] {
        let dynamic = try run("/usr/bin/readelf", ["-d", program])
        XCTAssertEqual(dynamic.status, 0, dynamic.stderr)
        let needed = dynamic.stdout.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("(NEEDED)"), let open = line.lastIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        let resolved = try run("/usr/bin/ldd", [program])
        XCTAssertEqual(resolved.status, 0, resolved.stderr)
        var paths: [String: String] = [:]
        for line in resolved.stdout.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words.count >= 3, words[1] == "=>", words[2].hasPrefix("/") {
                paths[words[0]] = words[2]
            } else if let path = words.first, path.hasPrefix("/") {
                paths[(path as NSString).lastPathComponent] = path
            }
        }
        return needed.map { name in
            XCTAssertNotNil(paths[name], "ldd did not resolve \(name) for \(program)")
            return paths[name] ?? name
        }
    }

    /// The Debian package that owns `path`, under its own name or with /usr in front (merged /usr:
    /// the loader finds /lib/x86_64-linux-gnu/X, a package may have listed /usr/lib/x86_64-linux-gnu/X).
    static func owningPackage(of path: String) throws -> String? {
        let real = (path as NSString).resolvingSymlinksInPath
        for candidate in [path, "/usr" + path, real, "/usr" + real] {
            let search = try run("/usr/bin/dpkg", ["-S", candidate])
            if search.status == 0, let owner = search.stdout.split(separator: ":").first {
                return String(owner)
            }
        }
        return nil
    }

    /// docs/man/leakreport.1 is generated (Scripts/man.sh): every option of every command, with
    /// its help text, must be in it, or the page is out of date.
    func testManPageHasEveryOptionOfEveryCommand() throws {
        let dump = try LeakReportRunner.run(["--experimental-dump-help"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let info = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let page = try String(contentsOfFile: TracedProgram.repositoryRoot
            .appendingPathComponent("docs/man/leakreport.1").path, encoding: .utf8)
        // The page lists each command under `.It Em NAME`.
        var sections: [String: String] = [:]
        for part in page.components(separatedBy: "\n.It Em ").dropFirst() {
            let name = String(part.prefix { $0 != "\n" })
            sections[name] = part
        }
        let commands = info.object("command").objects("subcommands")
        XCTAssertFalse(commands.isEmpty)
        for command in commands {
            let name = command.string("commandName") ?? "?"
            guard let section = sections[name] else { XCTFail("\(name) is not in leakreport.1: run Scripts/man.sh"); continue }
            for argument in command.objects("arguments") where argument.string("kind") != "positional" {
                guard let long = argument.objects("names").first(where: { $0.string("kind") == "long" })?.string("name"),
                      long != "help" else { continue }
                XCTAssertTrue(section.contains(".It Fl -\(long)"), "\(name) --\(long) is not in leakreport.1: run Scripts/man.sh")
                if let help = argument.string("abstract") {
                    XCTAssertTrue(section.contains(help), "\(name) --\(long): its help changed: run Scripts/man.sh")
                }
            }
        }
    }
}
