import CLiveTable
#if canImport(Glibc)
import Glibc
#endif

/// Storage for the replay's per-stack counters, which start at zero and grow by doubling: an
/// anonymous mapping of its own, whose pages the system zeroes when first touched, so the part
/// not yet reached costs no memory (on CPython's trace of 87,000 stacks, 1.7 MiB of the
/// per-stack arrays was never used); growing moves the pages (mremap) instead of copying them,
/// and freeing gives them back to the system at once. From malloc, an array grown on the
/// reader's decoding thread left its old copies in that thread's arena (3 MiB more at the
/// peak of CPython's trace).
///
/// Only for types whose all-zero bytes are their starting value and that need no
/// deinitialization (plain counters).
enum ZeroedArray {
    static func allocate<Element>(_: Element.Type, capacity: Int) -> UnsafeMutablePointer<Element> {
        let bytes = mappedBytes(Element.self, capacity)
        guard let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              memory != MAP_FAILED else {
            fatalError("leakreport: out of memory for \(capacity) counters")
        }
        return memory.bindMemory(to: Element.self, capacity: capacity)
    }

    /// `old`, of `oldCapacity` elements, grown to `capacity`: the new elements are zero, and
    /// `old` is no longer valid.
    static func grow<Element>(_ old: UnsafeMutablePointer<Element>, from oldCapacity: Int,
                              to capacity: Int) -> UnsafeMutablePointer<Element> {
        guard let moved = lt_mremap_grow(old, mappedBytes(Element.self, oldCapacity),
                                         mappedBytes(Element.self, capacity)) else {
            fatalError("leakreport: out of memory for \(capacity) counters")
        }
        return moved.bindMemory(to: Element.self, capacity: capacity)
    }

    static func deallocate<Element>(_ pointer: UnsafeMutablePointer<Element>, capacity: Int) {
        munmap(pointer, mappedBytes(Element.self, capacity))
    }

    /// The bytes of `capacity` elements, in whole pages.
    private static func mappedBytes<Element>(_: Element.Type, _ capacity: Int) -> Int {
        let page = 4096
        return (max(capacity, 1) * MemoryLayout<Element>.stride + page - 1) / page * page
    }
}
