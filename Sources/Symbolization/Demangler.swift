// Turns mangled linker symbols into the names a programmer wrote.
//
// C++ (Itanium ABI) goes through libstdc++'s `__cxa_demangle`, Swift through the runtime's
// `swift_demangle` and Rust's v0 scheme (`_R`: rustc 1.95's standard library is built with
// it) through libiberty's `rust_demangle`, all called by name (CDemangle: a function looked
// up with dlsym is left out of the release build, which links the Swift runtime statically).
// Rust's legacy scheme is decoded here: it is Itanium-shaped, but its identifiers carry `$..$`
// escapes and a trailing hash element that __cxa_demangle knows nothing about.

import CDemangle
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Demangles linker symbols. C++ (Itanium), Rust (legacy and v0) and Swift names are demangled;
/// anything else (C names, malformed input) is returned unchanged.
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
        case .rustV0:
            return RustV0.demangle(symbol) ?? symbol
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
    case rustV0
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

    /// Looks only at the first bytes: `_Z` is Itanium (C++ and legacy Rust), `_R` and a capital
    /// letter (a path's tag) Rust's v0 scheme; Swift 4+ uses `$s`,
    /// Swift 5 stable ABI variants `$S`, Embedded Swift `$e`, Swift 4.0 `_T0`, each possibly with
    /// the extra underscore some object formats add.
    private static func classify<Bytes: Collection>(_ bytes: Bytes) -> SymbolScheme where Bytes.Element == UInt8 {
        var prefix = bytes.prefix(4).makeIterator()
        let first = prefix.next()
        let second = prefix.next()
        let third = prefix.next()
        let underscore = UInt8(ascii: "_"), dollar = UInt8(ascii: "$")
        if first == underscore && second == UInt8(ascii: "Z") { return .itanium }
        if first == underscore && second == UInt8(ascii: "R"), let third, third >= UInt8(ascii: "A") && third <= UInt8(ascii: "Z") {
            return .rustV0
        }
        if first == underscore && second == UInt8(ascii: "T") && third == UInt8(ascii: "0") { return .swift }
        let (marker, kind) = first == underscore ? (second, third) : (first, second)
        if marker == dollar, let kind, kind == UInt8(ascii: "s") || kind == UInt8(ascii: "S") || kind == UInt8(ascii: "e") {
            return .swift
        }
        return .plain
    }
}

// MARK: - The runtimes' demanglers

private enum ItaniumRuntime {
    static func demangle(_ symbol: String) -> String? {
        var status: Int32 = 0
        guard let output = __cxa_demangle(symbol, nil, nil, &status) else { return nil }
        defer { free(output) }
        return status == 0 ? String(cString: output) : nil
    }
}

private enum SwiftRuntime {
    static func demangle(_ symbol: String) -> String? {
        let output = symbol.withCString { swift_demangle($0, strlen($0), nil, nil, 0) }
        guard let output else { return nil }
        defer { free(output) }
        return String(cString: output)
    }
}

private enum RustV0 {
    static func demangle(_ symbol: String) -> String? {
        guard let output = rust_demangle(symbol, 0) else { return nil }
        defer { free(output) }
        return String(cString: output)
    }
}
