import NIOCore

/// Cuts the byte stream of one connection into `FrontendMessage`s.
///
/// Until the start-up packet has come, frames are untyped (length first); SSLRequest and GSSENCRequest
/// may precede it. After it, every frame is a type byte and a length. A length outside its bounds, or a
/// body that does not parse, throws `PostgresProtocolViolation`: the connection is closed, no other.
struct FrontendMessageDecoder: ByteToMessageDecoder {
    typealias InboundOut = FrontendMessage

    /// The largest typed frame accepted, length field included. Queries and Bind parameters are small; a
    /// larger frame is a broken or hostile client.
    let maximumMessageBytes: Int
    /// Start-up packets are short (PostgreSQL itself refuses more than 10,000 bytes).
    static let maximumStartupBytes = 10_000
    private var awaitingStartup = true

    init(maximumMessageBytes: Int) {
        self.maximumMessageBytes = maximumMessageBytes
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try decodeOne(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(message))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A frame cut off by the close is dropped: the client is gone.
        try decode(context: context, buffer: &buffer)
    }

    /// The next whole message in `buffer`, or nil when more bytes are needed. Pure: tests call it directly.
    mutating func decodeOne(_ buffer: inout ByteBuffer) throws(PostgresProtocolViolation) -> FrontendMessage? {
        if awaitingStartup {
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
            guard length >= 8, length <= Self.maximumStartupBytes else {
                throw PostgresProtocolViolation("start-up packet length \(length) is outside 8...\(Self.maximumStartupBytes)")
            }
            guard buffer.readableBytes >= Int(length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 4)
            var body = buffer.readSlice(length: Int(length) - 4)!
            let message = try FrontendMessage.decodeStartup(&body)
            if case .startup = message { awaitingStartup = false }
            if body.readableBytes > 0 {
                throw PostgresProtocolViolation("\(body.readableBytes) bytes left over in a start-up frame")
            }
            return message
        }
        guard buffer.readableBytes >= 5,
            let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 1, as: Int32.self)
        else { return nil }
        guard length >= 4, Int(length) <= maximumMessageBytes else {
            throw PostgresProtocolViolation("message length \(length) is outside 4...\(maximumMessageBytes)")
        }
        guard buffer.readableBytes >= 1 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 5)
        var body = buffer.readSlice(length: Int(length) - 4)!
        return try FrontendMessage.decode(type: type, body: &body)
    }
}
