import Foundation

/// The server's secret for SCRAM-SHA-256 (RFC 5802, 7677), derived once from the password: the password
/// itself is not kept.
public struct SCRAMVerifier: Sendable {
    let salt: [UInt8]
    let iterations: Int
    let storedKey: [UInt8]
    let serverKey: [UInt8]

    /// Derives the keys from `password` with a fresh random salt. 4096 iterations, PostgreSQL's default.
    public init(password: String, iterations: Int = 4096) {
        var generator = SystemRandomNumberGenerator()
        self.init(password: password, salt: (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }, iterations: iterations)
    }

    init(password: String, salt: [UInt8], iterations: Int) {
        self.salt = salt
        self.iterations = iterations
        let salted = SHA256.pbkdf2(password: Array(password.utf8), salt: salt, iterations: iterations)
        storedKey = SHA256.hash(SHA256.hmac(key: salted, message: Array("Client Key".utf8)))
        serverKey = SHA256.hmac(key: salted, message: Array("Server Key".utf8))
    }
}

/// One SCRAM-SHA-256 exchange, server side: client-first → server-first, client-final → server-final or
/// refusal. Pure: the nonce comes in, nothing is sent from here.
struct SCRAMServerExchange: Sendable {
    /// What a step of the exchange produced.
    enum Failure: Error, Equatable {
        /// The message does not follow RFC 5802: a protocol violation.
        case malformed(String)
        /// The proof does not match: the password is wrong.
        case wrongPassword
    }

    static let mechanism = "SCRAM-SHA-256"

    private let verifier: SCRAMVerifier
    private let clientFirstBare: String
    private let gs2Header: String
    private let nonce: String
    let serverFirst: String

    /// Reads the SASLInitialResponse: mechanism name, then client-first-message.
    init(verifier: SCRAMVerifier, initialResponse: [UInt8], serverNonce: String) throws(Failure) {
        var bytes = initialResponse[...]
        guard let end = bytes.firstIndex(of: 0) else { throw .malformed("SASLInitialResponse without a mechanism name") }
        let mechanism = String(decoding: bytes[..<end], as: UTF8.self)
        guard mechanism == Self.mechanism else { throw .malformed("mechanism '\(mechanism)' was not offered (only \(Self.mechanism))") }
        bytes = bytes[(end + 1)...]
        guard bytes.count >= 4 else { throw .malformed("SASLInitialResponse is truncated") }
        let length = Int(Int32(bitPattern: UInt32(bytes[bytes.startIndex]) << 24 | UInt32(bytes[bytes.startIndex + 1]) << 16 | UInt32(bytes[bytes.startIndex + 2]) << 8 | UInt32(bytes[bytes.startIndex + 3])))
        bytes = bytes.dropFirst(4)
        guard length == bytes.count, let clientFirst = String(validating: bytes, as: UTF8.self) else {
            throw .malformed("client-first-message length \(length) does not match its \(bytes.count) bytes")
        }
        // gs2-header: "n,," or "y,," (no channel binding; the -PLUS mechanism is not offered).
        let fields = clientFirst.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0] == "n" || fields[0] == "y", fields[1].isEmpty else {
            throw .malformed("client-first-message must start with 'n,,' or 'y,,' (channel binding is not supported)")
        }
        let bare = String(fields[2])
        guard let clientNonce = Self.attribute("r", in: bare), !clientNonce.isEmpty else { throw .malformed("client-first-message has no nonce") }
        self.verifier = verifier
        gs2Header = "\(fields[0]),,"
        clientFirstBare = bare
        nonce = clientNonce + serverNonce
        serverFirst = "r=\(nonce),s=\(Data(verifier.salt).base64EncodedString()),i=\(verifier.iterations)"
    }

    /// Checks the client-final-message; returns server-final-message (`v=…`) when the proof is right.
    func finish(clientFinal response: [UInt8]) throws(Failure) -> String {
        guard let clientFinal = String(validating: response, as: UTF8.self) else { throw .malformed("client-final-message is not UTF-8") }
        guard let proofRange = clientFinal.range(of: ",p=") else { throw .malformed("client-final-message has no proof") }
        let withoutProof = String(clientFinal[..<proofRange.lowerBound])
        guard Self.attribute("c", in: withoutProof) == Data(gs2Header.utf8).base64EncodedString() else {
            throw .malformed("client-final-message channel binding does not match its gs2 header")
        }
        guard Self.attribute("r", in: withoutProof) == nonce else { throw .malformed("client-final-message nonce does not match") }
        guard let proof = Data(base64Encoded: String(clientFinal[proofRange.upperBound...])), proof.count == 32 else {
            throw .malformed("client proof is not 32 bytes of base64")
        }
        let authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
        let clientSignature = SHA256.hmac(key: verifier.storedKey, message: authMessage)
        let clientKey = zip(proof, clientSignature).map { $0 ^ $1 }
        // Compared without an early exit, so the time taken says nothing about how much matched.
        let difference = zip(SHA256.hash(clientKey), verifier.storedKey).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) }
        guard difference == 0 else { throw .wrongPassword }
        return "v=" + Data(SHA256.hmac(key: verifier.serverKey, message: authMessage)).base64EncodedString()
    }

    private static func attribute(_ name: Character, in message: String) -> String? {
        for field in message.split(separator: ",") where field.count >= 2 && field.first == name && field.dropFirst().first == "=" {
            return String(field.dropFirst(2))
        }
        return nil
    }

    /// A fresh printable nonce (base64 of 18 random bytes, no commas).
    static func makeNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<18).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }
}
