import Symbolization
import TraceFormat

/// How the process ended when a signal ended it (the END record's signal fields), for the
/// report: `died of SIGSEGV at parse_header (src/parse.c:88)`.
public struct ProcessDeath: Equatable, Sendable, Encodable {
    /// The signal's number and name (`SIGSEGV`).
    public var signal: UInt64
    public var name: String
    /// `si_code` as the kernel delivered it, and what it says about the sender (`EndSignal.origin`).
    public var code: Int64
    public var origin: String
    /// The faulting address, for a fault.
    @OptionalHexAddress public var faultAddress: UInt64?
    /// The thread that took the signal.
    public var thread: UInt64
    /// Its stack at the signal, innermost first (inline-expanded), when the report is
    /// symbolized; frame 0 is the interrupted instruction.
    public var stack: [SymbolizedFrame] = []
    /// The first frame of `stack` outside libc, the dynamic loader and the tracer: where the
    /// program was (for abort(), the caller of abort).
    public var at: SymbolizedFrame?
    /// The stack id in the trace (not in JSON: `stack` gives the frames).
    public var stackID: UInt32

    enum CodingKeys: String, CodingKey { case signal, name, code, origin, faultAddress, thread, stack, at }

    public init(_ end: EndSignal) {
        signal = end.number
        name = end.name
        code = end.code
        origin = end.origin
        faultAddress = end.isFault ? end.faultAddress : nil
        thread = end.tid
        stackID = end.stack
    }

    /// Fills `stack` and `at`. Frame 0 is an instruction, not a return address: it is looked up
    /// one byte on, since the symbolizer looks up the byte before each address.
    mutating func symbolize(addresses: [UInt64], frames: (UInt64) -> [SymbolizedFrame]) {
        stack = addresses.enumerated().flatMap { index, address -> [SymbolizedFrame] in
            guard index == 0 else { return frames(address) }
            return frames(address &+ 1).map { frame in
                var frame = frame
                frame.address = address
                frame.moduleOffset = frame.moduleOffset.map { $0 &- 1 }
                return frame
            }
        }
        at = stack.first { !Self.isRuntimeFrame($0) } ?? stack.first
    }

    /// Frames of libc, the dynamic loader and the tracer itself (raise, abort, __assert_fail,
    /// the tracer's handler): not where the program was.
    static func isRuntimeFrame(_ frame: SymbolizedFrame) -> Bool {
        guard let module = frame.module else { return false }
        let name = SymbolizedFrame.basename(module)
        return name.hasPrefix("libc.so") || name.hasPrefix("ld-linux") || name.hasPrefix("libleaktrace")
            || name.hasPrefix("libpthread.so")
    }

    /// `SIGSEGV at parse_header (src/parse.c:88), address 0x0, thread 1234`.
    public var summary: String {
        var text = name
        if let at { text += " at \(at.displayName)" }
        if let faultAddress { text += ", address \(hexAddress(faultAddress))" }
        return text + " (\(origin), thread \(thread))"
    }
}

extension AnalysisRun {
    /// `facts` with the stack of the signal that ended the process symbolized (with the module
    /// snapshot in force at the last event).
    func symbolizingDeath(_ facts: TraceFacts) -> TraceFacts {
        guard var death = facts.outcome.diedOf else { return facts }
        let snapshot = snapshot(at: replay.lastTime)
        death.symbolize(addresses: stacks.frames(death.stackID, limit: .max)) { cache.frames(for: $0, snapshot: snapshot) }
        var facts = facts
        facts.outcome.diedOf = death
        return facts
    }
}
