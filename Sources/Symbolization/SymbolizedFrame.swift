import TraceFormat

/// One source-level frame for a captured address, as the symbolizer gives it and the reports
/// show it. A physical stack frame whose code had other functions inlined into it yields
/// several of these, innermost first: the inlined ones (`isInlined`), then the function they
/// were inlined into.
public struct SymbolizedFrame: Hashable, Sendable {
    /// The address as captured (a return address for stack frames), not the adjusted lookup address.
    public var address: UInt64
    /// Path of the module holding the address, as the trace names it; nil if no module contains it.
    public var module: String?
    /// `address - module bias`: the address as the ELF file on disk numbers it.
    public var moduleOffset: UInt64?
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
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

// MARK: - JSON

/// Addresses and offsets are "0x..." strings: JSON numbers lose precision above 2^53.
extension SymbolizedFrame: Codable {
    enum CodingKeys: String, CodingKey {
        case address, module, moduleOffset, function, file, line, column, inlined
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(hexAddress(address), forKey: .address)
        try container.encodeIfPresent(module, forKey: .module)
        try container.encodeIfPresent(moduleOffset.map(hexAddress), forKey: .moduleOffset)
        try container.encodeIfPresent(function, forKey: .function)
        try container.encodeIfPresent(file, forKey: .file)
        try container.encodeIfPresent(line, forKey: .line)
        try container.encodeIfPresent(column, forKey: .column)
        try container.encode(isInlined, forKey: .inlined)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func number(_ text: String?) -> UInt64? {
            guard let text, text.hasPrefix("0x") else { return nil }
            return UInt64(text.dropFirst(2), radix: 16)
        }
        self.init(address: number(try container.decode(String.self, forKey: .address)) ?? 0,
                  module: try container.decodeIfPresent(String.self, forKey: .module),
                  moduleOffset: number(try container.decodeIfPresent(String.self, forKey: .moduleOffset)),
                  function: try container.decodeIfPresent(String.self, forKey: .function),
                  file: try container.decodeIfPresent(String.self, forKey: .file),
                  line: try container.decodeIfPresent(Int.self, forKey: .line),
                  column: try container.decodeIfPresent(Int.self, forKey: .column),
                  isInlined: try container.decode(Bool.self, forKey: .inlined))
    }
}
