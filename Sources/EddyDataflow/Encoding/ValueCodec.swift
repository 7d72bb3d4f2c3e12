import EddySQL

/// The byte encoding of SQL values in operator state: group keys (the LMDB key of a group) and the values
/// kept inside a group's state (the distinct values of a `MIN`, `MAX` or `COUNT(DISTINCT)`).
///
/// Each value is a tag byte and its payload: `0` NULL, `1` false, `2` true, `3` an Int64 (8 bytes,
/// little-endian), `4` a Double (its 8 bytes of bits, little-endian; `-0.0` stored as `0.0` and every NaN as
/// one NaN, so that values equal in SQL have equal bytes), `5` a string (LEB128 length, UTF-8 bytes).
/// Tags are stored: never renumber them. Equal keys give equal bytes, so key bytes can index a table.
public enum ValueCodec {
    static let nullTag: UInt8 = 0
    static let falseTag: UInt8 = 1
    static let trueTag: UInt8 = 2
    static let intTag: UInt8 = 3
    static let doubleTag: UInt8 = 4
    static let stringTag: UInt8 = 5

    /// Appends the encoding of `value` to `bytes`.
    public static func append(_ value: SQLValue, to bytes: inout [UInt8]) {
        switch value {
        case .null: bytes.append(nullTag)
        case .bool(let flag): bytes.append(flag ? trueTag : falseTag)
        case .int(let number):
            bytes.append(intTag)
            appendLittleEndian(UInt64(bitPattern: number), to: &bytes)
        case .double(let number):
            bytes.append(doubleTag)
            let canonical = number.isNaN ? Double.nan : (number == 0 ? 0 : number)
            appendLittleEndian(canonical.bitPattern, to: &bytes)
        case .string(let text):
            bytes.append(stringTag)
            appendVarint(UInt64(text.utf8.count), to: &bytes)
            bytes.append(contentsOf: text.utf8)
        }
    }

    /// Appends the encoding of each value of `values`, in order (a key is its values one after another).
    public static func append(contentsOf values: some Sequence<SQLValue>, to bytes: inout [UInt8]) {
        for value in values { append(value, to: &bytes) }
    }

    /// Decodes `count` values that make up all of `bytes` (a key as `append(contentsOf:to:)` wrote it).
    public static func decodeValues(_ bytes: [UInt8], count: Int, what: String) throws(DataflowError) -> [SQLValue] {
        var reader = ByteReader(bytes, what: what)
        var values: [SQLValue] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try reader.value()) }
        guard reader.isAtEnd else { throw reader.corrupt("has \(reader.remaining) bytes after its \(count) values") }
        return values
    }

    static func appendLittleEndian(_ word: UInt64, to bytes: inout [UInt8]) {
        var rest = word
        for _ in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: rest))
            rest >>= 8
        }
    }

    /// LEB128: seven bits per byte, low first, the high bit set on every byte but the last.
    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: rest))
    }
}

/// Reads encoded state front to back; every failure names what was being read and at which byte.
struct ByteReader {
    private let bytes: [UInt8]
    private var position = 0
    /// What the bytes are, for errors ("state of group …").
    let what: String

    init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.what = what
    }

    var isAtEnd: Bool { position == bytes.count }
    var remaining: Int { bytes.count - position }

    func corrupt(_ problem: String) -> DataflowError {
        DataflowError(.corruptState, "\(what) \(problem) (at byte \(position) of \(bytes.count))")
    }

    mutating func byte() throws(DataflowError) -> UInt8 {
        guard position < bytes.count else { throw corrupt("ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func littleEndian64() throws(DataflowError) -> UInt64 {
        guard remaining >= 8 else { throw corrupt("ends inside an 8-byte word") }
        var word: UInt64 = 0
        for shift in 0..<8 { word |= UInt64(bytes[position + shift]) << (8 * UInt64(shift)) }
        position += 8
        return word
    }

    mutating func varint() throws(DataflowError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64, shift < 63 || next <= 1 else { throw corrupt("holds a number longer than 64 bits") }
            value |= UInt64(next & 0x7F) << shift
            if next < 0x80 { return value }
            shift += 7
        }
    }

    /// A count: a varint of at most `limit`.
    mutating func count(atMost limit: Int = .max) throws(DataflowError) -> Int {
        let value = try varint()
        guard value <= UInt64(limit) else { throw corrupt("holds a count of \(value), more than \(limit) possible here") }
        return Int(value)
    }

    /// A length of bytes that follow: a varint of at most the bytes left after it.
    mutating func length() throws(DataflowError) -> Int {
        let value = try varint()
        guard value <= UInt64(remaining) else { throw corrupt("holds a length of \(value) with \(remaining) bytes left") }
        return Int(value)
    }

    mutating func value() throws(DataflowError) -> SQLValue {
        let tag = try byte()
        switch tag {
        case ValueCodec.nullTag: return .null
        case ValueCodec.falseTag: return .bool(false)
        case ValueCodec.trueTag: return .bool(true)
        case ValueCodec.intTag: return .int(Int64(bitPattern: try littleEndian64()))
        case ValueCodec.doubleTag: return .double(Double(bitPattern: try littleEndian64()))
        case ValueCodec.stringTag:
            let length = try length()
            guard let text = String(validating: bytes[position..<position + length], as: UTF8.self) else {
                throw corrupt("holds a string that is not UTF-8")
            }
            position += length
            return .string(text)
        default:
            throw corrupt("holds a value of unknown kind \(tag)")
        }
    }
}
