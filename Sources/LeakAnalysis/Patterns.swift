import Symbolization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Name patterns: shell globs for --skip-frame, LeakSanitizer templates for suppressions.

/// A shell-style glob (`*` any run, `?` one character) matched against a whole name.
public struct GlobPattern: Hashable, Sendable {
    public let text: String
    private let bytes: [UInt8]
    /// How many bytes the pattern starts with before its first wildcard: a name that does not
    /// start with them is turned down at once (most function names, against most of the
    /// allocator patterns).
    let literalPrefixCount: Int

    public init(_ text: String) {
        self.text = text
        bytes = Array(text.utf8)
        literalPrefixCount = bytes.firstIndex { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") } ?? bytes.count
    }

    /// The pattern's first byte when it is not a wildcard.
    var firstLiteralByte: UInt8? { literalPrefixCount > 0 ? bytes[0] : nil }

    /// True when the whole of `name` matches.
    public func matches(_ name: String) -> Bool {
        // The bytes read in place: `withUTF8` on a copy of the string (it is mutating) made the
        // copy unique first, an allocation per match.
        let matchBytes = { (name: UnsafeBufferPointer<UInt8>) -> Bool in
            guard name.count >= literalPrefixCount,
                  name.prefix(literalPrefixCount).elementsEqual(bytes.prefix(literalPrefixCount)) else { return false }
            return Self.match(pattern: bytes[...], name: name)
        }
        return name.utf8.withContiguousStorageIfAvailable(matchBytes)
            ?? Array(name.utf8).withUnsafeBufferPointer(matchBytes)
    }

    /// Iterative matcher with single backtracking point: linear in practice, never exponential.
    static func match(pattern: ArraySlice<UInt8>, name: UnsafeBufferPointer<UInt8>) -> Bool {
        let star = UInt8(ascii: "*"), question = UInt8(ascii: "?")
        var p = pattern.startIndex, n = 0
        var starP = -1, starN = 0
        while n < name.count {
            if p < pattern.endIndex, pattern[p] == question || pattern[p] == name[n] {
                p += 1; n += 1
            } else if p < pattern.endIndex, pattern[p] == star {
                starP = p; starN = n; p += 1
            } else if starP >= 0 {
                p = starP + 1; starN += 1; n = starN
            } else {
                return false
            }
        }
        while p < pattern.endIndex, pattern[p] == star { p += 1 }
        return p == pattern.endIndex
    }
}

/// A LeakSanitizer suppression template: matches anywhere in a name unless anchored with `^`
/// (start) or `$` (end); `*` matches any run of characters.
public struct TemplatePattern: Hashable, Sendable {
    public let text: String
    private let glob: GlobPattern
    /// The body's bytes when it has no wildcard (every built-in suppression): matched by
    /// comparing bytes at the anchored ends instead of by the glob, which slid an unanchored
    /// pattern along every function name and module path (7% of a report of cc1's trace).
    private let literal: [UInt8]?
    private let anchoredStart: Bool
    private let anchoredEnd: Bool

    public init(_ text: String) {
        self.text = text
        var body = Substring(text)
        anchoredStart = body.hasPrefix("^")
        if anchoredStart { body = body.dropFirst() }
        anchoredEnd = body.hasSuffix("$")
        if anchoredEnd { body = body.dropLast() }
        glob = GlobPattern((anchoredStart ? "" : "*") + body + (anchoredEnd ? "" : "*"))
        literal = body.contains("*") || body.contains("?") ? nil : Array(body.utf8)
    }

    public func matches(_ name: String) -> Bool {
        guard let literal else { return glob.matches(name) }
        // Read in place (a native string's bytes), compared with memcmp: `withUTF8` on a copy
        // of the name (it is mutating) made the copy unique first, about 200 instructions a
        // rule and name (cc1's suppressions 25 M instructions, now 4 M).
        let matched = name.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            literal.withUnsafeBufferPointer { literal in
                let count = literal.count
                guard bytes.count >= count else { return false }
                // An empty body: "^$" matches the empty name alone, the others every name.
                guard count > 0, let pattern = literal.baseAddress, let name = bytes.baseAddress else {
                    return !(anchoredStart && anchoredEnd) || bytes.isEmpty
                }
                switch (anchoredStart, anchoredEnd) {
                case (true, true): return bytes.count == count && memcmp(name, pattern, count) == 0
                case (true, false): return memcmp(name, pattern, count) == 0
                case (false, true): return memcmp(name + (bytes.count - count), pattern, count) == 0
                case (false, false):
                    for start in 0 ... bytes.count - count
                    where name[start] == pattern[0] && memcmp(name + start, pattern, count) == 0 {
                        return true
                    }
                    return false
                }
            }
        }
        return matched ?? glob.matches(name)
    }
}

/// Frames that belong to the allocator or to an allocation wrapper: the call site of a block
/// is the first frame, innermost first, that matches none of these.
public struct AllocatorFrameFilter: Sendable {
    /// The default list: allocator entry points, C++ operator new and allocators, common C
    /// wrappers, GLib, Swift, Rust and CPython allocation functions.
    public static let defaultPatterns: [String] = [
        "malloc", "calloc", "realloc", "reallocarray", "free", "cfree", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "__libc_*", "__posix_memalign", "__malloc_*",
        "operator new*", "operator new[]*", "_Znw*", "_Zna*", "_ZnwmSt11align_val_t*",
        "std::allocator<*>::allocate*", "std::allocator_traits<*>::allocate*",
        "__gnu_cxx::new_allocator<*>::allocate*", "std::__new_allocator<*>::allocate*",
        "std::__allocate_guarded*", "std::__cxx11::basic_string<*>::_M_create*",
        "strdup", "strndup", "__strdup", "__strndup", "wcsdup", "__wcsdup",
        // glibc's internal aliases, which its debug info names.
        "__GI___strdup", "__GI___strndup", "__GI___libc_*", "__GI___wcsdup",
        "xmalloc", "xcalloc", "xrealloc", "xstrdup", "xstrndup", "xzalloc", "xmemdup",
        "g_malloc*", "g_try_malloc*", "g_realloc*", "g_try_realloc*", "g_new*", "g_slice_alloc*",
        "g_strdup", "g_strndup", "g_memdup*",
        "swift_slowAlloc", "swift_allocObject", "swift_allocBox",
        // Rust: the global allocator's shims and the standard library's allocating types (the
        // alloc crate: Box, Vec, String, Rc, Arc, collections; HashMap's hashbrown), so that the
        // call site is the program's own function, not alloc::alloc::alloc or RawVec's growth.
        "__rust_alloc*", "__rust_realloc", "__rdl_alloc*", "__rdl_realloc", "__rg_alloc*", "__rg_realloc",
        "alloc::*", "<alloc::*", "<* as alloc::*", "std::alloc::*", "<std::alloc::System as *", "std::sys::alloc::*",
        "std::sys::pal::*::alloc::*", "hashbrown::*", "<hashbrown::*", "std::collections::*", "<std::collections::*",
        "core::iter::traits::iterator::Iterator::collect*",
        "PyMem_*", "_PyMem_*", "PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc",
        "_PyObject_Malloc*", "_PyObject_Calloc*", "_PyObject_Realloc*",
        "mmap", "mmap64", "mremap", "brk", "sbrk", "__mmap", "__mremap",
    ]

    /// Where the C++ standard library's code is: its headers (libstdc++'s /usr/include/c++/12/,
    /// libc++'s .../include/c++/v1/; containers, strings and smart pointers are templates,
    /// inlined into the program with these files as their source) and its shared libraries. A
    /// frame there is part of the allocation, as a Rust frame of the alloc crate is, so the call
    /// site is the program's function that used the container. Matched on the file and module,
    /// not the name: a template function's demangled name starts with its return type, and
    /// `std::vector<int> make_list<int>()` is the program's own.
    public static let defaultLibraryFiles = ["*/include/c++/*"]
    public static let defaultLibraryModules = ["*/libstdc++.so*", "*/libc++.so*"]

    /// Every pattern, in the order given.
    let patterns: [String]
    private let libraryFiles: [GlobPattern]
    private let libraryModules: [GlobPattern]
    /// Patterns without `*` or `?`: whole names, looked up at once.
    private let names: Set<String>
    /// The longest of `names`, in UTF-8 bytes: a longer function name (most C++ names) is not
    /// hashed to be looked up.
    private let longestName: Int
    /// The other patterns by their first byte (index 256: those that start with a wildcard), so
    /// that a name is tried only against the few that can match it: the 40 default globs were
    /// tried in turn against every function name the reports met (5% of a report of cc1).
    private let globsByFirstByte: [[GlobPattern]]

    /// The default list plus `extraPatterns` (from --skip-frame).
    public init(extraPatterns: [String] = [], includeDefaults: Bool = true) {
        let all = (includeDefaults ? Self.defaultPatterns : []) + extraPatterns
        patterns = all
        libraryFiles = includeDefaults ? Self.defaultLibraryFiles.map(GlobPattern.init) : []
        libraryModules = includeDefaults ? Self.defaultLibraryModules.map(GlobPattern.init) : []
        let isGlob = { (pattern: String) in pattern.contains("*") || pattern.contains("?") }
        names = Set(all.filter { !isGlob($0) })
        longestName = names.map(\.utf8.count).max() ?? 0
        var byFirstByte = [[GlobPattern]](repeating: [], count: 257)
        for glob in all.filter(isGlob).map(GlobPattern.init) {
            byFirstByte[glob.firstLiteralByte.map(Int.init) ?? 256].append(glob)
        }
        globsByFirstByte = byFirstByte
    }

    /// True when `frame` is part of the allocator or a wrapper: by its function's name, or by
    /// its source file or module (the C++ standard library's).
    public func isAllocatorFrame(_ frame: SymbolizedFrame) -> Bool {
        if isAllocatorFrame(function: frame.function) { return true }
        if let file = frame.file, libraryFiles.contains(where: { $0.matches(file) }) { return true }
        if let module = frame.module, libraryModules.contains(where: { $0.matches(module) }) { return true }
        return false
    }

    /// True when a frame with this function name is part of the allocator or a wrapper.
    /// A frame without a name cannot be recognised and is never skipped.
    public func isAllocatorFrame(function: String?) -> Bool {
        guard let function, let first = function.utf8.first else { return false }
        return globsByFirstByte[Int(first)].contains { $0.matches(function) }
            || globsByFirstByte[256].contains { $0.matches(function) }
            || (function.utf8.count <= longestName && names.contains(function))
    }
}
