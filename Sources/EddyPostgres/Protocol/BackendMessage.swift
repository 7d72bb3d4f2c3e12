import EddySQL
import NIOCore

/// A column of a result, as `RowDescription` announces it.
public struct ResultColumn: Sendable, Equatable {
    public var name: String
    public var type: PostgresType

    public init(name: String, type: PostgresType) {
        self.name = name
        self.type = type
    }
}

/// An error or notice as `ErrorResponse` carries it: SQLSTATE, message, and where in the query.
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        case error = "ERROR"
        case fatal = "FATAL"
    }

    public var severity: Severity
    /// Five characters: `42601` syntax error, `42P01` undefined table, `28P01` wrong password, …
    public var sqlState: String
    public var message: String
    /// 1-based character position in the query text.
    public var position: Int?
    public var hint: String?

    public init(_ sqlState: String, _ message: String, severity: Severity = .error, position: Int? = nil, hint: String? = nil) {
        self.sqlState = sqlState
        self.message = message
        self.severity = severity
        self.position = position
        self.hint = hint
    }

    public var description: String { "\(severity.rawValue) \(sqlState): \(message)" }

    static func protocolViolation(_ violation: PostgresProtocolViolation) -> PostgresError {
        PostgresError("08P01", violation.reason, severity: .fatal)
    }
}

/// A message from the server, written by `encode(into:)`.
enum BackendMessage: Sendable, Equatable {
    /// The one-byte answer to SSLRequest and GSSENCRequest: no encryption here.
    case encryptionRefused
    case authenticationOk
    case authenticationSASL(mechanisms: [String])
    case authenticationSASLContinue([UInt8])
    case authenticationSASLFinal([UInt8])
    case parameterStatus(name: String, value: String)
    case backendKeyData(processID: Int32, secretKey: Int32)
    /// `I` idle, `T` in a transaction block, `E` in a failed one.
    case readyForQuery(status: UInt8)
    /// Columns, each with its format code.
    case rowDescription([ResultColumn], formats: [Int16])
    case dataRow([SQLValue], types: [PostgresType], formats: [Int16])
    case commandComplete(tag: String)
    case emptyQueryResponse
    case error(PostgresError)
    case parseComplete
    case bindComplete
    case closeComplete
    case noData
    case portalSuspended
    case parameterDescription([Int32])

    func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .encryptionRefused:
            buffer.writeInteger(UInt8(ascii: "N"))
        case .authenticationOk:
            framed("R", &buffer) { $0.writeInteger(Int32(0)) }
        case .authenticationSASL(let mechanisms):
            framed("R", &buffer) {
                $0.writeInteger(Int32(10))
                for mechanism in mechanisms { $0.writeNullTerminatedString(mechanism) }
                $0.writeInteger(UInt8(0))
            }
        case .authenticationSASLContinue(let data):
            framed("R", &buffer) {
                $0.writeInteger(Int32(11))
                $0.writeBytes(data)
            }
        case .authenticationSASLFinal(let data):
            framed("R", &buffer) {
                $0.writeInteger(Int32(12))
                $0.writeBytes(data)
            }
        case .parameterStatus(let name, let value):
            framed("S", &buffer) {
                $0.writeNullTerminatedString(name)
                $0.writeNullTerminatedString(value)
            }
        case .backendKeyData(let processID, let secretKey):
            framed("K", &buffer) { $0.writeMultipleIntegers(processID, secretKey) }
        case .readyForQuery(let status):
            framed("Z", &buffer) { $0.writeInteger(status) }
        case .rowDescription(let columns, let formats):
            framed("T", &buffer) {
                $0.writeInteger(Int16(columns.count))
                for (index, column) in columns.enumerated() {
                    $0.writeNullTerminatedString(column.name)
                    $0.writeMultipleIntegers(Int32(0), Int16(0), column.type.oid, column.type.size, Int32(-1), Self.format(formats, index))
                }
            }
        case .dataRow(let values, let types, let formats):
            framed("D", &buffer) {
                $0.writeInteger(Int16(values.count))
                for (index, value) in values.enumerated() {
                    ValueEncoding.write(value, as: index < types.count ? types[index] : .text, binary: Self.format(formats, index) == 1, into: &$0)
                }
            }
        case .commandComplete(let tag):
            framed("C", &buffer) { $0.writeNullTerminatedString(tag) }
        case .emptyQueryResponse:
            framed("I", &buffer) { _ in }
        case .error(let error):
            framed("E", &buffer) { body in
                func field(_ code: Character, _ value: String) {
                    body.writeInteger(code.asciiValue!)
                    body.writeNullTerminatedString(value)
                }
                field("S", error.severity.rawValue)
                field("V", error.severity.rawValue)
                field("C", error.sqlState)
                field("M", error.message)
                if let hint = error.hint { field("H", hint) }
                if let position = error.position { field("P", String(position)) }
                body.writeInteger(UInt8(0))
            }
        case .parseComplete: framed("1", &buffer) { _ in }
        case .bindComplete: framed("2", &buffer) { _ in }
        case .closeComplete: framed("3", &buffer) { _ in }
        case .noData: framed("n", &buffer) { _ in }
        case .portalSuspended: framed("s", &buffer) { _ in }
        case .parameterDescription(let types):
            framed("t", &buffer) {
                $0.writeInteger(Int16(types.count))
                for type in types { $0.writeInteger(type) }
            }
        }
    }

    /// The format of column `index` under the protocol's convention: none is text, one applies to all.
    static func format(_ formats: [Int16], _ index: Int) -> Int16 {
        switch formats.count {
        case 0: 0
        case 1: formats[0]
        default: index < formats.count ? formats[index] : 0
        }
    }

    private func framed(_ type: Character, _ buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        buffer.writeInteger(type.asciiValue!)
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        body(&buffer)
        buffer.setInteger(Int32(buffer.writerIndex - lengthIndex), at: lengthIndex)
    }
}
