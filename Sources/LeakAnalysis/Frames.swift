import TraceFormat

/// One frame of a stack as the report shows it. An address with inlined calls becomes several
/// frames: the inlined ones first (`isInlined`), the function they were inlined into last.
public struct ResolvedFrame: Hashable, Sendable, Codable {
    /// The captured address (a return address).
    public var address: UInt64
    /// Path of the module containing the address, nil when no module does.
    public var module: String?
    /// `address` minus the module's load bias.
    public var moduleOffset: UInt64?
    /// Demangled function name, nil without symbols.
    public var function: String?
    /// Source file, nil without debug info.
    public var file: String?
    public var line: Int?
    public var column: Int?
    /// True for a frame inlined into the next one.
    public var isInlined: Bool

    public init(address: UInt64, module: String? = nil, moduleOffset: UInt64? = nil, function: String? = nil,
                file: String? = nil, line: Int? = nil, column: Int? = nil, isInlined: Bool = false) {
        self.address = address; self.module = module; self.moduleOffset = moduleOffset
        self.function = function; self.file = file; self.line = line; self.column = column
        self.isInlined = isInlined
    }

    /// `module+0xoffset`, or the bare address when no module is known.
    public var moduleAndOffset: String {
        if let module, let moduleOffset {
            return "\(Self.basename(module))+0x\(String(moduleOffset, radix: 16))"
        }
        return "0x\(String(address, radix: 16))"
    }

    /// `function (file:line)`, `function (module+0xoffset)` without line info, or
    /// `module+0xoffset` without symbols.
    public var displayName: String {
        guard let function else { return moduleAndOffset }
        if let file, let line { return "\(function) (\(file):\(line))" }
        return "\(function) (\(moduleAndOffset))"
    }

    /// `file:line` when known.
    public var location: String? {
        guard let file else { return nil }
        if let line { return "\(file):\(line)" }
        return file
    }

    static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// Resolves a captured address to its (inline-expanded) frames. The symbolization stage
/// provides the real one; tests provide tables.
public protocol FrameSymbolizer: AnyObject {
    /// Frames for `address` in `module`, innermost (most inlined) first, physical function
    /// last; never empty.
    func resolve(address: UInt64, module: Module?) -> [ResolvedFrame]
    /// One line per problem met (a binary that changed since the trace, ...).
    var symbolizationWarnings: [String] { get }
}

/// Finds the loaded module containing an address, given the MODULES snapshot in force.
public protocol ModuleLookup {
    func module(containing address: UInt64, snapshot index: Int) -> Module?
}

/// A symbolizer that knows nothing: every frame is `module+offset`. Used with --no-symbolize
/// and when symbolization is not possible.
public final class OffsetOnlySymbolizer: FrameSymbolizer {
    public init() {}
    public func resolve(address: UInt64, module: Module?) -> [ResolvedFrame] {
        [ResolvedFrame(address: address, module: module?.path,
                       moduleOffset: module.map { address &- $0.bias })]
    }
    public var symbolizationWarnings: [String] { [] }
}

/// Resolves each distinct (address, module) once and remembers the answer.
final class FrameCache {
    private struct Key: Hashable {
        var address: UInt64
        var modulePath: String?
        var bias: UInt64
    }
    private let symbolizer: FrameSymbolizer
    private let modules: ModuleLookup
    private var cache: [Key: [ResolvedFrame]] = [:]
    private(set) var distinctAddresses = 0

    init(symbolizer: FrameSymbolizer, modules: ModuleLookup) {
        self.symbolizer = symbolizer
        self.modules = modules
    }

    /// Inline-expanded frames for one captured address.
    func frames(for address: UInt64, snapshot: Int) -> [ResolvedFrame] {
        let module = modules.module(containing: address, snapshot: snapshot)
        let key = Key(address: address, modulePath: module?.path, bias: module?.bias ?? 0)
        if let known = cache[key] { return known }
        var resolved = symbolizer.resolve(address: address, module: module)
        if resolved.isEmpty {
            resolved = [ResolvedFrame(address: address, module: module?.path,
                                      moduleOffset: module.map { address &- $0.bias })]
        }
        cache[key] = resolved
        distinctAddresses += 1
        return resolved
    }

    /// Inline-expanded frames for a whole stack (innermost first).
    func frames(forStack addresses: [UInt64], snapshot: Int) -> [ResolvedFrame] {
        addresses.flatMap { frames(for: $0, snapshot: snapshot) }
    }

    /// The call site of a stack: its first frame that `filter` does not take for the allocator
    /// or a wrapper, resolving frames only as far as needed (the innermost frame when every
    /// frame looks like the allocator; nil for an empty stack).
    func callsite(of addresses: [UInt64], snapshot: Int, filter: AllocatorFrameFilter) -> ResolvedFrame? {
        for address in addresses {
            for frame in frames(for: address, snapshot: snapshot)
            where !filter.isAllocatorFrame(function: frame.function) {
                return frame
            }
        }
        return addresses.first.flatMap { frames(for: $0, snapshot: snapshot).first }
    }
}
