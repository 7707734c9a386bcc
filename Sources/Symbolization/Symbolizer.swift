// Resolves captured addresses to functions, source lines and inline chains.
//
// Work is shared as much as the data allows: one libdwfl session per ELF file (path + build-id,
// whatever bias it was loaded at), and one answer per (file, offset, return-address flag), so a
// trace with millions of events but a few thousand distinct frames does a few thousand lookups.

import TraceFormat

/// Where to look for separate debug files.
public struct SymbolizerOptions: Sendable {
    /// Roots searched for `.build-id/xx/rest.debug` files, `.gnu_debuglink` targets (under the
    /// binary's own directory path) and dwz files (`.dwz/`). Searched on disk only: never debuginfod.
    public var debugDirectories: [String] = ["/usr/lib/debug"]
    /// Where answers are kept between runs (`AnswerCache.swift`); nil: nowhere. Decompressed
    /// images of debug files are kept there too (`DebugImage.swift`).
    public var answerDirectory: String?
    /// The most the kept images of debug files may take on disk together; the least recently
    /// used are removed first.
    public var debugImageBudget: UInt64 = 1 << 30

    public init() {}

    public init(debugDirectories: [String], answerDirectory: String? = nil) {
        self.debugDirectories = debugDirectories
        self.answerDirectory = answerDirectory
    }
}

/// Counters describing the work a `Symbolizer` has done.
public struct SymbolizerStatistics: Equatable, Sendable {
    /// Calls to `symbolize`.
    public var requests = 0
    /// Calls answered from the cache without touching debug info.
    public var cacheHits = 0
    /// Distinct ELF files opened (successfully or not).
    public var modulesOpened = 0
    /// Lookups answered from answers stored by an earlier run, without debug info.
    public var storedAnswers = 0

    public init() {}
}

/// Turns captured addresses into symbolized frames using each module's ELF file and debug info.
/// Not thread-safe: use one per thread.
public final class Symbolizer {
    private let options: SymbolizerOptions
    private var sessionIndexByModule: [ModuleKey: Int] = [:]
    private var sessions: [ModuleSession] = []
    /// The module of the last lookup and its session: consecutive lookups are nearly always in
    /// one module, and comparing its path and build-id (the same storage, compared by identity
    /// first) costs less than hashing them (cc1's report: 7 M instructions).
    private var lastModule: (key: ModuleKey, session: Int)?
    private var cache: [FrameKey: [SymbolizedFrame]] = [:]
    private var problems: [String] = []
    private var modulesLackingDebugInfo: [String] = []
    public private(set) var statistics = SymbolizerStatistics()

    public init(options: SymbolizerOptions = .init()) {
        self.options = options
    }

    /// Stores the answers found in this run for the modules that keep answers between runs
    /// (`SymbolizerOptions.answerDirectory`).
    public func storeAnswers() {
        for session in sessions { session.answers?.store() }
    }

    /// One line per problem met so far, each reported once: a module whose file is missing or
    /// unreadable, or whose build-id differs from the one in the trace. Frames in such modules
    /// are given as module+offset.
    public var warnings: [String] { problems }

    /// Paths of modules opened so far that have neither DWARF nor a separate debug file: their
    /// frames have function names from the symbol table at best, and no file:line.
    public var modulesWithoutDebugInfo: [String] { modulesLackingDebugInfo }

    /// Resolves a captured address in `module` (nil: no module contains it).
    /// `isReturnAddress`: the address is a return address (true for every frame of a captured
    /// stack), so the call instruction before it is looked up (address - 1); frames still report
    /// the address as captured.
    /// Returns the inline chain innermost first; the last element is the physical function.
    /// Never empty.
    public func symbolize(address: UInt64, module: Module?, isReturnAddress: Bool) -> [SymbolizedFrame] {
        statistics.requests += 1
        guard let module else { return [SymbolizedFrame(address: address)] }

        let offset = address &- module.bias
        let session = sessionIndex(for: module)
        let key = FrameKey(session: session, offset: offset, isReturnAddress: isReturnAddress)
        if let cached = cache[key] {
            statistics.cacheHits += 1
            // The same file loaded at another bias shares the answer; only the address differs.
            guard cached.first?.address != address else { return cached }
            return cached.map { var frame = $0; frame.address = address; return frame }
        }

        let lookup = isReturnAddress && offset > 0 ? offset - 1 : offset
        let source = sourceFrames(in: sessions[session], at: lookup)
        let frames: [SymbolizedFrame]
        if source.isEmpty {
            frames = [SymbolizedFrame(address: address, module: module.path, moduleOffset: offset)]
        } else {
            frames = source.map {
                SymbolizedFrame(address: address, module: module.path, moduleOffset: offset,
                                function: $0.function, file: $0.file, line: $0.line, column: $0.column,
                                isInlined: $0.isInlined)
            }
        }
        cache[key] = frames
        return frames
    }

    /// Symbolizes a whole captured stack, innermost frame first, and flattens every frame's
    /// inline chain into one list (still innermost first). `module` finds the module holding an
    /// address (nil: none). `returnAddresses` applies to every frame; pass false for addresses
    /// that are exact instruction addresses rather than return addresses.
    public func symbolize(stack addresses: [UInt64], returnAddresses: Bool = true,
                          module: (UInt64) -> Module?) -> [SymbolizedFrame] {
        var frames: [SymbolizedFrame] = []
        frames.reserveCapacity(addresses.count)
        for address in addresses {
            frames += symbolize(address: address, module: module(address), isReturnAddress: returnAddresses)
        }
        return frames
    }

    /// What the module's debug info says at `lookup`, from the stored answers when they have it.
    private func sourceFrames(in session: ModuleSession, at lookup: UInt64) -> [SourceFrame] {
        if let stored = session.answers?.frames[lookup] {
            statistics.storedAnswers += 1
            return stored
        }
        let source = session.debugInfo?.frames(at: lookup) ?? []
        session.answers?.record(source, at: lookup)
        return source
    }

    // MARK: Module sessions

    private func sessionIndex(for module: Module) -> Int {
        if let last = lastModule, last.key.path == module.path, last.key.buildID == module.buildID {
            return last.session
        }
        let key = ModuleKey(path: module.path, buildID: module.buildID)
        let index: Int
        if let known = sessionIndexByModule[key] {
            index = known
        } else {
            sessions.append(openSession(for: module))
            index = sessions.count - 1
            sessionIndexByModule[key] = index
        }
        lastModule = (key, index)
        return index
    }

    /// Opens the module's file and decides whether to trust it. Any problem becomes one warning,
    /// and the session then answers every address with module+offset.
    private func openSession(for module: Module) -> ModuleSession {
        // The kernel's vDSO has a name but no file; there is nothing to open and nothing to warn about.
        if Self.isVirtualModule(module.path) { return ModuleSession(debugInfo: nil) }
        if module.path.isEmpty {
            problems.append("a module at bias 0x\(String(module.bias, radix: 16)) has no path; "
                            + "its frames are shown as module+offset")
            return ModuleSession(debugInfo: nil)
        }
        statistics.modulesOpened += 1

        switch ModuleDebugInfo.open(path: module.path, debugDirectories: options.debugDirectories,
                                     images: DebugImageStore(answerDirectory: options.answerDirectory,
                                                             budget: options.debugImageBudget)) {
        case .failure(let problem):
            problems.append("\(module.path): cannot read the module (\(problem.reason)); "
                            + "its frames are shown as module+offset")
            return ModuleSession(debugInfo: nil)
        case .success(let debugInfo):
            if !module.buildID.isEmpty && debugInfo.buildID != module.buildID {
                let onDisk = debugInfo.buildID.isEmpty ? "none" : hexString(debugInfo.buildID)
                problems.append("\(module.path): build-id on disk (\(onDisk)) differs from the traced "
                                + "build-id (\(hexString(module.buildID))); the file has changed since "
                                + "the trace, so its frames are shown as module+offset")
                return ModuleSession(debugInfo: nil)
            }
            // Stored answers exist only for modules with DWARF: no need to load it to know.
            if let directory = options.answerDirectory,
               let stored = ModuleAnswers.load(directory: directory, buildID: debugInfo.buildID) {
                return ModuleSession(debugInfo: debugInfo, answers: stored)
            }
            // Answers from the symbol table alone are kept too, while no debug file can be found.
            if let directory = options.answerDirectory,
               let stored = ModuleAnswers.loadSymbolTableAnswers(directory: directory, buildID: debugInfo.buildID,
                                                                  modulePath: module.path,
                                                                  debugDirectories: options.debugDirectories) {
                modulesLackingDebugInfo.append(module.path)
                return ModuleSession(debugInfo: debugInfo, answers: stored)
            }
            guard debugInfo.hasDebugInfo else {
                modulesLackingDebugInfo.append(module.path)
                let answers = options.answerDirectory.flatMap {
                    ModuleAnswers.startSymbolTableAnswers(directory: $0, buildID: debugInfo.buildID, modulePath: module.path,
                                                          debugDirectories: options.debugDirectories,
                                                          debugFiles: debugInfo.debugFilePaths)
                }
                return ModuleSession(debugInfo: debugInfo, answers: answers)
            }
            let answers = options.answerDirectory.flatMap {
                ModuleAnswers.start(directory: $0, buildID: debugInfo.buildID, debugFiles: debugInfo.debugFilePaths)
            }
            return ModuleSession(debugInfo: debugInfo, answers: answers)
        }
    }

    static func isVirtualModule(_ path: String) -> Bool {
        path == "linux-vdso.so.1" || path == "linux-gate.so.1" || path == "[vdso]"
    }
}

// MARK: - Keys

/// A module's identity for session sharing: the same file (path) with the same contents
/// (build-id). The load bias is deliberately left out; lookups are bias-free.
private struct ModuleKey: Hashable {
    let path: String
    let buildID: [UInt8]
}

private struct FrameKey: Hashable {
    let session: Int
    let offset: UInt64
    let isReturnAddress: Bool
}

/// A module's debug info, or nil when the file is missing, untrusted or virtual, and the
/// answers stored for it between runs.
private struct ModuleSession {
    let debugInfo: ModuleDebugInfo?
    var answers: ModuleAnswers?
}
