/// The byte encoding of a group key (the GROUP BY values of one group), also its LMDB key.
///
/// Layout: `0x01`, then per GROUP BY column `0x00` for NULL or `0x01` and the value: strings as a
/// LEB128 length and the UTF-8 bytes; Int64-backed kinds as 8 big-endian bytes with the sign bit
/// flipped; doubles as 8 big-endian bytes of their order-preserving bit pattern (-0 stored as 0, so
/// that it groups with 0); bools as one byte. Equal SQL values give equal bytes, and a key with no
/// columns (no GROUP BY) is the single byte `0x01`.
///
/// LMDB keys hold 1...511 bytes. A longer key is stored under a 511-byte storage key instead: `0x02`,
/// the first 494 bytes after the leading `0x01`, and a 128-bit digest of the whole key; the whole key
/// then travels in the group's encoded state. Two long keys with the same storage key (which takes
/// crafted input) cannot both be kept: the second one's messages are skipped
/// (`SkipReason.groupKeyCollision`).
enum GroupKey {
    static let plainMarker: UInt8 = 0x01
    static let longMarker: UInt8 = 0x02
    static let maxStorageBytes = 511
    static let digestBytes = 16
    static let longPrefixBytes = maxStorageBytes - 1 - digestBytes

    @inline(always)
    static func varintLength(_ value: Int) -> Int {
        var length = 1
        var rest = UInt(bitPattern: value) &>> 7
        while rest != 0 {
            length &+= 1
            rest &>>= 7
        }
        return length
    }

    @inline(always)
    static func writeVarint(_ value: Int, to buffer: UnsafeMutablePointer<UInt8>) -> Int {
        var rest = UInt(bitPattern: value)
        var written = 0
        while rest >= 0x80 {
            buffer[written] = UInt8(truncatingIfNeeded: rest) | 0x80
            rest &>>= 7
            written &+= 1
        }
        buffer[written] = UInt8(truncatingIfNeeded: rest)
        return written &+ 1
    }

    @inline(always)
    static func writeBigEndian(_ value: UInt64, to buffer: UnsafeMutablePointer<UInt8>) {
        UnsafeMutableRawPointer(buffer).storeBytes(of: value.bigEndian, as: UInt64.self)
    }

    /// Int64 bits ordered as unsigned bytes.
    @inline(always)
    static func orderedBits(int bits: UInt64) -> UInt64 { bits ^ (1 << 63) }

    /// Double bits ordered as unsigned bytes (negative numbers reversed), -0 as 0.
    @inline(always)
    static func orderedBits(double bits: UInt64) -> UInt64 {
        let normalized = bits == 1 << 63 ? 0 : bits
        return normalized & (1 << 63) != 0 ? ~normalized : normalized | (1 << 63)
    }

    static func doubleBits(ordered: UInt64) -> UInt64 {
        ordered & (1 << 63) != 0 ? ordered & ~(1 << 63) : ~ordered
    }

    /// The encoded key's length for `row`.
    @inline(always)
    static func length(of row: DecodedRow, columns: UnsafeBufferPointer<Int>) -> Int {
        var length = 1
        for column in columns {
            let slot = row.slots[column]
            guard slot.state == ColumnSlot.value else {
                length &+= 1
                continue
            }
            switch row.kinds[column] {
            case .string: length &+= 1 &+ varintLength(slot.count) &+ slot.count
            case .bool: length &+= 2
            default: length &+= 9
            }
        }
        return length
    }

    /// Writes `row`'s key to `buffer` (of at least `length(of:columns:)` bytes); returns its length.
    @inline(always)
    static func write(_ row: DecodedRow, columns: UnsafeBufferPointer<Int>, to buffer: UnsafeMutablePointer<UInt8>) -> Int {
        buffer[0] = plainMarker
        var length = 1
        for column in columns {
            let slot = row.slots[column]
            guard slot.state == ColumnSlot.value else {
                buffer[length] = 0
                length &+= 1
                continue
            }
            buffer[length] = 1
            length &+= 1
            switch row.kinds[column] {
            case .string:
                length &+= writeVarint(slot.count, to: buffer + length)
                copyBytes(from: row.stringBytes(of: slot), to: buffer + length, count: slot.count)
                length &+= slot.count
            case .bool:
                buffer[length] = UInt8(truncatingIfNeeded: slot.bits)
                length &+= 1
            case .double, .decimal:
                writeBigEndian(orderedBits(double: slot.bits), to: buffer + length)
                length &+= 8
            case .int64, .timestamp, .timestamptz, .date:
                writeBigEndian(orderedBits(int: slot.bits), to: buffer + length)
                length &+= 8
            }
        }
        return length
    }

    /// Copies without a library call for the short strings keys usually hold (reads only the source's
    /// `count` bytes: it may end at the end of the message).
    @inline(always)
    static func copyBytes(from source: UnsafePointer<UInt8>, to target: UnsafeMutablePointer<UInt8>, count: Int) {
        guard count <= 32 else {
            target.update(from: source, count: count)
            return
        }
        var index = 0
        while index &+ 8 <= count {
            UnsafeMutableRawPointer(target + index).storeBytes(
                of: UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self), as: UInt64.self)
            index &+= 8
        }
        while index < count {
            target[index] = source[index]
            index &+= 1
        }
    }

    /// The LMDB key of a key longer than `maxStorageBytes`.
    static func longStorageKey(_ key: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        precondition(key.count > maxStorageBytes)
        var storage: [UInt8] = [longMarker]
        storage.reserveCapacity(maxStorageBytes)
        storage.append(contentsOf: key[1..<(1 + longPrefixBytes)])
        let (first, second) = KeyHasher.digest128(key)
        withUnsafeBytes(of: first.bigEndian) { storage.append(contentsOf: $0) }
        withUnsafeBytes(of: second.bigEndian) { storage.append(contentsOf: $0) }
        return storage
    }

    /// One column of a decoded key: the bytes of a string are valid only during the call that hands them over.
    enum Column {
        case null
        case bool(Bool)
        case int64(Int64)
        case double(Double)
        case string(UnsafeRawBufferPointer)
    }

    /// Decodes an encoded key, checked against the GROUP BY columns' kinds (strings must be UTF-8, unless
    /// `validatingUTF8` is false: a key taken from a group table, whose strings the row decoder or the restore
    /// already checked), and hands `column` each value in order. Allocates nothing.
    static func decode(
        _ key: UnsafeRawBufferPointer, kinds: [ColumnKind], validatingUTF8: Bool = true, _ column: (Column) -> Void = { _ in }
    ) throws(EngineError) {
        var reader = ByteReader(key, what: "group key")
        guard try reader.byte() == plainMarker else { throw reader.corrupt("does not start with 0x01") }
        for kind in kinds {
            switch try reader.byte() {
            case 0:
                column(.null)
                continue
            case 1:
                break
            case let tag:
                throw reader.corrupt("has value tag \(tag), expected 0 or 1")
            }
            switch kind {
            case .string:
                let bytes = try reader.bytes(try reader.varint())
                guard !validatingUTF8 || isUTF8(bytes) else { throw reader.corrupt("holds invalid UTF-8") }
                column(.string(bytes))
            case .bool:
                switch try reader.byte() {
                case 0: column(.bool(false))
                case 1: column(.bool(true))
                case let other: throw reader.corrupt("has bool byte \(other)")
                }
            case .double, .decimal:
                column(.double(Double(bitPattern: doubleBits(ordered: try reader.bigEndian64()))))
            case .int64, .timestamp, .timestamptz, .date:
                column(.int64(Int64(bitPattern: orderedBits(int: try reader.bigEndian64()))))
            }
        }
        guard reader.isAtEnd else { throw reader.corrupt("has \(reader.remaining) bytes after its \(kinds.count) values") }
    }

    /// The values of an encoded key, checked against the GROUP BY columns' kinds.
    static func values(of key: UnsafeRawBufferPointer, kinds: [ColumnKind]) throws(EngineError) -> [ScalarValue] {
        var values: [ScalarValue] = []
        values.reserveCapacity(kinds.count)
        try decode(key, kinds: kinds) { column in
            switch column {
            case .null: values.append(.null)
            case .bool(let value): values.append(.bool(value))
            case .int64(let value): values.append(.int64(value))
            case .double(let value): values.append(.double(value))
            case .string(let bytes): values.append(.string(String(decoding: bytes, as: UTF8.self)))
            }
        }
        return values
    }

    /// Whether `bytes` are UTF-8, checked without allocating.
    static func isUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        (try? UTF8Span(validating: bytes.assumingMemoryBound(to: UInt8.self).span)) != nil
    }
}

/// Reads encoded keys and states in place, throwing `corruptState` errors that say what and where. The bytes
/// must outlive the reader.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let what: String
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer, what: String) {
        self.bytes = bytes
        self.what = what
    }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    func corrupt(_ problem: String) -> EngineError {
        EngineError(.corruptState, "\(what) (\(bytes.count) bytes) \(problem) at byte \(offset)")
    }

    mutating func byte() throws(EngineError) -> UInt8 {
        guard offset < bytes.count else { throw corrupt("ends early") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func bytes(_ count: Int) throws(EngineError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else { throw corrupt("ends early (needs \(count) more bytes)") }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    mutating func varint() throws(EngineError) -> Int {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 63 || (shift == 63 && next <= 1) else { throw corrupt("has an overlong number") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { break }
            shift += 7
        }
        guard value <= UInt64(Int.max) else { throw corrupt("has a number out of range") }
        return Int(value)
    }

    mutating func littleEndian64() throws(EngineError) -> UInt64 {
        UInt64(littleEndian: try bytes(8).loadUnaligned(as: UInt64.self))
    }

    mutating func bigEndian64() throws(EngineError) -> UInt64 {
        UInt64(bigEndian: try bytes(8).loadUnaligned(as: UInt64.self))
    }
}
