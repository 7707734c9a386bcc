// Stacks are stored as a trie: each node is one frame plus the id of the node for the rest of
// the stack (its caller side). The reader builds one for the traced process; replay builds a
// second one for stacks inherited from a parent process, whose ids mean nothing in the child.

/// Something that turns a stack id into its frames.
public protocol StackLookup: AnyObject {
    /// Innermost frame first (frames[0] is the caller of the allocation function); at most
    /// `limit` frames; empty for id 0 or an unknown id.
    func frames(_ id: UInt32, limit: Int) -> [UInt64]
    /// The frame of node `id` and the node of the rest of its stack (0 at the outermost
    /// frame); nil for id 0 or an unknown id. Lets a walk that needs the first frames of a
    /// stack stop there, without building the whole stack.
    func node(_ id: UInt32) -> StackNode?
}

/// One node of a stack trie: its frame and the node of its caller side.
public struct StackNode {
    public var ip: UInt64
    public var parent: UInt32

    @inlinable
    public init(ip: UInt64, parent: UInt32) { self.ip = ip; self.parent = parent }
}

/// A stack trie built in memory, with interning by frame content.
///
/// Used for stacks a fork child inherited from its parent (each parent stack is re-interned
/// here by its frames, so equal stacks from parent and child group together), and wherever a
/// stack table is needed without a trace file.
public final class StackTrie: StackLookup {
    private struct Edge: Hashable { var parent: UInt32; var ip: UInt64 }
    private var parents: [UInt32] = [0]   // index 0 is the root
    private var ips: [UInt64] = [0]
    private var children: [Edge: UInt32] = [:]

    public init() {}

    /// Number of nodes (ids 1...count).
    public var count: Int { parents.count - 1 }

    /// Defines the next node, exactly like a STACK record: returns its id (count after the call).
    /// A parent id that is not defined yet is replaced by 0 (root) rather than trusted.
    @discardableResult
    public func append(parent: UInt32, ip: UInt64) -> UInt32 {
        let safeParent = Int(parent) < parents.count ? parent : 0
        parents.append(safeParent)
        ips.append(ip)
        let id = UInt32(truncatingIfNeeded: parents.count - 1)
        children[Edge(parent: safeParent, ip: ip)] = children[Edge(parent: safeParent, ip: ip)] ?? id
        return id
    }

    /// The id of the node whose stack is `frames` (innermost first), defining nodes as needed.
    /// An empty stack is id 0.
    public func intern(frames: [UInt64]) -> UInt32 {
        var node: UInt32 = 0
        for ip in frames.reversed() {
            let edge = Edge(parent: node, ip: ip)
            if let existing = children[edge] {
                node = existing
            } else {
                parents.append(node)
                ips.append(ip)
                node = UInt32(truncatingIfNeeded: parents.count - 1)
                children[edge] = node
            }
        }
        return node
    }

    public func isDefined(_ id: UInt32) -> Bool { id != 0 && Int(id) < parents.count }

    public func ip(_ id: UInt32) -> UInt64 { isDefined(id) ? ips[Int(id)] : 0 }

    public func parent(_ id: UInt32) -> UInt32 { isDefined(id) ? parents[Int(id)] : 0 }

    public func node(_ id: UInt32) -> StackNode? {
        isDefined(id) ? StackNode(ip: ips[Int(id)], parent: parents[Int(id)]) : nil
    }

    public func frames(_ id: UInt32, limit: Int = .max) -> [UInt64] {
        var result: [UInt64] = []
        var node = id
        // Parents always have smaller ids, so the walk ends; the count guard is belt and braces.
        while isDefined(node) && result.count < limit && result.count < parents.count {
            result.append(ips[Int(node)])
            node = parents[Int(node)]
        }
        return result
    }
}
