import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LeakAnalysis
import TraceFormat

// The traces one command writes are one run, a family: a forked child's trace names its
// parent's (`parent-trace`); a process that calls exec ends its trace with EXEC, and the program
// it ran keeps the pid and starts a trace of its own. The family is found from what the traces
// already hold, among the traces in the directory of the one named:
// - fork: the trace named by `parent-trace` (by file name) whose pid is the child's ppid;
// - exec: a trace that ended by exec is followed by the trace of the same pid and ppid that
//   started next. While the process lives no other process can have its pid, so the next trace
//   of that pid is the new image's (an untraced image, say a static binary, breaks the chain
//   and the ppid check keeps a later process that reused the pid out).
// - spawn: a program started by posix_spawn or vfork and exec (gcc's cc1, as and ld; system()'s
//   command) writes a trace with no `parent-trace` (no fork handler runs) whose ppid is its
//   parent's pid: its parent is the trace of that pid that started last before it and was still
//   being written when it started.

/// One trace of a family: its path, its header and where it came from.
struct FamilyTrace {
    enum Origin: Equatable {
        /// The first process of the run (or one whose parent's trace is not there).
        case start
        /// A forked child of the trace at this index.
        case fork(parent: Int)
        /// The program the process of the trace at this index exec'd.
        case exec(previous: Int)
        /// A program the process of the trace at this index started by posix_spawn or vfork.
        case spawn(parent: Int)
    }

    let path: String
    let header: TraceHeader
    var origin: Origin = .start
    /// When the file was last written (seconds since the epoch), when known.
    var modifiedSeconds: Int64?

    var startMicroseconds: UInt64 { header.startRealtimeMicroseconds ?? 0 }
}

/// The traces of one directory (headers only), and the family and exec chains among them.
final class TraceDirectory {
    private(set) var traces: [FamilyTrace] = []
    /// The index of the trace the directory was opened around.
    let named: Int
    /// Whether each trace ended by exec, read once when first asked (a pass over its records).
    private var endedByExec: [Int: String?] = [:]
    /// The traces by file name, for the fork children's `parent-trace`.
    private var byFileName: [String: [Int]] = [:]
    /// Each trace's forked children, found once when first asked.
    private lazy var forkChildren: [Int: [Int]] = {
        var children: [Int: [Int]] = [:]
        for child in traces.indices { if let parent = forkParent(of: child) { children[parent, default: []].append(child) } }
        return children
    }()
    /// Each trace's spawned children, found once when first asked.
    private lazy var spawnChildren: [Int: [Int]] = {
        var children: [Int: [Int]] = [:]
        for child in traces.indices { if let parent = spawnParent(of: child) { children[parent, default: []].append(child) } }
        return children
    }()

    /// The last component of `path` (trailing slashes ignored), as NSString's `lastPathComponent`.
    static func fileName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard trimmed != "/", let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// `path` without its last component: "" for a bare name, "/" for a name in the root, as
    /// NSString's `deletingLastPathComponent`.
    static func directory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard trimmed != "/", let slash = trimmed.lastIndex(of: "/") else { return trimmed == "/" ? "/" : "" }
        var directory = trimmed[..<slash]
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        return directory.isEmpty ? "/" : String(directory)
    }

    /// Reads the header of `path` (throws `TraceError` when it is not a trace) and of every
    /// other regular file in its directory that is a trace.
    ///
    /// `laterOnly`: only the traces that may have started after `path`'s (the exec chain from
    /// it, `lastImage`; not its parents): a file last written before `path`'s trace started is
    /// not opened. Every report follows the exec chain, and opening each file of a large
    /// directory to read its header cost 15 µs a file (3,000 files: 45 ms added to a 9 ms report).
    init(around path: String, laterOnly: Bool = false) throws {
        let reader = try TraceReader(path: path)
        traces = [FamilyTrace(path: path, header: reader.header, modifiedSeconds: Self.regularFileModified(path))]
        named = 0
        let writtenSince = laterOnly ? reader.header.startRealtimeMicroseconds.map(Self.earliestFileTime) : nil
        let directory = Self.directory(of: path)
        let ownName = Self.fileName(of: path)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? []
        for entry in entries.sorted() where entry != ownName {
            let member = directory.isEmpty ? entry : directory.hasSuffix("/") ? directory + entry : directory + "/" + entry
            guard let modified = Self.regularFileModified(member), modified >= writtenSince ?? .min,
                  let other = try? TraceReader(path: member) else { continue }
            traces.append(FamilyTrace(path: member, header: other.header, modifiedSeconds: modified))
        }
        for index in traces.indices { byFileName[Self.fileName(of: traces[index].path), default: []].append(index) }
    }

    /// When the regular file at `path` was last written (seconds since the epoch); nil for
    /// anything else.
    private static func regularFileModified(_ path: String) -> Int64? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int64(info.st_mtim.tv_sec)
    }

    /// The earliest modification time of a file written at or after `microseconds` (the
    /// tracer's realtime clock): file times are the kernel's, coarser, so a second of margin.
    private static func earliestFileTime(_ microseconds: UInt64) -> Int64 { Int64(microseconds / 1_000_000) - 1 }

    /// The path the process executed when `index`'s trace ended by exec, or nil.
    func execPath(of index: Int) -> String? {
        if let known = endedByExec[index] { return known }
        var result: String?
        if let reader = try? TraceReader(path: traces[index].path) {
            var counter = RecordCounter()
            reader.visitRecords(&counter)
            result = reader.endedByExec
        }
        endedByExec[index] = .some(result)
        return result
    }

    /// The trace of the program that `index`'s process exec'd, or nil when it did not exec (or
    /// that program wrote no trace here).
    func execSuccessor(of index: Int) -> Int? {
        let trace = traces[index]
        guard let pid = trace.header.pid else { return nil }
        let later = traces.indices.filter {
            traces[$0].header.pid == pid && traces[$0].startMicroseconds > trace.startMicroseconds
        }
        guard let next = later.min(by: { traces[$0].startMicroseconds < traces[$1].startMicroseconds }),
              samePPid(trace, traces[next]), execPath(of: index) != nil else { return nil }
        return next
    }

    /// The trace whose process exec'd the program of `index`, or nil.
    func execPredecessor(of index: Int) -> Int? {
        let trace = traces[index]
        guard let pid = trace.header.pid, trace.header.parentTrace == nil else { return nil }
        let earlier = traces.indices.filter {
            traces[$0].header.pid == pid && traces[$0].startMicroseconds < trace.startMicroseconds
        }
        guard let previous = earlier.max(by: { traces[$0].startMicroseconds < traces[$1].startMicroseconds }),
              execSuccessor(of: previous) == index else { return nil }
        return previous
    }

    /// The trace of the process that forked `index`'s, or nil.
    func forkParent(of index: Int) -> Int? {
        let header = traces[index].header
        guard let parentTrace = header.parentTrace else { return nil }
        return byFileName[Self.fileName(of: parentTrace)]?.first {
            $0 != index && (header.ppid == nil || traces[$0].header.pid == header.ppid)
        }
    }

    /// The trace of the process that started `index`'s by posix_spawn or vfork, or nil: the
    /// trace of its ppid that started last before it and was written to after it started (the
    /// file times being coarser, a second of margin), when `index` is neither a fork child nor
    /// an exec'd program. An untraced parent (one spawned with LD_PRELOAD removed) leaves it a
    /// family of its own.
    func spawnParent(of index: Int) -> Int? {
        let trace = traces[index]
        guard trace.header.parentTrace == nil, let ppid = trace.header.ppid, let start = trace.header.startRealtimeMicroseconds,
              execPredecessor(of: index) == nil else { return nil }
        let earliest = Self.earliestFileTime(start)
        let candidates = traces.indices.filter {
            $0 != index && traces[$0].header.pid == ppid && traces[$0].startMicroseconds < start
                && traces[$0].modifiedSeconds ?? .max >= earliest
        }
        return candidates.max { traces[$0].startMicroseconds < traces[$1].startMicroseconds }
    }

    /// `index` and the traces of the programs its process exec'd after it, in order.
    func execChain(from index: Int) -> [Int] {
        var chain = [index]
        while let next = execSuccessor(of: chain[chain.count - 1]), !chain.contains(next) { chain.append(next) }
        return chain
    }

    /// The last trace of `index`'s exec chain, and the programs that came before it.
    func lastImage(from index: Int) -> (path: String, execChain: [ExecStep]) {
        let chain = execChain(from: index)
        let steps = chain.dropLast().map {
            ExecStep(trace: traces[$0].path, program: traces[$0].header.program, executed: execPath(of: $0))
        }
        return (traces[chain[chain.count - 1]].path, steps)
    }

    /// The family of `index`: its first trace, then every trace after the one it came from
    /// (children in the order they started), each with its origin set.
    func family(of index: Int) -> [FamilyTrace] {
        var root = index
        var seen: Set<Int> = [index]
        while let up = forkParent(of: root) ?? execPredecessor(of: root) ?? spawnParent(of: root), seen.insert(up).inserted {
            root = up
        }
        var members: [FamilyTrace] = []
        var visited: Set<Int> = []
        func visit(_ node: Int, origin: FamilyTrace.Origin) {
            guard visited.insert(node).inserted else { return }
            var member = traces[node]
            member.origin = origin
            let position = members.count
            members.append(member)
            var children: [(index: Int, origin: FamilyTrace.Origin)] = []
            if let next = execSuccessor(of: node) { children.append((next, .exec(previous: position))) }
            for child in forkChildren[node] ?? [] { children.append((child, .fork(parent: position))) }
            for child in spawnChildren[node] ?? [] { children.append((child, .spawn(parent: position))) }
            for child in children.sorted(by: { traces[$0.index].startMicroseconds < traces[$1.index].startMicroseconds }) {
                visit(child.index, origin: child.origin)
            }
        }
        visit(root, origin: .start)
        return members
    }
}

extension CommonOptions {
    /// The trace `diff`, `growth` and `timeline` read for `path`: the last of its exec chain
    /// (unless --no-follow-exec), with a warning naming what was followed.
    func followingExec(_ path: String) throws -> (path: String, warnings: [String]) {
        guard !noFollowExec else { return (path, []) }
        let directory = try TraceDirectory(around: path, laterOnly: true)
        let last = directory.lastImage(from: directory.named)
        guard !last.execChain.isEmpty else { return (path, []) }
        let chain = last.execChain.map { "\($0.program ?? "?") (\($0.trace))" }.joined(separator: " -> ")
        return (last.path, ["\(path) ended by exec: read \(last.path), the program its exec chain ended in "
                            + "(after \(chain)); --no-follow-exec reads \(path) itself"])
    }
}

/// Whether two traces' processes have the same parent (true when either does not say).
private func samePPid(_ first: FamilyTrace, _ second: FamilyTrace) -> Bool {
    guard let a = first.header.ppid, let b = second.header.ppid else { return true }
    return a == b
}
