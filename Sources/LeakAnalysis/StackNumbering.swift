import LiveSet

/// Numbers the stacks met, 0, 1, 2, ... in the order first met, so that what is kept per stack
/// lives in arrays. Own stack ids are dense (paged values find their number); stacks inherited
/// from a parent process are few (a dictionary does).
struct StackNumbering {
    /// The stacks numbered, by number.
    private(set) var references: [StackRef] = []
    /// Own stack id -> number (-1: not met yet).
    private var ownNumber = PagedValues(empty: -1)
    private var inheritedNumber: [UInt32: Int] = [:]

    var count: Int { references.count }

    /// The number of `reference`, nil when it was not met.
    func number(of reference: StackRef) -> Int? {
        if reference.isInherited { return inheritedNumber[reference.id] }
        let number = ownNumber[Int(reference.id)]
        return number >= 0 ? Int(number) : nil
    }

    /// The number of `reference`, numbering it (the next number, `count`) when it is new.
    mutating func number(adding reference: StackRef) -> Int {
        if reference.isInherited {
            if let known = inheritedNumber[reference.id] { return known }
            inheritedNumber[reference.id] = references.count
        } else {
            let known = ownNumber[Int(reference.id)]
            if known >= 0 { return Int(known) }
            ownNumber[Int(reference.id)] = Int32(truncatingIfNeeded: references.count)
        }
        references.append(reference)
        return references.count - 1
    }
}

/// Int32 values by a dense number (a stack id), kept in pages of 1,024 allocated when first
/// written: the numbers met are often few and far apart (the leaked stacks among millions of
/// ids), and an array as long as the highest number cost a page fault per 1,024 of them.
struct PagedValues {
    private var pages: [[Int32]] = []
    /// The value of a number never written.
    let empty: Int32

    init(empty: Int32) { self.empty = empty }

    subscript(number: Int) -> Int32 {
        get {
            let page = number >> 10
            guard page < pages.count, !pages[page].isEmpty else { return empty }
            return pages[page][number & 1023]
        }
        set {
            let page = number >> 10
            if page >= pages.count { pages.append(contentsOf: repeatElement([], count: page + 1 - pages.count)) }
            if pages[page].isEmpty { pages[page] = Array(repeating: empty, count: 1024) }
            pages[page][number & 1023] = newValue
        }
    }
}
