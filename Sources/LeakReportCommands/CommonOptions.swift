import FoundationEssentials
import ArgumentParser
import LeakAnalysis
import Reports
import Symbolization

/// The options every command that replays a trace takes (`report`, `diff`, `growth`,
/// `timeline`): the output, how call sites are found, which stacks are suppressed, and how
/// frames are symbolized.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: text or json; html for report, diff, growth and timeline; report also takes mtrace and folded.")
    var format: String = "text"

    @Option(name: .long, help: "Number of groups or sites to list.")
    var top: Int = 20

    @Option(name: .customLong("skip-frame"),
            help: "A glob naming one more allocation wrapper to look past when finding call sites (repeatable).")
    var skipFrames: [String] = []

    @Option(name: .long, help: "A LeakSanitizer-style suppressions file, `leak:PATTERN` per line (repeatable).")
    var suppressions: [String] = []

    @Flag(name: .long, help: "Do not apply the built-in suppressions (stdio buffers, thread-local storage, libstdc++'s exception pool, locale data).")
    var noDefaultSuppressions = false

    @Option(name: .long, help: "Colour: auto (on a terminal), always or never.")
    var color: String = "auto"

    @Option(name: .customLong("debug-dir"), help: "A directory of separate debug files (repeatable; default /usr/lib/debug).")
    var debugDirectories: [String] = []

    @Flag(name: .customLong("no-symbolize"), help: "Show frames as module+offset without reading debug info.")
    var noSymbolize = false

    @Flag(name: .customLong("no-progress"), help: "Never draw the progress bar.")
    var noProgress = false

    @Flag(name: .customLong("no-follow-exec"),
          help: "Read the trace given even when it ended by exec (by default such a trace is followed to the program its process ran last).")
    var noFollowExec = false

    @Flag(name: .customLong("no-symbol-cache"),
          help: "Neither read nor write the answers kept from earlier runs (LEAKTRACE_SYMBOL_CACHE sets their directory).")
    var noSymbolCache = false

    /// The format is checked by each command: they take different ones.
    func validate() throws {
        guard ["auto", "always", "never"].contains(color) else {
            throw ValidationError("--color takes auto, always or never")
        }
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
        for pattern in skipFrames where pattern.isEmpty { throw ValidationError("--skip-frame needs a pattern") }
    }

    /// For the commands whose output is text or JSON only.
    func requireTextOrJSON() throws {
        guard format == "text" || format == "json" else {
            throw ValidationError("unknown format '\(format)' (text, json)")
        }
    }

    /// For the commands whose documents also make a page (`diff`, `growth`, `timeline`).
    func requireTextJSONOrHTML() throws {
        guard ["text", "json", "html"].contains(format) else {
            throw ValidationError("unknown format '\(format)' (text, json, html)")
        }
    }

    var isJSON: Bool { format == "json" }

    var wantsColor: Bool {
        switch color {
        case "always": return true
        case "never": return false
        default: return Terminal.wantsColor()
        }
    }

    var progress: Bool { !noProgress }

    /// Call sites, suppressions (the built-in rules unless turned off, then the files') and --top.
    func analysisOptions() throws -> AnalysisOptions {
        var options = AnalysisOptions()
        options.frameFilter = AllocatorFrameFilter(extraPatterns: skipFrames)
        var rules: [Suppression] = noDefaultSuppressions ? [] : Suppressions.builtIn
        for file in suppressions { rules += try Suppressions(contentsOfFile: file).rules }
        options.suppressions = Suppressions(rules: rules)
        options.top = top
        return options
    }

    func makeSymbolizer() -> FrameSymbolizer {
        guard !noSymbolize else { return OffsetOnlySymbolizer() }
        var options = SymbolizerOptions()
        if !debugDirectories.isEmpty { options.debugDirectories = debugDirectories }
        if !noSymbolCache { options.answerDirectory = Self.symbolCacheDirectory() }
        return DwarfFrameSymbolizer(options: options)
    }

    /// LEAKTRACE_SYMBOL_CACHE (`off` for none), else $XDG_CACHE_HOME/leaktrace, else
    /// ~/.cache/leaktrace; nil when there is no such place.
    static func symbolCacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let chosen = environment["LEAKTRACE_SYMBOL_CACHE"], !chosen.isEmpty {
            return chosen == "off" ? nil : chosen
        }
        if let cache = environment["XDG_CACHE_HOME"], cache.hasPrefix("/") { return cache + "/leaktrace" }
        if let home = environment["HOME"], home.hasPrefix("/") { return home + "/.cache/leaktrace" }
        return nil
    }
}

extension CommonOptions {
    /// Writes `document` to standard output as JSON, as a page, or as `text` renders it.
    func write<Document: Encodable>(_ document: Document, text: (GrowthText) -> String) throws {
        let output = BufferedOutput()
        switch format {
        case "json": output.write(try JSONDocument.render(document))
        case "html": output.write(try HtmlReport.render(document))
        default: output.write(text(GrowthText(color: wantsColor)))
        }
        output.flush()
    }
}

/// The one trace file that `growth`, `timeline`, `info` and `dump` read.
struct TraceFileArgument: ParsableArguments {
    @Argument(help: "A trace file written by libleaktrace.so.")
    var trace: String
}
