import FoundationEssentials
import Symbolization

/// One `leak:PATTERN` line of a suppressions file.
public struct Suppression: Hashable, Sendable {
    public let pattern: TemplatePattern
    /// Where it was defined, `file:line`, for messages.
    public let origin: String
    public init(pattern: String, origin: String) {
        self.pattern = TemplatePattern(pattern); self.origin = origin
    }
}

/// Leak suppressions in LeakSanitizer's file format: one `leak:PATTERN` per line, `#` starts
/// a comment, blank lines are ignored. A pattern matches a stack when it matches, anywhere in
/// the name (see `TemplatePattern`), the function, source file or module of any frame.
public struct Suppressions: Sendable {
    public private(set) var rules: [Suppression] = []

    public init(rules: [Suppression] = []) { self.rules = rules }

    /// Memory the C and C++ runtimes allocate once and keep until exit on purpose: freed only by
    /// `__libc_freeres` (which valgrind calls and a preloaded tracer cannot, since stdout may
    /// still need flushing), so never a program's leak. On by default;
    /// `--no-default-suppressions` turns them off.
    public static let builtIn: [Suppression] = [
        ("^_IO_file_doallocate$", "stdio stream buffers"),
        ("^_dl_allocate_tls$", "thread-local storage of each thread"),
        ("^_dl_resize_dtv$", "thread-local storage of each thread"),
        ("^_dl_update_slotinfo$", "thread-local storage of dlopened libraries"),
        ("eh_alloc.cc$", "libstdc++'s emergency exception pool"),
        ("^_nl_", "locale data loaded by setlocale"),
    ].map { Suppression(pattern: $0.0, origin: "built-in (\($0.1))") }

    public var isEmpty: Bool { rules.isEmpty }

    /// Parses the text of a suppressions file. Throws a one-line message naming `name:line`.
    public init(parsing text: String, name: String) throws {
        // Lines split on the scalar "\n": String's own split sees "\r\n" as one Character, and
        // read a file written with CRLF line ends as one line. A line's "\r" end goes too.
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        for (number, scalars) in lines.enumerated() {
            let rawLine = Substring(scalars.last == "\r" ? scalars.dropLast() : scalars)
            let line = Self.trimmingBlanks(rawLine)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw SuppressionError("\(name):\(number + 1): expected 'leak:PATTERN', got '\(line)'")
            }
            let type = line[..<colon]
            let pattern = Self.trimmingBlanks(line[line.index(after: colon)...])
            guard type == "leak" else {
                throw SuppressionError("\(name):\(number + 1): unsupported suppression type '\(type)' (only 'leak' is)")
            }
            guard !pattern.isEmpty else {
                throw SuppressionError("\(name):\(number + 1): empty pattern")
            }
            rules.append(Suppression(pattern: pattern, origin: "\(name):\(number + 1)"))
        }
    }

    /// `text` without the tabs and space separators (Unicode Zs) at either end; line breaks
    /// stay (what Foundation's `trimmingCharacters(in: .whitespaces)` does, which would link the
    /// whole of Foundation and its ICU data: 4.5 MiB more memory for every report).
    static func trimmingBlanks(_ text: Substring) -> String {
        func isBlank(_ scalar: Unicode.Scalar) -> Bool {
            scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator
        }
        var scalars = text.unicodeScalars[...]
        while let first = scalars.first, isBlank(first) { scalars.removeFirst() }
        while let last = scalars.last, isBlank(last) { scalars.removeLast() }
        return String(scalars)
    }

    /// Reads and parses a suppressions file.
    public init(contentsOfFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SuppressionError("cannot read suppressions file '\(path)'")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SuppressionError("suppressions file '\(path)' is not UTF-8 text")
        }
        try self.init(parsing: text, name: path)
    }

    /// Index of the first rule that matches any name of any frame, or nil.
    public func firstMatch(in frames: [SymbolizedFrame]) -> Int? {
        // Through buffer pointers, so that rules and frames are read in place: a loop over the
        // arrays copied each rule and each frame (a dozen references retained and released)
        // for every comparison.
        rules.withUnsafeBufferPointer { rules in
            frames.withUnsafeBufferPointer { frames in
                for index in rules.indices {
                    for frame in frames.indices {
                        if let module = frames[frame].module, rules[index].pattern.matches(module) { return index }
                        if let function = frames[frame].function, rules[index].pattern.matches(function) { return index }
                        if let file = frames[frame].file, rules[index].pattern.matches(file) { return index }
                    }
                }
                return nil
            }
        }
    }
}

/// A problem in a suppressions file.
public struct SuppressionError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
