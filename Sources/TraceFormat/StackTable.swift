// The stack trie that STACK records define, kept as two parallel arrays indexed by node id.
// A trace can hold millions of distinct nodes, so each costs 12 bytes and no object.

/// The stack trie built from a trace's STACK records. Node ids count from 1 across the whole
/// trace; id 0 is the root ("no stack"). Each node is a return address and its parent node.
public final class StackTable {
    // Slot 0 stands for the root so that a node id indexes the arrays directly.
    @usableFromInline var parents: [UInt32] = [0]
    @usableFromInline var ips: [UInt64] = [0]

    /// The most nodes a table holds: ids must fit in a UInt32.
    public static let maximumCount = Int(UInt32.max) - 1

    public init() {}

    /// Number of nodes defined so far (ids 1...count).
    public var count: Int { parents.count - 1 }

    /// True for an id of a node defined so far (0, the root, is not a node).
    public func isDefined(_ id: UInt32) -> Bool {
        id != 0 && Int(id) < parents.count
    }

    /// The return address of node `id`; 0 for the root or an id not defined.
    public func ip(_ id: UInt32) -> UInt64 {
        isDefined(id) ? ips[Int(id)] : 0
    }

    /// The parent of node `id`; 0 for a node whose parent is the root, for the root itself, or for
    /// an id not defined.
    public func parent(_ id: UInt32) -> UInt32 {
        isDefined(id) ? parents[Int(id)] : 0
    }

    /// The stack named by node `id`, innermost frame first (frames[0] is the caller of the
    /// allocation function), at most `limit` frames. Empty for id 0 or an id not defined.
    public func frames(_ id: UInt32, limit: Int = .max) -> [UInt64] {
        // Counted first, so the array is allocated once: appending to an empty one reallocated
        // it at 1, 2, 4, ... frames (a tenth of a report of deep stacks).
        let count = min(limit, depth(id))
        guard count > 0 else { return [] }
        return ips.withUnsafeBufferPointer { ips in
            parents.withUnsafeBufferPointer { parents in
                [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
                    var node = Int(id)
                    for index in 0..<count {
                        buffer[index] = ips[node]
                        node = Int(parents[node])
                    }
                    initialized = count
                }
            }
        }
    }

    /// Number of frames in the stack named by `id` (0 for the root or an id not defined).
    public func depth(_ id: UInt32) -> Int {
        var depth = 0
        var node = id
        while isDefined(node) {
            depth += 1
            node = parents[Int(node)]
        }
        return depth
    }

    /// Adds the next node and returns its id. The caller has checked that `parent` is defined
    /// (or 0) and that the table is not full.
    @usableFromInline
    func append(parent: UInt32, ip: UInt64) -> UInt32 {
        parents.append(parent)
        ips.append(ip)
        return UInt32(truncatingIfNeeded: parents.count - 1)
    }

    /// Forgets every node, for a new pass over the trace.
    func removeAll() {
        parents.removeAll(keepingCapacity: true)
        ips.removeAll(keepingCapacity: true)
        parents.append(0)
        ips.append(0)
    }
}
