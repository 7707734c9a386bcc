import Symbolization
import TraceFormat

// The real implementations behind the analysis's protocols.

extension ModuleMapHistory: ModuleLookup {}

/// Resolves frames with libdw through the symbolization stage.
public final class DwarfFrameSymbolizer: FrameSymbolizer {
    public let symbolizer: Symbolizer

    public init(options: SymbolizerOptions = .init()) {
        symbolizer = Symbolizer(options: options)
    }

    public func resolve(address: UInt64, module: Module?) -> [SymbolizedFrame] {
        // Every captured frame is a return address (frames[0] is the return into the caller of
        // the allocation function), so the call instruction before it is the one to look up.
        symbolizer.symbolize(address: address, module: module, isReturnAddress: true)
    }

    public var symbolizationWarnings: [String] { symbolizer.warnings }

    public func finish() { symbolizer.storeAnswers() }
}
