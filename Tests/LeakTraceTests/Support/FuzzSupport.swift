// The reader fuzzer's machinery: the committed corpus of real traces, one execution (open, read
// every record, format every record as `dump` would) with the checks that make a finding, and a
// seeded mutator. Swift's -sanitize=fuzzer needs a separate build (Scripts/fuzz/); this harness
// runs inside `swift test` and replays exactly from its seed.

import Foundation
import XCTest
import TraceFormat

/// Everything the fuzz tests share, in one namespace.
enum FuzzKit {
    // MARK: - Corpus

    static let corpusDirectory = TracedProgram.repositoryRoot
        .appendingPathComponent("Tests/LeakTraceTests/Fixtures/corpus")

    /// The committed corpus, by file name, sorted.
    static func corpus() throws -> [(name: String, bytes: [UInt8])] {
        let names = try FileManager.default.contentsOfDirectory(atPath: corpusDirectory.path)
            .filter { $0.hasSuffix(".lt") }.sorted()
        return try names.map { ($0, Array(try Data(contentsOf: corpusDirectory.appendingPathComponent($0)))) }
    }

    static func corpusFile(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: corpusDirectory.appendingPathComponent(name)))
    }

    // MARK: - One execution

    /// What reading one input did.
    struct Outcome {
        /// The one-line message when the reader refused the file at open.
        var refusal: String?
        var endState: TraceEndState?
        /// Every record and its context, when the execution was asked to keep them.
        var records: [TraceRecord] = []
        var contexts: [RecordContext] = []
        var recordCount = 0
        var kinds = Set<String>()
        /// Problems that make this input a finding (empty: the reader behaved).
        var violations: [String] = []

        /// A coarse description of what happened, for telling new behaviour from old: the kind
        /// of ending with its numbers blanked, how many records (by power of two), and which
        /// record kinds appeared.
        var signature: String {
            func skeleton(_ text: String) -> String {
                String(text.map { $0.isNumber ? "#" : $0 }).replacingOccurrences(of: "##", with: "#")
            }
            if let refusal {
                // Only the kind of refusal: inputs that never get past the header teach little.
                let text = refusal.drop { $0 != ":" }
                return "refused:" + skeleton(String(text.prefix { $0 != "(" }))
            }
            let ending: String
            switch endState {
            case .complete?: ending = "complete"
            case let .cut(_, reason)?: ending = "cut:" + skeleton(reason)
            case nil: ending = "none"
            }
            let bucket = 64 - recordCount.leadingZeroBitCount
            return "\(ending)|\(bucket)|\(kinds.sorted().joined(separator: ","))"
        }
    }

    /// Opens `bytes` as a trace, reads every record, and formats each as `dump` would; then
    /// checks what the reader promised: a refusal is a one-line `TraceError`; a read ends with an
    /// end state; a cut is within the file; every stack a record names was defined before it.
    static func execute(_ bytes: [UInt8], keepRecords: Bool = false) -> Outcome {
        var outcome = Outcome()
        let reader: TraceReader
        do {
            reader = try TraceReader(bytes: bytes, name: "fuzz.lt")
        } catch let error as TraceError {
            outcome.refusal = error.description
            if error.description.contains("\n") { outcome.violations.append("refusal spans lines: \(error.description)") }
            if !error.description.hasPrefix("fuzz.lt: ") { outcome.violations.append("refusal does not name the file") }
            return outcome
        } catch {
            outcome.violations.append("open threw a \(type(of: error)), not a TraceError: \(error)")
            return outcome
        }
        _ = reader.header.dumpLines
        var undefinedStacks = 0
        reader.forEachRecord { record, context in
            _ = record.dumpLine
            if let stack = record.stackID, stack != 0, !reader.stacks.isDefined(stack) { undefinedStacks += 1 }
            outcome.recordCount += 1
            outcome.kinds.insert(record.kindName)
            if keepRecords {
                outcome.records.append(record)
                outcome.contexts.append(context)
            }
        }
        outcome.endState = reader.endState
        switch reader.endState {
        case nil:
            outcome.violations.append("reading ended without an end state")
        case let .cut(offset, reason)?:
            if offset > UInt64(bytes.count) { outcome.violations.append("cut at \(offset), past the end (\(bytes.count))") }
            if reason.isEmpty || reason.contains("\n") { outcome.violations.append("cut reason is not one line: \(reason)") }
        case .complete?:
            break
        }
        if undefinedStacks > 0 { outcome.violations.append("\(undefinedStacks) records named undefined stacks") }
        // Work in proportion to the input, counted rather than timed: every record takes at
        // least one byte of some chunk's records, so no read delivers more records than the
        // chunk headers declare bytes.
        let declared = declaredRecordBytes(bytes)
        if outcome.recordCount > declared {
            outcome.violations.append("\(outcome.recordCount) records from \(declared) declared bytes of records")
        }
        return outcome
    }

    /// The raw sizes of the chunks of `bytes`, summed from the first chunk header while each
    /// header starts with its magic (docs/trace-format.md, "Chunks").
    static func declaredRecordBytes(_ bytes: [UInt8]) -> Int {
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        guard bytes.count >= 16 else { return 0 }
        var offset = 16 + u32(12), total = 0
        while offset >= 0, offset + 16 <= bytes.count, Array(bytes[offset..<offset + 4]) == Array("LTCK".utf8) {
            total += u32(offset + 12)
            offset += 16 + u32(offset + 8)
        }
        return total
    }

    // MARK: - Figures

    /// One line the figures script (Scripts/hazards.sh) picks up: `fuzz-figures: key=value ...`.
    static func reportFigures(_ figures: KeyValuePairs<String, Int>) {
        print("fuzz-figures: " + figures.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }

    /// A number from the environment, or `fallback`.
    static func environmentNumber(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? fallback
    }
}

extension TraceRecord {
    /// The stack id the record names, if it names one.
    var stackID: UInt32? {
        switch self {
        case let .alloc(_, _, _, _, stack), let .realloc(_, _, _, _, _, _, stack): return stack
        case let .mmap(_, _, _, _, _, _, _, _, _, stack), let .munmap(_, _, _, _, stack),
             let .mremap(_, _, _, _, _, _, _, stack), let .brk(_, _, _, _, stack), let .sbrk(_, _, _, stack):
            return stack
        default: return nil
        }
    }

    /// The record's kind, for coverage signatures and corpus checks.
    var kindName: String {
        switch self {
        case .alloc: return "ALLOC"
        case .free: return "FREE"
        case .reallocRelease: return "REALLOC_RELEASE"
        case .realloc: return "REALLOC"
        case .time: return "TIME"
        case .thread: return "THREAD"
        case .stack: return "STACK"
        case .modules: return "MODULES"
        case .mmap: return "MMAP"
        case .munmap: return "MUNMAP"
        case .mremap: return "MREMAP"
        case .brk: return "BRK"
        case .sbrk: return "SBRK"
        case .mallopt: return "MALLOPT"
        case .sample: return "SAMPLE"
        case .mark: return "MARK"
        case .threadName: return "THREAD_NAME"
        case .fork: return "FORK"
        case .exec: return "EXEC"
        case .note: return "NOTE"
        case .fold: return "FOLD"
        case .reach: return "REACH"
        case .end: return "END"
        case .unknown: return "unknown"
        }
    }
}

// MARK: - Mutation

/// Seeded mutations of trace bytes: bit flips, interesting bytes, huge varints, inserted,
/// deleted and duplicated ranges, splices from another input, truncation, and edits aimed at the
/// structure (chunk sizes and codec, the header size and version).
struct FuzzMutator {
    private var random: SeededGenerator

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    mutating func below(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(random.next() % UInt64(bound)) }

    /// One to four mutations of `input`; `other` is a second input to splice from.
    mutating func mutate(_ input: [UInt8], splicingFrom other: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) { bytes = mutateOnce(bytes, other) }
        if bytes.count > 256 << 10 { bytes.removeLast(bytes.count - (256 << 10)) }
        return bytes
    }

    /// Where the chunks start, when the file header's size field is believable.
    private func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 16 else { return nil }
        let size = Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        return 16 + size < bytes.count ? 16 + size : nil
    }

    private mutating func mutateOnce(_ input: [UInt8], _ other: [UInt8]) -> [UInt8] {
        var bytes = input
        guard !bytes.isEmpty else { return [UInt8(truncatingIfNeeded: random.next())] }
        // Nine times in ten, damage the chunks: most of the reader is past the header.
        var at = below(bytes.count)
        if let end = headerEnd(bytes), below(10) != 0 { at = end + below(bytes.count - end) }
        switch below(13) {
        case 0, 1:
            bytes[at] ^= 1 << UInt8(below(8))
        case 2:
            let interesting: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x40, 0x4F, 0x01, 0x02, 0x07]
            bytes[at] = interesting[below(interesting.count)]
        case 3:
            // A varint of ten 0xFF-ish bytes: the largest lengths and ids a field can claim.
            let length = 1 + below(10)
            let huge = [UInt8](repeating: 0xFF, count: length - 1) + [0x01]
            bytes.replaceSubrange(at..<min(bytes.count, at + length), with: huge)
        case 4:
            let count = 1 + below(16)
            bytes.insert(contentsOf: (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
        case 5:
            bytes.removeSubrange(at..<min(bytes.count, at + 1 + below(64)))
        case 6:
            let end = min(bytes.count, at + 1 + below(128))
            bytes.insert(contentsOf: bytes[at..<end], at: below(bytes.count))
        case 7:
            guard !other.isEmpty else { break }
            let from = below(other.count)
            let piece = other[from..<min(other.count, from + 1 + below(512))]
            bytes.replaceSubrange(at..<min(bytes.count, at + piece.count), with: piece)
        case 8:
            bytes.removeSubrange(at...)
        case 9:
            mutateChunkHeader(&bytes)
        case 10:
            // Header: version, flags, header-size.
            let field = [8, 10, 12, 13, 14, 15][below(6)]
            if field < bytes.count { bytes[field] = UInt8(truncatingIfNeeded: random.next()) }
        case 11:
            // A 32-bit little-endian field rewritten with a boundary value.
            let values: [UInt32] = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 64 << 20, (64 << 20) + 1, 1 << 20]
            let value = values[below(values.count)]
            for k in 0..<4 where at + k < bytes.count { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
        default:
            bytes[at] = UInt8(truncatingIfNeeded: random.next())
        }
        return bytes
    }

    /// Rewrites a field of one chunk header (found by its `LTCK` magic).
    private mutating func mutateChunkHeader(_ bytes: inout [UInt8]) {
        var starts: [Int] = []
        if bytes.count >= 16 {
            for i in 0...(bytes.count - 4) where bytes[i] == 0x4C && bytes[i + 1] == 0x54 && bytes[i + 2] == 0x43 && bytes[i + 3] == 0x4B {
                starts.append(i)
            }
        }
        guard let start = starts.isEmpty ? nil : starts[below(starts.count)], start + 16 <= bytes.count else { return }
        switch below(4) {
        case 0: bytes[start + 4] = UInt8(below(4))                       // codec
        case 1: bytes[start + 5 + below(3)] = UInt8(truncatingIfNeeded: random.next()) // reserved
        default:
            let field = start + (below(2) == 0 ? 8 : 12)                 // stored-size or raw-size
            let old = UInt32(bytes[field]) | UInt32(bytes[field + 1]) << 8 | UInt32(bytes[field + 2]) << 16
                | UInt32(bytes[field + 3]) << 24
            let choices: [UInt32] = [0, old &+ 1, old &- 1, old &* 2, 0xFFFF_FFFF, 64 << 20]
            let value = choices[below(choices.count)]
            for k in 0..<4 { bytes[field + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
        }
    }
}
