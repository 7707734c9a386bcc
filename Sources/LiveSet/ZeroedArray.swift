#if canImport(Glibc)
import Glibc
#endif

/// Storage for the replay's per-stack counters, which start at zero and grow by doubling: from
/// calloc, whose big blocks are fresh pages that the system zeroes when first touched, so the
/// part not yet reached costs no memory. Initializing it would touch every page (on CPython's
/// trace of 87,000 stacks, 1.7 MiB of the per-stack arrays was never used).
///
/// Only for types whose all-zero bytes are their starting value and that need no
/// deinitialization (plain counters).
enum ZeroedArray {
    static func allocate<Element>(_: Element.Type, capacity: Int) -> UnsafeMutablePointer<Element> {
        guard let memory = calloc(max(capacity, 1), MemoryLayout<Element>.stride) else {
            fatalError("leakreport: out of memory for \(capacity) counters")
        }
        return memory.bindMemory(to: Element.self, capacity: capacity)
    }

    /// The first `count` elements of `old`, which is freed, at the start of `capacity` zeroed ones.
    static func grow<Element>(_ old: UnsafeMutablePointer<Element>, count: Int,
                              to capacity: Int) -> UnsafeMutablePointer<Element> {
        let grown = allocate(Element.self, capacity: capacity)
        grown.update(from: old, count: count)
        free(old)
        return grown
    }

    static func deallocate<Element>(_ pointer: UnsafeMutablePointer<Element>) { free(pointer) }
}
