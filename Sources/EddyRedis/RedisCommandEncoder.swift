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

    /// `*<count>\r\n`: starts a command of `count` arguments.
    mutating func appendCommandHeader(argumentCount count: Int) {
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(UInt64(count))
        appendLineEnd()
    }

    /// `$<length>\r\n<bytes>\r\n`.
    mutating func appendArgument(_ argument: [UInt8]) {
        appendBulkHeader(length: argument.count)
        bytes.append(contentsOf: argument)
        appendLineEnd()
        argumentCount += 1
    }

    mutating func appendArgument(_ argument: UnsafeRawBufferPointer) {
        appendBulkHeader(length: argument.count)
        bytes.append(contentsOf: argument)
        appendLineEnd()
        argumentCount += 1
    }

    mutating func appendArgument(_ argument: String) {
        var argument = argument
        argument.withUTF8 { utf8 in
            appendBulkHeader(length: utf8.count)
            bytes.append(contentsOf: utf8)
        }
        appendLineEnd()
        argumentCount += 1
    }

    /// A decimal number as a bulk string.
    mutating func appendArgument(_ value: UInt64) {
        appendBulkHeader(length: Self.decimalLength(value))
        appendDecimal(value)
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

    private mutating func appendBulkHeader(length: Int) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(UInt64(length))
        appendLineEnd()
    }

    private mutating func appendLineEnd() {
        bytes.append(UInt8(ascii: "\r"))
        bytes.append(UInt8(ascii: "\n"))
    }

    private mutating func appendDecimal(_ value: UInt64) {
        let length = Self.decimalLength(value)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: length))
        var rest = value
        var index = start + length - 1
        while rest > 0 {
            bytes[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        }
    }

    static func decimalLength(_ value: UInt64) -> Int {
        var length = 1
        var rest = value / 10
        while rest > 0 {
            length += 1
            rest /= 10
        }
        return length
    }
}
