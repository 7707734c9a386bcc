// The fast way to read a trace: a visitor whose methods the record loop calls directly.
// `TraceReader.visitRecords` is @inlinable and generic, so the compiler specialises the whole
// decoding loop for each visitor type: ALLOC and FREE arrive as plain arguments, with no enum,
// no closure context and no existential box per record.

/// Receives the records of a trace from `TraceReader.visitRecords(_:stopAtOffset:progress:)`.
///
/// Implement the methods for the frequent records you care about; every record without a method
/// of its own (and every record whose method you do not implement) reaches `visitRecord`.
public protocol TraceVisitor {
    /// The error the visitor may throw to stop reading (`Never` if it cannot).
    associatedtype Failure: Error = Never

    /// An ALLOC record.
    mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                             stack: UInt32, context: RecordContext) throws(Failure)
    /// A FREE record.
    mutating func visitFree(address: UInt64, context: RecordContext) throws(Failure)
    /// A REALLOC_RELEASE record.
    mutating func visitReallocRelease(address: UInt64, context: RecordContext) throws(Failure)
    /// A REALLOC record.
    mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                               new: UInt64, size: UInt64, stack: UInt32, context: RecordContext) throws(Failure)
    /// A STACK record (the reader has added the node to its stack table already).
    mutating func visitStack(id: UInt32, parent: UInt32, ip: UInt64, context: RecordContext) throws(Failure)
    /// Every other record (TIME, THREAD, the sized records, END; STACK through `visitStack`'s
    /// default), in file order.
    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) throws(Failure)
    /// Called before a sized record is decoded: decoding a MODULES record adds its snapshot to
    /// `TraceReader.moduleMaps` before `visitRecord` sees it, so a visitor that holds records
    /// back must deal with them here, while the snapshot in force is still theirs.
    mutating func willDecodeSizedRecord()
    /// True when decoding should stop before the next record (a batch that is full); the reader
    /// goes on from there later. Checked before every record: a plain visitor leaves it false,
    /// and the check compiles away.
    var wantsPause: Bool { get }
    /// Called when the reader decodes ahead (`TraceReader.visitRecordsDecodingAhead`) with the
    /// address of the allocation event it delivers some events from now, so that the visitor
    /// can start loading what that event will touch.
    func willVisit(address: UInt64)
}

extension TraceVisitor {
    @inlinable
    public mutating func willDecodeSizedRecord() {}

    @inlinable
    public var wantsPause: Bool { false }

    @inlinable
    public func willVisit(address: UInt64) {}

    @inlinable
    public mutating func visitStack(id: UInt32, parent: UInt32, ip: UInt64, context: RecordContext) throws(Failure) {
        try visitRecord(.stack(id: id, parent: parent, ip: ip), context: context)
    }

    @inlinable
    public mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                                    stack: UInt32, context: RecordContext) throws(Failure) {
        try visitRecord(.alloc(function: function, path: path, address: address, size: size, stack: stack),
                        context: context)
    }

    @inlinable
    public mutating func visitFree(address: UInt64, context: RecordContext) throws(Failure) {
        try visitRecord(.free(address: address), context: context)
    }

    @inlinable
    public mutating func visitReallocRelease(address: UInt64, context: RecordContext) throws(Failure) {
        try visitRecord(.reallocRelease(address: address), context: context)
    }

    @inlinable
    public mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                                      new: UInt64, size: UInt64, stack: UInt32,
                                      context: RecordContext) throws(Failure) {
        try visitRecord(.realloc(status: status, path: path, isReallocarray: isReallocarray, old: old, new: new,
                                 size: size, stack: stack),
                        context: context)
    }
}

/// Adapts a closure to the visitor protocol (what `forEachRecord` uses).
@usableFromInline
struct ClosureVisitor<Failure: Error>: TraceVisitor {
    @usableFromInline let body: (TraceRecord, RecordContext) throws(Failure) -> Void

    @inlinable
    init(_ body: @escaping (TraceRecord, RecordContext) throws(Failure) -> Void) { self.body = body }

    @inlinable
    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) throws(Failure) {
        try body(record, context)
    }
}
