import LiveSet

/// Numbers the stacks met, 0, 1, 2, ... in the order first met, so that what is kept per stack
/// lives in arrays. Own stack ids are dense (an array finds their number); stacks inherited
/// from a parent process are few (a dictionary does).
struct StackNumbering {
    /// The stacks numbered, by number.
    private(set) var references: [StackRef] = []
    /// Own stack id -> number + 1 (0: not met yet).
    private var ownNumber: [Int32] = []
    private var inheritedNumber: [UInt32: Int] = [:]

    var count: Int { references.count }

    /// The number of `reference`, nil when it was not met.
    func number(of reference: StackRef) -> Int? {
        if reference.isInherited { return inheritedNumber[reference.id] }
        let id = Int(reference.id)
        guard id < ownNumber.count, ownNumber[id] > 0 else { return nil }
        return Int(ownNumber[id]) - 1
    }

    /// The number of `reference`, numbering it (the next number, `count`) when it is new.
    mutating func number(adding reference: StackRef) -> Int {
        if reference.isInherited {
            if let known = inheritedNumber[reference.id] { return known }
            inheritedNumber[reference.id] = references.count
        } else {
            let id = Int(reference.id)
            if id < ownNumber.count, ownNumber[id] > 0 { return Int(ownNumber[id]) - 1 }
            if id >= ownNumber.count {
                ownNumber.append(contentsOf: repeatElement(0, count: max(id + 1, ownNumber.count * 2) - ownNumber.count))
            }
            ownNumber[id] = Int32(truncatingIfNeeded: references.count + 1)
        }
        references.append(reference)
        return references.count - 1
    }
}
