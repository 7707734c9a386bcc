// Rust's legacy symbol mangling: an Itanium-style nested name `_ZN <len><ident>... E` whose last
// element is a 17-byte hash `h<16 hex digits>`, and whose identifiers escape the characters
// Itanium names cannot hold (`$LT$` for `<`, `$u20$` for a space, `..` for `::`, ...).
// The hash only disambiguates crate versions, so it is dropped from the readable name.

enum RustLegacyDemangler {
    /// The demangled name, or nil when `symbol` is not a legacy Rust symbol (then it is C++ or
    /// nothing we know, and the caller decides).
    static func demangle(_ symbol: String) -> String? {
        let bytes = Array(symbol.utf8)
        guard bytes.allSatisfy({ $0 < 0x80 }), bytes.count > 3,
              bytes[0] == UInt8(ascii: "_"), bytes[1] == UInt8(ascii: "Z"), bytes[2] == UInt8(ascii: "N"),
              let (elements, end) = parseElements(bytes, from: 3),
              elements.count >= 2, let last = elements.last, isHash(last)
        else { return nil }

        var name = ""
        for (index, element) in elements.dropLast().enumerated() {
            if index > 0 { name += "::" }
            name += unescape(element)
        }
        return name + suffix(bytes[end...])
    }

    // MARK: Parsing

    /// Reads `<decimal length><bytes>` elements up to the closing `E`. Returns the elements and the
    /// index just past the `E`, or nil if the lengths do not fit the bytes.
    private static func parseElements(_ bytes: [UInt8], from start: Int) -> ([ArraySlice<UInt8>], Int)? {
        var elements: [ArraySlice<UInt8>] = []
        var index = start
        while index < bytes.count, bytes[index] != UInt8(ascii: "E") {
            var length = 0
            let digitsStart = index
            while index < bytes.count, let digit = decimalValue(bytes[index]) {
                // An identifier longer than the symbol itself is malformed; stop before overflowing.
                guard length <= bytes.count else { return nil }
                length = length * 10 + digit
                index += 1
            }
            guard index > digitsStart, length > 0, length <= bytes.count - index else { return nil }
            elements.append(bytes[index ..< index + length])
            index += length
        }
        guard index < bytes.count else { return nil } // no closing `E`
        return (elements, index + 1)
    }

    /// `h` followed by exactly 16 lowercase hex digits.
    private static func isHash(_ element: ArraySlice<UInt8>) -> Bool {
        guard element.count == 17, element.first == UInt8(ascii: "h") else { return false }
        return element.dropFirst().allSatisfy { hexValue($0) != nil }
    }

    /// What follows the closing `E`: LLVM's `.llvm.<hex>` uniquing suffix is noise and dropped;
    /// other suffixes (`.cold`, `.isra.0`) say something about the code and are kept.
    private static func suffix(_ rest: ArraySlice<UInt8>) -> String {
        guard !rest.isEmpty else { return "" }
        let text = String(decoding: rest, as: UTF8.self)
        if text.hasPrefix(".llvm.") { return "" }
        return text
    }

    // MARK: Identifier escapes

    /// Rewrites one identifier: `_$` prefix guard dropped, `..` to `::`, `$XX$` escapes to characters.
    /// An escape we cannot decode ends decoding and the rest is kept verbatim, so nothing is lost.
    private static func unescape(_ element: ArraySlice<UInt8>) -> String {
        var rest = element
        if rest.starts(with: [UInt8(ascii: "_"), UInt8(ascii: "$")]) { rest = rest.dropFirst() }
        var output = ""
        while let first = rest.first {
            if first == UInt8(ascii: ".") {
                if rest.dropFirst().first == UInt8(ascii: ".") {
                    output += "::"
                    rest = rest.dropFirst(2)
                } else {
                    output += "."
                    rest = rest.dropFirst()
                }
            } else if first == UInt8(ascii: "$") {
                guard let close = rest.dropFirst().firstIndex(of: UInt8(ascii: "$")),
                      let character = escapedCharacter(rest[rest.index(after: rest.startIndex) ..< close])
                else { break }
                output.append(character)
                rest = rest[rest.index(after: close)...]
            } else {
                let end = rest.firstIndex { $0 == UInt8(ascii: "$") || $0 == UInt8(ascii: ".") } ?? rest.endIndex
                output += String(decoding: rest[..<end], as: UTF8.self)
                rest = rest[end...]
            }
        }
        return output + String(decoding: rest, as: UTF8.self)
    }

    private static func escapedCharacter(_ code: ArraySlice<UInt8>) -> Character? {
        switch String(decoding: code, as: UTF8.self) {
        case "SP": return "@"
        case "BP": return "*"
        case "RF": return "&"
        case "LT": return "<"
        case "GT": return ">"
        case "LP": return "("
        case "RP": return ")"
        case "C": return ","
        default:
            // `$u<hex>$`: a Unicode scalar in lowercase hex, e.g. `$u20$` for a space.
            guard code.first == UInt8(ascii: "u"), code.count >= 2, code.count <= 7 else { return nil }
            var value: UInt32 = 0
            for byte in code.dropFirst() {
                guard let digit = hexValue(byte) else { return nil }
                value = value << 4 | UInt32(digit)
            }
            guard let scalar = Unicode.Scalar(value), !scalar.properties.generalCategory.isControl else {
                return nil
            }
            return Character(scalar)
        }
    }

    private static func decimalValue(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    /// Lowercase only: the mangler never emits uppercase hex, and `$LT$` must not read as hex.
    private static func hexValue(_ byte: UInt8) -> Int? {
        if let digit = decimalValue(byte) { return digit }
        if byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f") { return Int(byte - UInt8(ascii: "a")) + 10 }
        return nil
    }
}

private extension Unicode.GeneralCategory {
    var isControl: Bool { self == .control }
}
