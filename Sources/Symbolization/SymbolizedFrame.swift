/// One source-level frame for a captured address. A physical stack frame whose code had other
/// functions inlined into it yields several of these, innermost first.
public struct SymbolizedFrame: Equatable, Sendable, Codable, Hashable {
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
        self.address = address
        self.module = module
        self.moduleOffset = moduleOffset
        self.function = function
        self.file = file
        self.line = line
        self.column = column
        self.isInlined = isInlined
    }

    /// `function (file:line)` when both are known; otherwise the best of what is known:
    /// `function (libfoo.so+0x1a2b)`, `libfoo.so+0x1a2b (file:line)`, `libfoo.so+0x1a2b`, or the
    /// bare hex address when no module contains it. Modules are shown by file name only.
    public var displayName: String {
        let location = sourceLocation
        let moduleAndOffset = moduleWithOffset
        switch (function, location, moduleAndOffset) {
        case let (function?, location?, _): return "\(function) (\(location))"
        case let (function?, nil, place?): return "\(function) (\(place))"
        case let (function?, nil, nil): return function
        case let (nil, location?, place?): return "\(place) (\(location))"
        case let (nil, nil, place?): return place
        case let (nil, location?, nil): return "\(hex(address)) (\(location))"
        case (nil, nil, nil): return hex(address)
        }
    }

    /// `file:line`, or `file` when the line is unknown; nil without a file.
    public var sourceLocation: String? {
        guard let file else { return nil }
        guard let line, line > 0 else { return file }
        return "\(file):\(line)"
    }

    /// `libfoo.so+0x1a2b`: the module's file name and the offset inside it; nil without a module.
    public var moduleWithOffset: String? {
        guard let module, let moduleOffset else { return nil }
        return "\(Self.fileName(module))+\(hex(moduleOffset))"
    }

    private static func fileName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        let name = path[path.index(after: slash)...]
        return name.isEmpty ? path : String(name)
    }
}

private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
