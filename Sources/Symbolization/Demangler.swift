// Turns mangled linker symbols into the names a programmer wrote.
//
// C++ (Itanium ABI) goes through libstdc++'s `__cxa_demangle` and Swift through the runtime's
// `swift_demangle`; both are looked up with dlsym at first use rather than linked by name, so the
// calls use the C calling convention and a missing library only disables that one language.
// Rust's legacy scheme is decoded here: it is Itanium-shaped, but its identifiers carry `$..$`
// escapes and a trailing hash element that __cxa_demangle knows nothing about.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Demangles linker symbols. C++ (Itanium), Rust (legacy) and Swift names are demangled;
/// anything else (C names, Rust v0 `_R` names, malformed input) is returned unchanged.
public enum Demangler {
    /// The readable form of `symbol`, or `symbol` itself when it is not a mangled name this
    /// demangler understands.
    public static func demangle(_ symbol: String) -> String {
        switch SymbolScheme(symbol) {
        case .itanium:
            if let rust = RustLegacyDemangler.demangle(symbol) { return rust }
            return ItaniumRuntime.demangle(symbol) ?? symbol
        case .swift:
            return SwiftRuntime.demangle(symbol) ?? symbol
        case .plain:
            return symbol
        }
    }
}

// MARK: - Recognising the scheme

/// Which demangler a symbol's prefix calls for.
enum SymbolScheme {
    case itanium
    case swift
    case plain

    init(_ symbol: String) {
        self = symbol.utf8.withContiguousStorageIfAvailable { Self.classify($0) }
            ?? Self.classify(Array(symbol.utf8))
    }

    /// Classifies a NUL-terminated C string without copying it into a Swift string.
    init(cString: UnsafePointer<CChar>) {
        let length = strnlen(cString, 4)
        self = cString.withMemoryRebound(to: UInt8.self, capacity: length) {
            Self.classify(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    /// Looks only at the first bytes: `_Z` is Itanium (C++ and legacy Rust); Swift 4+ uses `$s`,
    /// Swift 5 stable ABI variants `$S`, Embedded Swift `$e`, Swift 4.0 `_T0`, each possibly with
    /// the extra underscore some object formats add.
    private static func classify<Bytes: Collection>(_ bytes: Bytes) -> SymbolScheme where Bytes.Element == UInt8 {
        var prefix = bytes.prefix(4).makeIterator()
        let first = prefix.next()
        let second = prefix.next()
        let third = prefix.next()
        let underscore = UInt8(ascii: "_"), dollar = UInt8(ascii: "$")
        if first == underscore && second == UInt8(ascii: "Z") { return .itanium }
        if first == underscore && second == UInt8(ascii: "T") && third == UInt8(ascii: "0") { return .swift }
        let (marker, kind) = first == underscore ? (second, third) : (first, second)
        if marker == dollar, let kind, kind == UInt8(ascii: "s") || kind == UInt8(ascii: "S") || kind == UInt8(ascii: "e") {
            return .swift
        }
        return .plain
    }
}

// MARK: - C++ via libstdc++

/// `char *__cxa_demangle(const char *mangled, char *buffer, size_t *length, int *status)`
private typealias CxaDemangle = @convention(c) (
    UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<Int>?,
    UnsafeMutablePointer<Int32>?
) -> UnsafeMutablePointer<CChar>?

private enum ItaniumRuntime {
    /// Resolved once; nil when no C++ runtime can be found in or loaded into the process.
    static let function: CxaDemangle? = {
        let names = ["libstdc++.so.6", "libc++abi.so.1", "libc++.so.1"]
        guard let symbol = lookUpCFunction("__cxa_demangle", fallbackLibraries: names) else { return nil }
        return unsafeBitCast(symbol, to: CxaDemangle.self)
    }()

    static func demangle(_ symbol: String) -> String? {
        guard let function else { return nil }
        var status: Int32 = 0
        guard let output = function(symbol, nil, nil, &status) else { return nil }
        defer { free(output) }
        return status == 0 ? String(cString: output) : nil
    }
}

// MARK: - Swift via the runtime

/// `char *swift_demangle(const char *mangled, size_t length, char *buffer, size_t *bufferSize, uint32_t flags)`
private typealias SwiftDemangle = @convention(c) (
    UnsafePointer<CChar>?, Int, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<Int>?, UInt32
) -> UnsafeMutablePointer<CChar>?

private enum SwiftRuntime {
    static let function: SwiftDemangle? = {
        guard let symbol = lookUpCFunction("swift_demangle", fallbackLibraries: ["libswiftCore.so"]) else {
            return nil
        }
        return unsafeBitCast(symbol, to: SwiftDemangle.self)
    }()

    static func demangle(_ symbol: String) -> String? {
        guard let function else { return nil }
        let output = symbol.withCString { function($0, strlen($0), nil, nil, 0) }
        guard let output else { return nil }
        defer { free(output) }
        return String(cString: output)
    }
}

/// Finds an exported C function already loaded in the process, or failing that in the first of
/// `fallbackLibraries` that loads. The libraries stay loaded: the pointer is cached for good.
private func lookUpCFunction(_ name: String, fallbackLibraries: [String]) -> UnsafeMutableRawPointer? {
    if let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, name) {
        return symbol
    }
    for library in fallbackLibraries {
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else { continue }
        if let symbol = dlsym(handle, name) { return symbol }
        dlclose(handle)
    }
    return nil
}
