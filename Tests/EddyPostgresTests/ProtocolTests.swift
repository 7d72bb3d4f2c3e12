import EddySQL
import Foundation
import NIOCore
import Testing

@testable import EddyPostgres

@Suite("PostgreSQL protocol: framing, values, SCRAM")
struct ProtocolTests {
    @Test("start-up, SSLRequest and typed frames decode; partial frames wait for more bytes")
    func decodesFrames() throws {
        var decoder = FrontendMessageDecoder(maximumMessageBytes: 1 << 20)
        var ssl = ByteBuffer()
        ssl.writeMultipleIntegers(Int32(8), Int32(80_877_103))
        #expect(try decoder.decodeOne(&ssl) == .sslRequest)

        var stream = ClientFrames.startup(["user": "anna", "database": "eddy"])
        stream.writeImmutableBuffer(ClientFrames.query("SELECT 1"))
        // Byte by byte: nothing comes out until a frame is whole.
        var fed = ByteBuffer()
        var decoded: [FrontendMessage] = []
        while let byte = stream.readInteger(as: UInt8.self) {
            fed.writeInteger(byte)
            while let message = try decoder.decodeOne(&fed) { decoded.append(message) }
        }
        #expect(decoded == [.startup(parameters: ["user": "anna", "database": "eddy"]), .query("SELECT 1")])
    }

    @Test("malformed frames are protocol violations naming what is wrong", arguments: [
        ("negative length", { var b = ByteBuffer(); b.writeInteger(UInt8(ascii: "Q")); b.writeInteger(Int32(-5)); return b }()),
        ("oversized", { var b = ByteBuffer(); b.writeInteger(UInt8(ascii: "Q")); b.writeInteger(Int32(1 << 30)); return b }()),
        ("unknown type", ClientFrames.typed("!") { $0.writeInteger(UInt8(0)) }),
        ("unterminated query", ClientFrames.typed("Q") { $0.writeString("SELECT") }),
        ("bad format code", ClientFrames.typed("B") { $0.writeNullTerminatedString(""); $0.writeNullTerminatedString(""); $0.writeMultipleIntegers(Int16(1), Int16(7)) }),
        ("truncated bind", ClientFrames.typed("B") { $0.writeNullTerminatedString(""); $0.writeNullTerminatedString(""); $0.writeMultipleIntegers(Int16(0), Int16(1), Int32(100)) }),
    ])
    func rejectsMalformedFrames(_ name: String, _ frame: ByteBuffer) throws {
        var decoder = FrontendMessageDecoder(maximumMessageBytes: 1 << 20)
        var startup = ClientFrames.startup(["user": "u"])
        _ = try decoder.decodeOne(&startup)
        var bytes = frame
        #expect(throws: PostgresProtocolViolation.self, "\(name)") { _ = try decoder.decodeOne(&bytes) }
    }

    @Test("binary values: int8, int4, float8, bool, text, numeric, timestamp, date")
    func binaryValues() {
        func encoded(_ value: SQLValue, _ type: PostgresType) -> [UInt8] {
            var buffer = ByteBuffer()
            ValueEncoding.write(value, as: type, binary: true, into: &buffer)
            buffer.moveReaderIndex(forwardBy: 4)
            return buffer.readBytes(length: buffer.readableBytes)!
        }
        #expect(encoded(.int(-2), .int8) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE])
        #expect(encoded(.int(258), .int4) == [0, 0, 1, 2])
        #expect(encoded(.double(1.5), .float8) == [0x3F, 0xF8, 0, 0, 0, 0, 0, 0])
        #expect(encoded(.bool(true), .bool) == [1])
        #expect(encoded(.string("ok"), .varchar) == Array("ok".utf8))
        // 12345.678: digits 1, 2345, 6780; weight 1; scale 3.
        #expect(encoded(.double(12345.678), .numeric) == [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1A, 0x7C])
        // 2000-01-02 00:00:01.5 is one day and 1.5 s after PostgreSQL's epoch.
        let micros = Int64(86_400_000_000 + 1_500_000)
        #expect(encoded(.string("2000-01-02 00:00:01.5"), .timestamp) == (0..<8).map { UInt8(truncatingIfNeeded: micros >> (56 - 8 * $0)) })
        #expect(encoded(.string("1999-12-31"), .date) == [0xFF, 0xFF, 0xFF, 0xFF])
        var null = ByteBuffer()
        ValueEncoding.write(.null, as: .int8, binary: true, into: &null)
        #expect(null.readInteger(as: Int32.self) == -1)
    }

    @Test("SHA-256 and HMAC match FIPS 180-2 and RFC 4231 vectors")
    func hashVectors() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(SHA256.hmac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test("SCRAM-SHA-256 server accepts RFC 7677's exchange and refuses a wrong proof")
    func scramVectors() throws {
        // RFC 7677 section 3: user "user", password "pencil".
        let verifier = SCRAMVerifier(password: "pencil", salt: Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!), iterations: 4096)
        func initial(_ clientFirst: String) -> [UInt8] {
            var bytes = Array("SCRAM-SHA-256".utf8) + [0]
            let length = Int32(clientFirst.utf8.count)
            bytes += [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
            return bytes + Array(clientFirst.utf8)
        }
        let exchange = try SCRAMServerExchange(verifier: verifier, initialResponse: initial("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
        #expect(exchange.serverFirst == "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        let final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        #expect(try exchange.finish(clientFinal: Array(final.utf8)) == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        let wrong = final.replacingOccurrences(of: "p=dHzb", with: "p=eHzb")
        #expect(throws: SCRAMServerExchange.Failure.wrongPassword) { _ = try exchange.finish(clientFinal: Array(wrong.utf8)) }
        #expect(throws: SCRAMServerExchange.Failure.self) { _ = try SCRAMServerExchange(verifier: verifier, initialResponse: initial("p=tls-server-end-point,,n=,r=x"), serverNonce: "s") }
    }
}
