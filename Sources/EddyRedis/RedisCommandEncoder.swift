/// Builds Redis commands in the wire protocol (RESP arrays of bulk strings) into one reusable byte buffer,
/// binary-safe, so that a whole pipeline or a huge `MSET` is handed to hiredis in one piece.
///
/// Doing this in Swift rather than through `redisAppendCommandArgv` avoids building a pointer and a
/// length array per command (every `[UInt8]` would need to stay pinned at once); the bytes are the same.
struct RedisCommandEncoder {
    private(set) var bytes: [UInt8] = []
    /// Arguments appended with `appendArgument` since the last `reset`.
    private(set) var argumentCount = 0

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        argumentCount = 0
    }

    /// Room for `count` more bytes without growing.
    mutating func reserveCapacity(_ count: Int) {
        bytes.reserveCapacity(bytes.count + count)
    }

    /// `*<count>\r\n`: starts a command of `count` arguments.
    mutating func appendCommandHeader(argumentCount count: Int) {
        appendLine(marker: UInt8(ascii: "*"), UInt64(count))
    }

    /// `$<length>\r\n<bytes>\r\n`.
    mutating func appendArgument(_ argument: [UInt8]) {
        argument.withUnsafeBytes { appendArgument($0) }
    }

    mutating func appendArgument(_ argument: UnsafeRawBufferPointer) {
        let header = DecimalDigits(UInt64(argument.count), marker: UInt8(ascii: "$"), lineEnd: true)
        argumentCount += 1
        guard argument.count <= Self.composedArgumentBytes else {
            header.withBytes { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: argument)
            appendLineEnd()
            return
        }
        // Header, bytes and line end composed on the stack and appended at once: an epoch's MSET of a million
        // short keys and values made three appends per argument, each checking the array's capacity and
        // uniqueness (a sixth of the sink thread's samples).
        withUnsafeTemporaryAllocation(byteCount: Self.composedArgumentBytes + 32, alignment: 8) { buffer in
            let base = buffer.baseAddress.unsafelyUnwrapped
            var used = header.withBytes { header in
                base.copyMemory(from: header.baseAddress.unsafelyUnwrapped, byteCount: header.count)
                return header.count
            }
            if argument.count > 0 { (base + used).copyMemory(from: argument.baseAddress.unsafelyUnwrapped, byteCount: argument.count) }
            used &+= argument.count
            base.storeBytes(of: UInt8(ascii: "\r"), toByteOffset: used, as: UInt8.self)
            base.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: used &+ 1, as: UInt8.self)
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: base, count: used &+ 2))
        }
    }

    /// Arguments up to this long are composed on the stack with their header (`appendArgument`).
    private static let composedArgumentBytes = 224

    mutating func appendArgument(_ argument: String) {
        var argument = argument
        argument.withUTF8 { appendArgument(UnsafeRawBufferPointer($0)) }
    }

    /// A decimal number as a bulk string.
    mutating func appendArgument(_ value: UInt64) {
        let digits = DecimalDigits(value)
        appendLine(marker: UInt8(ascii: "$"), UInt64(digits.count))
        digits.withBytes { bytes.append(contentsOf: $0) }
        appendLineEnd()
        argumentCount += 1
    }

    /// Appends what another encoder holds (its arguments, without a header).
    mutating func append(_ other: RedisCommandEncoder) {
        bytes.append(contentsOf: other.bytes)
        argumentCount += other.argumentCount
    }

    /// Bytes already in the wire protocol (arguments another encoder wrote), counted as `arguments` arguments.
    mutating func appendEncoded(_ encoded: UnsafeRawBufferPointer, arguments: Int) {
        bytes.append(contentsOf: encoded)
        argumentCount += arguments
    }

    /// A whole command from its arguments.
    mutating func appendCommand(_ arguments: [[UInt8]]) {
        appendCommandHeader(argumentCount: arguments.count)
        for argument in arguments { appendArgument(argument) }
    }

    /// `<marker><value>\r\n`, formatted on the stack and appended at once: a byte at a time, the encoder was most
    /// of the sink thread's time when an epoch wrote a million keys.
    private mutating func appendLine(marker: UInt8, _ value: UInt64) {
        DecimalDigits(value, marker: marker, lineEnd: true).withBytes { bytes.append(contentsOf: $0) }
    }

    private mutating func appendLineEnd() {
        withUnsafeBytes(of: (UInt8(ascii: "\r"), UInt8(ascii: "\n"))) { bytes.append(contentsOf: $0) }
    }
}

/// A number's decimal digits, optionally after a marker byte and before `\r\n`, written back to front into a fixed
/// buffer (20 digits at most). Also the sinks' number rendering (`init(_:)` and `withBytes`).
public struct DecimalDigits {
    private var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)
    /// Where the text starts in `buffer`; it ends at the buffer's end.
    private var start = 24
    /// The digits' count.
    private(set) var count = 0

    /// `value`'s digits alone.
    public init(_ value: UInt64) {
        self.init(value, marker: nil, lineEnd: false)
    }

    init(_ value: UInt64, marker: UInt8?, lineEnd: Bool) {
        var start = 24
        withUnsafeMutableBytes(of: &buffer) { text in
            if lineEnd {
                text[23] = UInt8(ascii: "\n")
                text[22] = UInt8(ascii: "\r")
                start = 22
            }
            var rest = value
            repeat {
                start -= 1
                text[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            count = (lineEnd ? 22 : 24) - start
            if let marker {
                start -= 1
                text[start] = marker
            }
        }
        self.start = start
    }

    /// Calls `body` with the text (marker, digits and line end); the buffer is valid only during the call.
    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        let start = start
        return withUnsafeBytes(of: buffer) { body(UnsafeRawBufferPointer(rebasing: $0[start...])) }
    }
}
