import NIOCore

/// A message from a PostgreSQL client (protocol version 3), decoded from one frame by `FrontendMessageDecoder`.
///
/// Strings are decoded as UTF-8 (the only client encoding Eddy speaks); a frame that does not hold what its
/// type says is a `PostgresProtocolViolation`, never a crash.
public enum FrontendMessage: Sendable, Equatable {
    /// Which object a `Describe` or `Close` names.
    public enum Target: Sendable, Equatable {
        case statement
        case portal
    }

    /// `Bind`: parameter values for a prepared statement, making a portal.
    public struct Bind: Sendable, Equatable {
        public var portal: String
        public var statement: String
        /// 0 (text) or 1 (binary): none means all text, one applies to all, else one per parameter.
        public var parameterFormats: [Int16]
        /// Raw values; nil is SQL NULL.
        public var parameters: [[UInt8]?]
        /// Formats of the result columns, with the same convention as `parameterFormats`.
        public var resultFormats: [Int16]
    }

    /// The start-up packet: protocol 3.0 and `name=value` parameters (`user`, `database`, `application_name`, …).
    case startup(parameters: [String: String])
    /// The client asks for TLS before start-up.
    case sslRequest
    /// The client asks for GSSAPI encryption before start-up.
    case gssEncryptionRequest
    /// Sent on a new connection to cancel the query running on another.
    case cancelRequest(processID: Int32, secretKey: Int32)
    /// `p`: a password, SASLInitialResponse or SASLResponse; which one depends on the authentication step.
    case authenticationResponse([UInt8])
    /// `Q`: the simple query protocol, one or more statements.
    case query(String)
    /// `P`
    case parse(statement: String, query: String, parameterTypes: [Int32])
    /// `B`
    case bind(Bind)
    /// `D`
    case describe(Target, name: String)
    /// `E`: run a portal, returning at most `maxRows` rows (0: all).
    case execute(portal: String, maxRows: Int32)
    /// `S`
    case sync
    /// `H`
    case flush
    /// `C`
    case close(Target, name: String)
    /// `X`
    case terminate
}

/// A frame that breaks the protocol: the connection it came on is closed with `08P01`.
public struct PostgresProtocolViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "protocol violation: \(reason)" }
}

extension FrontendMessage {
    /// Protocol 3.0, as the start-up packet's version field holds it.
    static let protocolVersion3: Int32 = 196_608
    static let sslRequestCode: Int32 = 80_877_103
    static let gssEncryptionRequestCode: Int32 = 80_877_104
    static let cancelRequestCode: Int32 = 80_877_102

    /// Decodes the body (after the length) of an untyped start-up frame.
    static func decodeStartup(_ body: inout ByteBuffer) throws(PostgresProtocolViolation) -> FrontendMessage {
        guard let code = body.readInteger(as: Int32.self) else { throw PostgresProtocolViolation("start-up packet shorter than its version field") }
        switch code {
        case sslRequestCode: return .sslRequest
        case gssEncryptionRequestCode: return .gssEncryptionRequest
        case cancelRequestCode:
            guard let processID = body.readInteger(as: Int32.self), let secret = body.readInteger(as: Int32.self) else {
                throw PostgresProtocolViolation("CancelRequest without a process id and key")
            }
            return .cancelRequest(processID: processID, secretKey: secret)
        case protocolVersion3:
            var parameters: [String: String] = [:]
            while true {
                let name = try body.readCString("a start-up parameter name")
                if name.isEmpty { break }
                parameters[name] = try body.readCString("the value of start-up parameter '\(name)'")
            }
            return .startup(parameters: parameters)
        default:
            throw PostgresProtocolViolation("unsupported frontend protocol \(code >> 16).\(code & 0xFFFF): Eddy speaks 3.0")
        }
    }

    /// Decodes the body (after type and length) of a typed frame.
    static func decode(type: UInt8, body: inout ByteBuffer) throws(PostgresProtocolViolation) -> FrontendMessage {
        let message: FrontendMessage
        switch type {
        case UInt8(ascii: "p"):
            message = .authenticationResponse(body.readBytes(length: body.readableBytes) ?? [])
        case UInt8(ascii: "Q"):
            message = .query(try body.readCString("the query text"))
        case UInt8(ascii: "P"):
            let name = try body.readCString("the statement name")
            let query = try body.readCString("the query text")
            let count = try body.readCount("parameter type count")
            var types: [Int32] = []
            for _ in 0..<count { types.append(try body.readInt32("a parameter type")) }
            message = .parse(statement: name, query: query, parameterTypes: types)
        case UInt8(ascii: "B"):
            let portal = try body.readCString("the portal name")
            let statement = try body.readCString("the statement name")
            var formats: [Int16] = []
            for _ in 0..<(try body.readCount("parameter format count")) { formats.append(try body.readFormat()) }
            var parameters: [[UInt8]?] = []
            for _ in 0..<(try body.readCount("parameter count")) {
                let length = try body.readInt32("a parameter length")
                if length == -1 {
                    parameters.append(nil)
                } else {
                    guard length >= 0, let bytes = body.readBytes(length: Int(length)) else {
                        throw PostgresProtocolViolation("Bind parameter of length \(length) with \(body.readableBytes) bytes left")
                    }
                    parameters.append(bytes)
                }
            }
            var results: [Int16] = []
            for _ in 0..<(try body.readCount("result format count")) { results.append(try body.readFormat()) }
            message = .bind(Bind(portal: portal, statement: statement, parameterFormats: formats, parameters: parameters, resultFormats: results))
        case UInt8(ascii: "D"):
            message = .describe(try body.readTarget("Describe"), name: try body.readCString("the name to describe"))
        case UInt8(ascii: "E"):
            let portal = try body.readCString("the portal name")
            message = .execute(portal: portal, maxRows: try body.readInt32("the row limit"))
        case UInt8(ascii: "S"): message = .sync
        case UInt8(ascii: "H"): message = .flush
        case UInt8(ascii: "C"):
            message = .close(try body.readTarget("Close"), name: try body.readCString("the name to close"))
        case UInt8(ascii: "X"): message = .terminate
        case UInt8(ascii: "F"): throw PostgresProtocolViolation("the function call protocol is not supported")
        case UInt8(ascii: "d"), UInt8(ascii: "c"), UInt8(ascii: "f"): throw PostgresProtocolViolation("COPY is not supported")
        default:
            throw PostgresProtocolViolation("unknown message type 0x\(String(type, radix: 16))")
        }
        guard body.readableBytes == 0 else {
            throw PostgresProtocolViolation("\(body.readableBytes) bytes left over in a '\(Character(Unicode.Scalar(type)))' message")
        }
        return message
    }
}

extension ByteBuffer {
    fileprivate mutating func readCString(_ what: String) throws(PostgresProtocolViolation) -> String {
        guard let view = readableBytesView.firstIndex(of: 0) else { throw PostgresProtocolViolation("\(what) is not terminated") }
        let length = view - readerIndex
        guard let bytes = readBytes(length: length) else { throw PostgresProtocolViolation("\(what) is truncated") }
        moveReaderIndex(forwardBy: 1)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw PostgresProtocolViolation("\(what) is not valid UTF-8") }
        return text
    }

    fileprivate mutating func readInt32(_ what: String) throws(PostgresProtocolViolation) -> Int32 {
        guard let value = readInteger(as: Int32.self) else { throw PostgresProtocolViolation("\(what) is truncated") }
        return value
    }

    fileprivate mutating func readCount(_ what: String) throws(PostgresProtocolViolation) -> Int {
        guard let value = readInteger(as: Int16.self) else { throw PostgresProtocolViolation("\(what) is truncated") }
        guard value >= 0 else { throw PostgresProtocolViolation("\(what) is negative (\(value))") }
        return Int(value)
    }

    fileprivate mutating func readFormat() throws(PostgresProtocolViolation) -> Int16 {
        guard let value = readInteger(as: Int16.self) else { throw PostgresProtocolViolation("a format code is truncated") }
        guard value == 0 || value == 1 else { throw PostgresProtocolViolation("format code \(value) is neither 0 (text) nor 1 (binary)") }
        return value
    }

    fileprivate mutating func readTarget(_ message: String) throws(PostgresProtocolViolation) -> FrontendMessage.Target {
        switch readInteger(as: UInt8.self) {
        case UInt8(ascii: "S"): .statement
        case UInt8(ascii: "P"): .portal
        default: throw PostgresProtocolViolation("\(message) names neither a statement ('S') nor a portal ('P')")
        }
    }
}
