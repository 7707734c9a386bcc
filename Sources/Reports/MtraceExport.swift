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
    private let inheritedStacks: StackTrie
    private var callers: [StackRef: String] = [:]

    /// - Parameters:
    ///   - inheritedStacks: the replayer's table of stacks inherited at fork.
    ///   - moduleOfAddress: the module containing an address now (the reader's current snapshot).
    public init(output: BufferedOutput, stacks: StackLookup, inheritedStacks: StackTrie,
                moduleOfAddress: @escaping (UInt64) -> Module?) {
        self.output = output
        self.stacks = stacks
        self.inheritedStacks = inheritedStacks
        self.moduleOfAddress = moduleOfAddress
    }

    /// Writes the start line and the blocks already live in `replayer` (inherited from a
    /// parent process).
    public func begin(with replayer: Replayer) {
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
        let innermost = reference.isInherited ? inheritedStacks.frames(reference.id, limit: 1)
                                              : stacks.frames(reference.id, limit: 1)
        if let address = innermost.first {
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
