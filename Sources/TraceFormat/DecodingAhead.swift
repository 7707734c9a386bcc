// Reading a trace on two cores: a decoder thread loads, decompresses and decodes the chunks
// into batches of fixed-size events while the calling thread delivers the batch before to the
// visitor. Chunks decode on their own (the decoder state starts afresh in each), so the only
// state that crosses from one chunk to the next is the count of stacks defined, which the
// decoder keeps itself. What the reader holds (its stack table, its module snapshots, how the
// pass ended) is changed on the calling thread only, in file order, as the batches arrive: a
// visitor sees exactly what `visitRecords` shows it, in the same order.

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Counting on the decoder thread

/// Counts that follow from the allocation events alone, in file order, and from nothing a
/// replay holds (calls and bytes per stack, temporary allocations): a reader that decodes
/// ahead keeps them on its decoder thread, which leaves the delivering thread less to do per
/// event. Called with every batch of records, in order, on one thread at a time: one call a
/// batch, so that the counting loop is the counter's own, with its counting inlined (called
/// through the protocol for each event, it took 44 instructions a record on CPython's trace
/// instead of 38).
public protocol AllocationEventCounter: AnyObject {
    func count(_ events: AllocationEvents)
}

/// The allocation events and FOLD records of one batch, for an `AllocationEventCounter`.
public struct AllocationEvents {
    @usableFromInline let batch: DecodedBatch

    @usableFromInline
    init(_ batch: DecodedBatch) { self.batch = batch }

    /// Calls the closure of each ALLOC, FREE, REALLOC_RELEASE (`released`), REALLOC and FOLD
    /// record, in file order, with the thread of each event.
    @inlinable @inline(__always)
    public func forEach(allocated: (_ stack: UInt32, _ size: UInt64, _ address: UInt64, _ tid: UInt64) -> Void,
                        released: (_ address: UInt64, _ tid: UInt64) -> Void,
                        reallocated: (_ status: ReallocStatus, _ new: UInt64, _ size: UInt64, _ stack: UInt32,
                                      _ tid: UInt64) -> Void,
                        folded: (FoldSummary) -> Void) {
        let events = batch.events
        var tid = batch.startContext.tid
        for index in 0..<batch.count {
            let event = events[index]
            switch event.kind {
            case .alloc: allocated(event.stack, event.size, event.value, tid)
            case .free, .reallocRelease: released(event.value, tid)
            case .realloc, .reallocarray: reallocated(event.status, event.value, event.size, event.stack, tid)
            case .thread: tid = event.value
            case .other:
                if case let .fold(summary) = batch.others[Int(truncatingIfNeeded: event.value)] { folded(summary) }
            case .stack, .time: break
            }
        }
    }
}

// MARK: - Decoded events

/// One record of a batch in 32 bytes: the four allocation records with their fields, STACK,
/// TIME and THREAD with their value, and a place for every other record (kept in the batch's
/// `others`).
@usableFromInline
struct DecodedEvent {
    @usableFromInline
    enum Kind: UInt8 { case alloc, free, reallocRelease, realloc, reallocarray, stack, time, thread, other }

    /// ALLOC, FREE, REALLOC_RELEASE: the address; REALLOC: the new address; STACK: the ip;
    /// TIME: the microseconds; THREAD: the thread id; other: the index in `others`.
    @usableFromInline var value: UInt64
    @usableFromInline var size: UInt64
    /// REALLOC: the old address.
    @usableFromInline var old: UInt64
    /// ALLOC, REALLOC: the stack id; STACK: the parent.
    @usableFromInline var stack: UInt32
    @usableFromInline var kind: Kind
    @usableFromInline var function: AllocFunction
    @usableFromInline var path: AllocPath
    @usableFromInline var status: ReallocStatus

    @inlinable
    init(kind: Kind, value: UInt64, size: UInt64 = 0, old: UInt64 = 0, stack: UInt32 = 0,
         function: AllocFunction = .malloc, path: AllocPath = .unknown, status: ReallocStatus = .failed) {
        self.kind = kind; self.value = value; self.size = size; self.old = old; self.stack = stack
        self.function = function; self.path = path; self.status = status
    }
}

/// Up to `capacity` records of one chunk, in file order, and, with its last batch, how the
/// chunk ended.
@usableFromInline
final class DecodedBatch {
    @usableFromInline let events: UnsafeMutablePointer<DecodedEvent>
    @usableFromInline let capacity: Int
    @usableFromInline var count = 0
    /// The records without an event layout of their own, in order.
    @usableFromInline var others: [TraceRecord] = []
    /// The chunk the records come from (its records buffer belongs to the decoder by now: only
    /// the offsets and the damage are read on the delivering side).
    @usableFromInline var chunk: LoadedChunk?
    /// True for the first batch of a chunk.
    @usableFromInline var startsChunk = false
    /// The thread and time in force at the batch's first record.
    @usableFromInline var startContext = RecordContext(tid: 0, time: 0, chunkOffset: 0)
    /// With the chunk's last batch: how decoding it ended, and the EXEC that was its last record.
    @usableFromInline var outcome: ChunkOutcome?
    @usableFromInline var trailingExec: String?
    /// Set instead of everything above when there is no chunk left to read.
    @usableFromInline var finished: TraceEndState?

    init(capacity: Int) {
        self.capacity = capacity
        events = .allocate(capacity: capacity)
    }

    deinit { events.deallocate() }

    func reset() {
        count = 0
        others.removeAll(keepingCapacity: true)
        chunk = nil
        startsChunk = false
        outcome = nil
        trailingExec = nil
        finished = nil
    }
}

/// Writes the records the loop decodes into a batch, and pauses the loop when it is full.
struct BatchingVisitor: TraceVisitor {
    let batch: DecodedBatch
    private let events: UnsafeMutablePointer<DecodedEvent>
    private let capacity: Int
    private var count = 0

    init(_ batch: DecodedBatch) {
        self.batch = batch
        events = batch.events
        capacity = batch.capacity
    }

    /// The batch's count, once decoding stops.
    func finish() { batch.count = count }

    var wantsPause: Bool {
        @inline(__always) get { count == capacity }
    }

    @inline(__always)
    private mutating func append(_ event: DecodedEvent) {
        events[count] = event
        count &+= 1
    }

    @inline(__always)
    mutating func visitAlloc(function: AllocFunction, path: AllocPath, address: UInt64, size: UInt64,
                             stack: UInt32, context: RecordContext) {
        append(DecodedEvent(kind: .alloc, value: address, size: size, stack: stack, function: function, path: path))
    }

    @inline(__always)
    mutating func visitFree(address: UInt64, context: RecordContext) {
        append(DecodedEvent(kind: .free, value: address))
    }

    @inline(__always)
    mutating func visitReallocRelease(address: UInt64, context: RecordContext) {
        append(DecodedEvent(kind: .reallocRelease, value: address))
    }

    @inline(__always)
    mutating func visitRealloc(status: ReallocStatus, path: AllocPath, isReallocarray: Bool, old: UInt64,
                               new: UInt64, size: UInt64, stack: UInt32, context: RecordContext) {
        append(DecodedEvent(kind: isReallocarray ? .reallocarray : .realloc, value: new, size: size, old: old,
                            stack: stack, path: path, status: status))
    }

    @inline(__always)
    mutating func visitStack(id: UInt32, parent: UInt32, ip: UInt64, context: RecordContext) {
        append(DecodedEvent(kind: .stack, value: ip, stack: parent))
    }

    mutating func visitRecord(_ record: TraceRecord, context: RecordContext) {
        switch record {
        case let .time(microseconds):
            append(DecodedEvent(kind: .time, value: microseconds))
        case let .thread(tid):
            append(DecodedEvent(kind: .thread, value: tid))
        default:
            append(DecodedEvent(kind: .other, value: UInt64(batch.others.count)))
            batch.others.append(record)
        }
    }
}

// MARK: - The decoder thread

/// Batches decoded by a thread of their own, handed over in file order through a ring of
/// `DecodingAhead.ringSize` batches; or decoded on the calling thread as they are asked for:
/// until the records still to come look worth a thread (`DecodingAhead.recordsWorthAThread`),
/// when the thread is not wanted, or when it cannot be started.
@usableFromInline
final class BatchDecoder {
    private let reader: TraceReader
    private let stopAtOffset: UInt64?
    private let counter: AllocationEventCounter?
    /// The batches: one while the calling thread decodes in turn, `DecodingAhead.ringSize`
    /// once the thread runs.
    private var ring: [DecodedBatch]
    private let batchCapacity: Int
    /// Batches the decoder may fill, and batches filled and not yet taken.
    private let free = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    private let filled = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    private var thread: pthread_t?
    /// True once the thread fills the batches: set before it starts (so that it sees it), and
    /// read by both sides.
    private var decodesOnThread = false
    /// Where the next batch is filled, and taken (ring positions, counted up by the thread).
    private var nextFilled = 0
    private var nextTaken = 0
    /// The decoder's own state between batches (decoder side only).
    private var decoding: RecordDecoderState?
    private var currentChunk: LoadedChunk?
    private var definedStacks: UInt64 = 0
    private var done = false
    /// Where the batches are to be decoded.
    private let mode: DecodingThread
    /// True once a thread was started, or could not be (it is tried once).
    private var threadTried = false
    /// Records decoded on the calling thread so far, before a thread was started.
    private var recordsDecodedInTurn = 0

    @usableFromInline
    init(reader: TraceReader, stopAtOffset: UInt64?, counter: AllocationEventCounter?, batchCapacity: Int,
         thread: DecodingThread) {
        self.reader = reader
        self.stopAtOffset = stopAtOffset
        self.counter = counter
        self.batchCapacity = batchCapacity
        // Decoding in turn needs no big batch (nothing is handed over): a small one keeps a small
        // trace's pages few.
        ring = [DecodedBatch(capacity: min(batchCapacity, DecodingAhead.batchCapacityInTurn))]
        sem_init(free, 0, UInt32(DecodingAhead.ringSize))
        sem_init(filled, 0, 0)
        mode = thread
    }

    deinit {
        sem_destroy(free)
        sem_destroy(filled)
        free.deallocate()
        filled.deallocate()
    }

    /// Whether the records after those decoded so far look like `recordsWorthAThread` or more:
    /// the records per byte of the chunks decoded, times the bytes of the file still to read.
    private func worthAThread() -> Bool {
        let start = reader.firstChunkOffset
        let reached = reader.chunkReader.offset
        guard recordsDecodedInTurn > 0, reached > start, reader.fileSize > reached else { return false }
        let estimate = Double(recordsDecodedInTurn) * Double(reader.fileSize - reached) / Double(reached - start)
        return estimate >= Double(DecodingAhead.recordsWorthAThread)
    }

    /// Starts the decoder thread: from here on it fills the batches (every batch the calling
    /// thread filled has been recycled, so the whole ring is free).
    private func start() {
        threadTried = true
        while ring.count < DecodingAhead.ringSize { ring.append(DecodedBatch(capacity: batchCapacity)) }
        decodesOnThread = true
        let context = Unmanaged.passRetained(self).toOpaque()
        var handle = pthread_t()
        let started = pthread_create(&handle, nil, { context in
            let decoder = Unmanaged<BatchDecoder>.fromOpaque(context!).takeRetainedValue()
            decoder.decodeAll()
            return nil
        }, context)
        if started == 0 {
            thread = handle
        } else {
            decodesOnThread = false
            Unmanaged<BatchDecoder>.fromOpaque(context).release()
        }
    }

    /// The decoder thread: fills batches until the last one.
    private func decodeAll() {
        while !done {
            while sem_wait(free) != 0 {}
            fillNext()
            sem_post(filled)
        }
    }

    /// Fills the batch at the next ring position with the next records (decoder side).
    private func fillNext() {
        let batch = ring[nextFilled % ring.count]
        if decodesOnThread { nextFilled &+= 1 }
        batch.reset()
        if decoding == nil {
            switch reader.chunkReader.next(stopAtOffset: stopAtOffset) {
            case .finished(let state):
                batch.finished = state
                done = true
                return
            case .chunk(let chunk):
                currentChunk = chunk
                decoding = RecordDecoderState(chunk: chunk, definedStacks: definedStacks, version: reader.header.version)
                batch.startsChunk = true
            }
        }
        batch.chunk = currentChunk
        batch.startContext = decoding!.context
        var visitor = BatchingVisitor(batch)
        let outcome = TraceReader.decodeRecords(&decoding!, tables: NoRecordTables(), into: &visitor)
        visitor.finish()
        counter?.count(AllocationEvents(batch))
        guard let outcome else { return }
        batch.outcome = outcome
        batch.trailingExec = decoding!.trailingExec
        definedStacks = decoding!.definedStacks
        decoding = nil
        if reader.endOfChunk(currentChunk!, outcome) != nil { done = true }
    }

    /// The next batch in file order (calling side); hand it back with `recycle` once delivered.
    @usableFromInline
    func next() -> DecodedBatch {
        if mode != .never && !threadTried && !done && (mode == .always || worthAThread()) { start() }
        guard decodesOnThread else {
            fillNext()
            recordsDecodedInTurn &+= ring[0].count
            return ring[0]
        }
        while sem_wait(filled) != 0 {}
        let batch = ring[nextTaken % ring.count]
        nextTaken &+= 1
        return batch
    }

    @usableFromInline
    func recycle(_ batch: DecodedBatch) {
        if decodesOnThread { sem_post(free) }
    }

    /// Waits for the decoder thread, which has stopped after the last batch it handed over.
    @usableFromInline
    func join() {
        guard let thread else { return }
        pthread_join(thread, nil)
        self.thread = nil
    }
}

/// Where a reader that decodes ahead decodes.
public enum DecodingThread: Sendable {
    /// On the calling thread, in turn with the delivery.
    case never
    /// On a thread of its own once the records still to come look worth it
    /// (`DecodingAhead.recordsWorthAThread`).
    case whenWorthIt
    /// On a thread of its own from the first record (for the tests).
    case always

    /// `whenWorthIt` on a machine with a second core (`DecodingAhead.hasSecondCore`), else `never`.
    public static var byDefault: DecodingThread { DecodingAhead.hasSecondCore ? .whenWorthIt : .never }
}

/// How decoding ahead is sized.
public enum DecodingAhead {
    /// Batches in flight: one being filled, one being delivered, one ready.
    static let ringSize = 3
    /// Events per batch (32 bytes each): big enough that handing a batch over (a futex wake
    /// when the other side waits) is rare next to the batch's work, small enough that a
    /// batch is still in the cache when it is delivered.
    public static let batchCapacity = 16 << 10
    /// Events per batch while the calling thread decodes in turn.
    static let batchCapacityInTurn = 2 << 10
    /// Decoding moves to a thread of its own when the records still to come look like this
    /// many or more. Below it, starting the thread and waiting for batches (a wake-up each)
    /// cost more than decoding in turn saves: a 74,000-record trace of cc1 was reported 2 ms
    /// slower (30 ms instead of 28), a 242,000-record one no faster, a million-record trace of
    /// perl 14% faster.
    static let recordsWorthAThread = 256 << 10
    /// True when the machine has a second core to decode on (counted online, not as the
    /// process's affinity allows: a process held to one core pays a thread switch a batch)
    /// and `LEAKTRACE_DECODE_THREAD` is not `0`.
    public static var hasSecondCore: Bool {
        if let setting = getenv("LEAKTRACE_DECODE_THREAD"), setting.pointee == UInt8(ascii: "0") { return false }
        return sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1
    }
}

extension TraceReader {
    /// Streams every record in file order to `visitor`, as `visitRecords` does, with the
    /// decoding done by a thread of its own a few batches ahead of the delivery (on the calling
    /// thread until the trace looks worth a thread, as `thread` says, or when no thread can be
    /// started). The visitor is told the address of each allocation event `lookahead` records
    /// before it gets the event (`TraceVisitor.willVisit`). The visitor cannot stop the pass.
    /// `counter` is given every batch's allocation events and FOLD records on the decoding
    /// thread, before the visitor gets them.
    @inlinable
    public func visitRecordsDecodingAhead<V: TraceVisitor>(_ visitor: inout V, stopAtOffset: UInt64? = nil,
                                                           progress: ((UInt64) -> Void)? = nil,
                                                           counter: AllocationEventCounter? = nil,
                                                           thread: DecodingThread = .byDefault,
                                                           batchCapacity: Int = DecodingAhead.batchCapacity,
                                                           lookahead: Int = 16)
        where V.Failure == Never {
        beginPass()
        let decoder = BatchDecoder(reader: self, stopAtOffset: stopAtOffset, counter: counter,
                                   batchCapacity: max(1, batchCapacity), thread: thread)
        defer { decoder.join() }
        while true {
            let batch = decoder.next()
            defer { decoder.recycle(batch) }
            if let state = batch.finished {
                finishPass(state)
                return
            }
            if batch.startsChunk { noteChunkDelivered() }
            deliver(batch, to: &visitor, lookahead: lookahead)
            guard let outcome = batch.outcome, let chunk = batch.chunk else { continue }
            if finishChunk(chunk, outcome, trailingExec: batch.trailingExec, progress: progress) { return }
        }
    }

    /// Hands a batch's records to `visitor`, adding its stacks and module snapshots to this
    /// reader's tables on the way.
    @inlinable
    func deliver<V: TraceVisitor>(_ batch: DecodedBatch, to visitor: inout V, lookahead: Int) where V.Failure == Never {
        let events = batch.events
        let count = batch.count
        var context = batch.startContext
        var definedStacks = UInt32(truncatingIfNeeded: stacks.count)
        for index in 0..<count {
            if index &+ lookahead < count {
                let ahead = events + (index &+ lookahead)
                if ahead.pointee.kind.rawValue <= DecodedEvent.Kind.reallocarray.rawValue {
                    visitor.willVisit(address: ahead.pointee.value)
                }
            }
            let event = events[index]
            switch event.kind {
            case .alloc:
                visitor.visitAlloc(function: event.function, path: event.path, address: event.value, size: event.size,
                                   stack: event.stack, context: context)
            case .free:
                visitor.visitFree(address: event.value, context: context)
            case .reallocRelease:
                visitor.visitReallocRelease(address: event.value, context: context)
            case .realloc, .reallocarray:
                visitor.visitRealloc(status: event.status, path: event.path, isReallocarray: event.kind == .reallocarray,
                                     old: event.old, new: event.value, size: event.size, stack: event.stack,
                                     context: context)
            case .stack:
                definedStacks &+= 1
                defineStack(id: definedStacks, parent: event.stack, ip: event.value)
                visitor.visitStack(id: definedStacks, parent: event.stack, ip: event.value, context: context)
            case .time:
                context.time = event.value
                visitor.visitRecord(.time(microseconds: event.value), context: context)
            case .thread:
                context.tid = event.value
                visitor.visitRecord(.thread(tid: event.value), context: context)
            case .other:
                let record = batch.others[Int(truncatingIfNeeded: event.value)]
                visitor.willDecodeSizedRecord()
                if case .modules(_, let modules) = record { addModules(modules) }
                visitor.visitRecord(record, context: context)
            }
        }
    }
}
