import ArgumentParser
import TraceFormat
import LeakAnalysis

/// The `leakreport` command line: parses arguments, runs a subcommand and maps every outcome
/// to an exit status. Never traps on user input.
///
/// Exit status: 0 ran; 2 bad input or usage (one line on stderr, `leakreport: error: ...`);
/// 3 `--fail-on-leak` (or `--fail-on-unfreed`) and unsuppressed leaked bytes above the limit; 4 `diff`/`growth`
/// `--fail-on-growth` and growth above the limit.
public enum LeakReportCLI {
    public static let exitBadInput: Int32 = 2
    public static let exitLeaksFound: Int32 = 3
    /// `diff` and `growth` with `--fail-on-growth`: the bytes grew by more than allowed.
    public static let exitGrowth: Int32 = 4

    /// `leakreport --version`: the version the tracer of the same build writes into every
    /// trace header (`tracer-version`); CommandAgreementTests checks that the two agree.
    public static let version = "1.0.0"

    /// Runs the command line `arguments` (without the program name) and returns the exit status.
    public static func run(_ arguments: [String]) -> Int32 {
        do {
            var command = try LeakReportCommand.parseAsRoot(normalize(arguments))
            try command.run()
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch {
            let code = LeakReportCommand.exitCode(for: error)
            if code == .success {
                // --help, --version: the full text on standard output.
                print(LeakReportCommand.fullMessage(for: error))
                return 0
            }
            Terminal.writeError("leakreport: error: \(oneLine(message(for: error)))\n")
            return exitBadInput
        }
    }

    /// The text of an error without the parser's usage block.
    static func message(for error: Error) -> String {
        switch error {
        case let error as TraceError: return error.description
        case let error as SuppressionError: return error.description
        case let error as UsageError: return error.description
        case let error as GrowthError: return error.description
        default: return LeakReportCommand.message(for: error)
        }
    }

    static func oneLine(_ text: String) -> String {
        let trimmed = text.trimmingWhitespace()
        let first = trimmed.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
        return first.hasPrefix("Error: ") ? String(first.dropFirst(7)) : first
    }

    /// `--fail-on-leak` and `--fail-on-unfreed` take an optional value (`--fail-on-leak=BYTES`),
    /// which the argument parser cannot express; a bare flag becomes `--fail-on-leak=0` before
    /// parsing. Arguments after `--` are left alone.
    static func normalize(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var passthrough = false
        for argument in arguments {
            if passthrough { result.append(argument); continue }
            if argument == "--" { passthrough = true; result.append(argument); continue }
            result.append(argument == "--fail-on-leak" || argument == "--fail-on-unfreed" ? argument + "=0" : argument)
        }
        return result
    }
}

/// The root command: `leakreport TRACE...` is `leakreport report TRACE...`.
struct LeakReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leakreport",
        abstract: "Report what a traced program never freed, from a leaktrace trace.",
        discussion: """
            Exit status: 0 when the report ran; 2 for bad input or usage; 3 with --fail-on-leak \
            when unsuppressed leaks above the limit remain (definitely and indirectly lost when the \
            trace knows reachability at exit, else everything not freed; --fail-on-unfreed counts \
            everything not freed); 4 with diff/growth --fail-on-growth when \
            the growth is above the limit. See docs/leakreport.md.
            """,
        version: LeakReportCLI.version,
        subcommands: [ReportCommand.self, DumpCommand.self, InfoCommand.self,
                      DiffCommand.self, GrowthCommand.self, TimelineCommand.self, FamilyCommand.self],
        defaultSubcommand: ReportCommand.self)
}
