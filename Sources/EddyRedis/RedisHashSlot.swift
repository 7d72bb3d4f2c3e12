/// A Redis Cluster hash slot: which of the 16,384 slots a key belongs to, and a short hash tag for each slot.
///
/// A key's slot is CRC16 (XMODEM: polynomial 0x1021, initial 0) of the key, modulo 16,384; when the key holds a
/// hash tag — the bytes between the first `{` and the first `}` after it, if there are any — only the tag is
/// hashed. This is the Redis Cluster specification's `HASH_SLOT`; `CLUSTER KEYSLOT` agrees (tested).
public struct RedisHashSlot: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Slots in a cluster.
    public static let count = 16_384

    /// 0 ..< 16,384.
    public let value: Int

    public init(_ value: Int) {
        precondition((0..<Self.count).contains(value), "a hash slot is in 0..<16384, not \(value)")
        self.value = value
    }

    /// The slot of `key`.
    public init(key: UnsafeRawBufferPointer) {
        value = Int(Self.crc16(Self.hashedPart(of: key)) & UInt16(Self.count - 1))
    }

    /// The slot of `key`.
    public init(key: some Collection<UInt8>) {
        self = key.withContiguousStorageIfAvailable { Self(key: UnsafeRawBufferPointer($0)) }
            ?? Array(key).withUnsafeBytes { Self(key: $0) }
    }

    public var description: String { String(value) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    /// A short ASCII string whose slot is this one: written as `{tag}` inside a key, it puts the key in this
    /// slot whatever the rest of the key is. Eddy's per-slot keys (the sink's fence markers) use it.
    public var hashTag: String { Self.tags[value] }

    /// The part of a key the slot is computed from: the hash tag's bytes if the key has a non-empty one.
    static func hashedPart(of key: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key }
        guard let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 else { return key }
        return UnsafeRawBufferPointer(rebasing: key[(open + 1)..<close])
    }

    static func crc16(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ crcTable[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let crcTable: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    /// The first decimal number (as text) that hashes to each slot: found once, by counting up; every slot is
    /// reached by 109,758 (that many hashes of at most six bytes: a few milliseconds).
    private static let tags: [String] = {
        var tags = [String?](repeating: nil, count: count)
        var missing = count
        var number = 0
        while missing > 0, number < 10_000_000 {
            let text = String(number)
            let slot = Array(text.utf8).withUnsafeBytes { Int(crc16($0) & UInt16(count - 1)) }
            if tags[slot] == nil {
                tags[slot] = text
                missing -= 1
            }
            number += 1
        }
        return tags.map { $0! }
    }()
}
