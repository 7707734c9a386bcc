// Addresses in JSON: "0x..." strings, because JSON numbers lose precision above 2^53. A model
// type marks its address fields `@HexAddress` (or `@OptionalHexAddress`) and keeps the
// synthesized Codable.

/// An address that JSON writes as a "0x..." string.
@propertyWrapper
public struct HexAddress: Hashable, Sendable, Codable {
    public var wrappedValue: UInt64

    public init(wrappedValue: UInt64) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hexAddress(wrappedValue))
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard text.hasPrefix("0x"), let value = UInt64(text.dropFirst(2), radix: 16) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a 0x address")
        }
        wrappedValue = value
    }
}

/// An optional address: a "0x..." string in JSON, and no key at all when nil.
@propertyWrapper
public struct OptionalHexAddress: Hashable, Sendable, Codable {
    public var wrappedValue: UInt64?

    public init(wrappedValue: UInt64?) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue.map(HexAddress.init(wrappedValue:)))
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(HexAddress.self).wrappedValue
    }
}

extension KeyedEncodingContainer {
    /// Leaves a nil address out, as synthesized Codable does with a plain optional.
    public mutating func encode(_ value: OptionalHexAddress, forKey key: Key) throws {
        try encodeIfPresent(value.wrappedValue.map(HexAddress.init(wrappedValue:)), forKey: key)
    }
}

extension KeyedDecodingContainer {
    /// A missing key is a nil address.
    public func decode(_ type: OptionalHexAddress.Type, forKey key: Key) throws -> OptionalHexAddress {
        OptionalHexAddress(wrappedValue: try decodeIfPresent(HexAddress.self, forKey: key)?.wrappedValue)
    }
}
