import LeakAnalysis
import LiveSet
import TraceFormat

/// Writes glibc's mtrace text (`= Start`, `@ caller + 0xADDR 0xSIZE`, `@ caller - 0xADDR`,
/// `= End`) while a trace is replayed, so that glibc's `mtrace` script finds exactly the blocks
/// the report finds unfreed.
///
/// The caller is the stack's innermost frame (the caller of the allocation function, as glibc
/// records it) in the form `module:[0xoffset]`, which the script hands to addr2line.
/// A block replaced by a duplicate allocation is written as freed first, and a failed realloc
/// as a release followed by a new allocation, so the script's bookkeeping follows replay's.
public final class MtraceExport {
    private let output: BufferedOutput
    private let stacks: StackLookup
    private let moduleOfAddress: (UInt64) -> Module?
    private var callers: [StackRef: String] = [:]
    private let replayer: Replayer

    /// - Parameters:
    ///   - moduleOfAddress: the module containing an address now (the reader's current snapshot).
    public init(output: BufferedOutput, replayer: Replayer, stacks: StackLookup,
                moduleOfAddress: @escaping (UInt64) -> Module?) {
        self.output = output
        self.replayer = replayer
        self.stacks = stacks
        self.moduleOfAddress = moduleOfAddress
    }

    /// Writes the start line and the blocks already live (inherited from a parent process).
    public func begin() {
        output.write("= Start\n")
        replayer.live.forEach { block in allocated(block) }
    }

    /// Handles one replay step.
    public func handle(_ event: ReplayEvent) {
        switch event {
        case let .allocated(block, replaced):
            if let replaced { released(replaced) }
            allocated(block)
        case let .released(block):
            released(block)
        case let .unknownRelease(release):
            output.write("@ [0x0] - \(hexAddress(release.address))\n")
        }
    }

    public func finish() {
        output.write("= End\n")
        output.flush()
    }

    private func allocated(_ block: LiveBlock) {
        output.write("@ \(caller(of: block.stackRef)) + \(hexAddress(block.address)) \(hexAddress(block.size))\n")
    }

    private func released(_ block: LiveBlock) {
        output.write("@ \(caller(of: block.stackRef)) - \(hexAddress(block.address))\n")
    }

    private func caller(of reference: StackRef) -> String {
        if let known = callers[reference] { return known }
        let text: String
        if let address = replayer.frames(of: reference, in: stacks, limit: 1).first {
            if let module = moduleOfAddress(address), !module.path.contains(where: { $0 == " " || $0 == ":" }) {
                text = "\(module.path):[\(hexAddress(address &- module.bias))]"
            } else {
                text = "[\(hexAddress(address))]"
            }
        } else {
            text = "[0x0]"
        }
        callers[reference] = text
        return text
    }
}
