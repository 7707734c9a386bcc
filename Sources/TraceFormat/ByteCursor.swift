// Bounds-checked decoding of the format's primitive fields (u8, uv, sv, str, bytes) over an
// unsafe buffer. Every read checks the bytes that remain first, so a cursor never reads outside
// its buffer whatever the data says; a failed read returns nil and leaves the cursor where it was.
//
// The type is @usableFromInline and its hot methods @inlinable so that the record loop, which is
// specialised into the caller's module for each visitor, compiles down to plain loads.

/// A read position inside a borrowed byte buffer. The buffer must outlive the cursor. Public for
/// the other stages' own small files (Symbolization's kept answers).
public struct ByteCursor {
    @usableFromInline let base: UnsafePointer<UInt8>
    @usableFromInline let count: Int
    @usableFromInline var offset: Int

    @inlinable
    public init(_ base: UnsafePointer<UInt8>, count: Int, offset: Int = 0) {
        self.base = base; self.count = count; self.offset = offset
    }

    /// Bytes not yet read.
    @inlinable
    public var remaining: Int { @inline(__always) get { count &- offset } }

    @inlinable
    public var isAtEnd: Bool { @inline(__always) get { offset >= count } }

    /// One byte, or nil at the end of the buffer.
    @inlinable @inline(__always)
    public mutating func readByte() -> UInt8? {
        guard offset < count else { return nil }
        let byte = base[offset]
        offset &+= 1
        return byte
    }

    /// An unsigned LEB128 varint of at most 10 bytes whose value fits in 64 bits.
    /// Nil when the buffer ends inside it or when it is malformed (see `varintFailureIsTruncation`).
    @inlinable @inline(__always)
    public mutating func readVarint() -> UInt64? {
        // Fast path, with 10 bytes in hand: one 8-byte load, the first byte without a continuation
        // bit found by counting trailing zeros, the 7-bit groups packed by three shift-and-mask
        // steps. No branch depends on the varint's length, which varies record to record and
        // would otherwise be mispredicted often.
        if count &- offset >= 10 {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + offset).loadUnaligned(as: UInt64.self))
            let stops = ~word & 0x8080_8080_8080_8080
            guard stops != 0 else { return readNineOrTenByteVarint(word) }
            let stopBit = stops.trailingZeroBitCount
            offset &+= (stopBit &+ 1) &>> 3
            return packSevenBitGroups(word & (UInt64.max &>> (63 &- stopBit)))
        }
        return readVarintNearEnd()
    }

    /// A varint whose first 8 bytes all carry the continuation bit (values of 2^56 and more).
    @inlinable
    mutating func readNineOrTenByteVarint(_ firstEight: UInt64) -> UInt64? {
        let low = packSevenBitGroups(firstEight)
        let ninth = UInt64(base[offset &+ 8])
        if ninth < 0x80 {
            offset &+= 9
            return low | ninth << 56
        }
        // The tenth byte holds bit 63 only; anything more overflows 64 bits.
        let tenth = UInt64(base[offset &+ 9])
        guard tenth <= 1 else { return nil }
        offset &+= 10
        return low | (ninth & 0x7F) << 56 | tenth << 63
    }

    /// The careful path for the last few bytes of a buffer.
    @inlinable
    mutating func readVarintNearEnd() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = offset
        while index < count {
            let byte = UInt64(base[index])
            index &+= 1
            if shift == 63 {
                guard byte <= 1 else { return nil }
                offset = index
                return result | (byte << 63)
            }
            result |= (byte & 0x7F) << shift
            if byte < 0x80 {
                offset = index
                return result
            }
            shift &+= 7
        }
        return nil
    }

    /// After `readVarint` returned nil: true when the varint was only cut off by the end of the
    /// buffer (every byte left has its continuation bit set and there are fewer than 10), false
    /// when it is malformed.
    @usableFromInline
    func varintFailureIsTruncation() -> Bool {
        let left = remaining
        guard left < 10 else { return false }
        for index in offset..<count where base[index] < 0x80 { return false }
        return true
    }

    /// A zigzag-encoded signed varint.
    @inlinable @inline(__always)
    mutating func readSignedVarint() -> Int64? {
        guard let encoded = readVarint() else { return nil }
        return decodeZigzag(encoded)
    }

    /// `length` bytes as a sub-buffer, or nil if fewer remain. `length` is checked before use.
    @inlinable
    mutating func readSlice(length: UInt64) -> ByteCursor? {
        guard length <= UInt64(remaining) else { return nil }
        let slice = ByteCursor(base + offset, count: Int(length))
        offset &+= Int(length)
        return slice
    }

    /// A `uv` length followed by that many bytes, copied out.
    mutating func readLengthPrefixedBytes() -> [UInt8]? {
        let start = offset
        guard let length = readVarint(), let slice = readSlice(length: length) else {
            offset = start
            return nil
        }
        return Array(UnsafeBufferPointer(start: slice.base, count: slice.count))
    }

    /// A `str`: `uv` length and that many bytes of UTF-8 (invalid sequences become U+FFFD).
    public mutating func readString() -> String? {
        let start = offset
        guard let length = readVarint(), let slice = readSlice(length: length) else {
            offset = start
            return nil
        }
        return String(decoding: UnsafeBufferPointer(start: slice.base, count: slice.count), as: UTF8.self)
    }

    /// The bytes not yet read, as a buffer.
    var rest: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + offset, count: remaining)
    }
}

/// The value of up to 8 varint bytes held little-endian in `word` (bytes past the varint's last
/// one already cleared): the low 7 bits of each byte, packed together.
@inlinable @inline(__always)
func packSevenBitGroups(_ word: UInt64) -> UInt64 {
    var value = word & 0x7F7F_7F7F_7F7F_7F7F
    value = (value & 0x7F00_7F00_7F00_7F00) &>> 1 | (value & 0x007F_007F_007F_007F)
    value = (value & 0x3FFF_0000_3FFF_0000) &>> 2 | (value & 0x0000_3FFF_0000_3FFF)
    value = (value & 0x0FFF_FFFF_0000_0000) &>> 4 | (value & 0x0000_0000_0FFF_FFFF)
    return value
}

/// Zigzag decoding: 0, 1, 2, 3 -> 0, -1, 1, -2.
@inlinable @inline(__always)
func decodeZigzag(_ encoded: UInt64) -> Int64 {
    Int64(bitPattern: (encoded >> 1) ^ (0 &- (encoded & 1)))
}
