@testable import EddyRedis
import Testing

/// The wire bytes, against RESP spelled out with Swift's own number formatting.
@Suite struct RedisCommandEncoderTests {
    static let numbers: [UInt64] = [0, 1, 9, 10, 99, 100, 12_345, 999_999_999_999, UInt64(Int64.max), UInt64.max]

    @Test(arguments: numbers) func numbersAreBulkStringsOfTheirDigits(_ value: UInt64) {
        var encoder = RedisCommandEncoder()
        encoder.appendArgument(value)
        #expect(String(decoding: encoder.bytes, as: UTF8.self) == "$\(String(value).utf8.count)\r\n\(value)\r\n")
        #expect(encoder.argumentCount == 1)
    }

    @Test func aCommandIsAnArrayOfBulkStrings() {
        var encoder = RedisCommandEncoder()
        let binary: [UInt8] = [0, 13, 10, 255]
        encoder.appendCommandHeader(argumentCount: 4)
        encoder.appendArgument("SET")
        encoder.appendArgument(binary)
        encoder.appendArgument(UnsafeRawBufferPointer(start: nil, count: 0))
        encoder.appendArgument(UInt64(1_000_000_007))
        let expected = Array("*4\r\n$3\r\nSET\r\n$4\r\n".utf8) + binary + Array("\r\n$0\r\n\r\n$10\r\n1000000007\r\n".utf8)
        #expect(encoder.bytes == expected)
        #expect(encoder.argumentCount == 4)
        var longArguments = RedisCommandEncoder()
        for length in [1, 223, 224, 225, 4_000] {
            let argument = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            longArguments.reset()
            longArguments.appendArgument(argument)
            #expect(longArguments.bytes == Array("$\(length)\r\n".utf8) + argument + Array("\r\n".utf8), "\(length) bytes")
        }
        var long = RedisCommandEncoder()
        long.appendCommandHeader(argumentCount: 2_000_001)
        #expect(long.bytes == Array("*2000001\r\n".utf8))
    }
}
