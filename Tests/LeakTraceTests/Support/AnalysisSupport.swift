import Symbolization
import TraceFormat
@testable import LeakAnalysis

/// A symbolizer answering from a table: address -> frames (inline chain).
final class TableSymbolizer: FrameSymbolizer {
    var table: [UInt64: [SymbolizedFrame]] = [:]
    private(set) var requests: [UInt64] = []
    func resolve(address: UInt64, module: Module?) -> [SymbolizedFrame] {
        requests.append(address)
        return table[address] ?? [SymbolizedFrame(address: address, module: module?.path,
                                                moduleOffset: module.map { address - $0.bias })]
    }
    var symbolizationWarnings: [String] { [] }
    func finish() {}

    func define(_ address: UInt64, _ function: String, file: String? = nil, line: Int? = nil,
                module: String = "/app") {
        table[address] = [SymbolizedFrame(address: address, module: module, moduleOffset: address - 0x1000,
                                        function: function, file: file, line: line)]
    }
}

/// One module for every address.
struct SingleModule: ModuleLookup {
    let module = Module(path: "/app", bias: 0x1000, buildID: [], segments: [ModuleSegment(start: 0x1000, size: 0x100000, flags: 5)])
    func module(containing address: UInt64, snapshot index: Int) -> Module? {
        module.segments[0].contains(address) ? module : nil
    }
}
