import TraceFormat

/// One source-level frame for a captured address, as the symbolizer gives it and the reports
/// show it. A physical stack frame whose code had other functions inlined into it yields
/// several of these, innermost first: the inlined ones (`isInlined`), then the function they
/// were inlined into.
public struct SymbolizedFrame: Hashable, Sendable {
    /// The address as captured (a return address for stack frames), not the adjusted lookup address.
    @HexAddress public var address: UInt64
    /// Path of the module holding the address, as the trace names it; nil if no module contains it.
    public var module: String?
    /// `address - module bias`: the address as the ELF file on disk numbers it.
    @OptionalHexAddress public var moduleOffset: UInt64?
    /// Demangled function name; nil when the module has neither debug info nor a symbol for it.
    public var function: String?
    /// Source file path as the debug info records it; nil without debug info.
    public var file: String?
    public var line: Int?
    public var column: Int?
    /// True for a frame whose code was inlined into the frame that follows it in the chain.
    public var isInlined: Bool

    public init(address: UInt64, module: String? = nil, moduleOffset: UInt64? = nil, function: String? = nil,
                file: String? = nil, line: Int? = nil, column: Int? = nil, isInlined: Bool = false) {
        self.address = address; self.module = module; self.moduleOffset = moduleOffset
        self.function = function; self.file = file; self.line = line; self.column = column
        self.isInlined = isInlined
    }

    /// `module+0xoffset` (the module's file name), or the bare address when no module is known.
    public var moduleAndOffset: String {
        if let module, let moduleOffset { return "\(Self.basename(module))+\(hexAddress(moduleOffset))" }
        return hexAddress(address)
    }

    /// `function (file:line)`, `function (module+0xoffset)` without line information, or
    /// `module+0xoffset` without symbols.
    public var displayName: String {
        guard let function else { return moduleAndOffset }
        if let file, let line { return "\(function) (\(file):\(line))" }
        return "\(function) (\(moduleAndOffset))"
    }

    /// `file:line`, or `file` when the line is unknown; nil without a file.
    public var location: String? {
        guard let file else { return nil }
        if let line { return "\(file):\(line)" }
        return file
    }

    /// The last component of a path.
    public static func basename(_ path: String) -> String {
        // On the UTF-8 view: searching the String itself checks grapheme boundaries at every
        // character (thousands of instructions for a long module path).
        let bytes = path.utf8
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(Substring(bytes[bytes.index(after: slash)...]))
    }
}

// MARK: - JSON

extension SymbolizedFrame: Codable {
    enum CodingKeys: String, CodingKey {
        case address, module, moduleOffset, function, file, line, column, isInlined = "inlined"
    }
}
