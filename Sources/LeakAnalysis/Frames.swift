import Symbolization
import TraceFormat

/// Resolves a captured address to its (inline-expanded) frames. The symbolization stage
/// provides the real one; tests provide tables.
public protocol FrameSymbolizer: AnyObject {
    /// Frames for `address` in `module`, innermost (most inlined) first, physical function
    /// last; never empty.
    func resolve(address: UInt64, module: Module?) -> [SymbolizedFrame]
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
    public func resolve(address: UInt64, module: Module?) -> [SymbolizedFrame] {
        [SymbolizedFrame(address: address, module: module?.path,
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
    private var cache: [Key: [SymbolizedFrame]] = [:]
    private(set) var distinctAddresses = 0

    init(symbolizer: FrameSymbolizer, modules: ModuleLookup) {
        self.symbolizer = symbolizer
        self.modules = modules
    }

    /// Inline-expanded frames for one captured address.
    func frames(for address: UInt64, snapshot: Int) -> [SymbolizedFrame] {
        let module = modules.module(containing: address, snapshot: snapshot)
        let key = Key(address: address, modulePath: module?.path, bias: module?.bias ?? 0)
        if let known = cache[key] { return known }
        var resolved = symbolizer.resolve(address: address, module: module)
        if resolved.isEmpty {
            resolved = [SymbolizedFrame(address: address, module: module?.path,
                                      moduleOffset: module.map { address &- $0.bias })]
        }
        cache[key] = resolved
        distinctAddresses += 1
        return resolved
    }

    /// Inline-expanded frames for a whole stack (innermost first).
    func frames(forStack addresses: [UInt64], snapshot: Int) -> [SymbolizedFrame] {
        addresses.flatMap { frames(for: $0, snapshot: snapshot) }
    }

    /// The call site of a stack: its first frame that `filter` does not take for the allocator
    /// or a wrapper, resolving frames only as far as needed (the innermost frame when every
    /// frame looks like the allocator; nil for an empty stack).
    func callsite(of addresses: [UInt64], snapshot: Int, filter: AllocatorFrameFilter) -> SymbolizedFrame? {
        for address in addresses {
            for frame in frames(for: address, snapshot: snapshot)
            where !filter.isAllocatorFrame(function: frame.function) {
                return frame
            }
        }
        return addresses.first.flatMap { frames(for: $0, snapshot: snapshot).first }
    }
}
