/// A command of `eddy dev-broker --control`: one line on the broker's stdin, answered by one line on its stdout
/// (`ok`, or `error: REASON`). The line protocol keeps the control channel free of sockets and ports: the drill
/// (or a person at a terminal) writes to the child's stdin and reads its stdout, and EOF ends the channel (the
/// broker keeps serving).
///
///     broker-down ID                       take broker ID down (connections closed, new ones refused)
///     broker-up ID                         bring broker ID back
///     leader TOPIC PARTITION ID            make broker ID the partition's leader
///     request-errors API_KEY CODE…         fail the next requests of Kafka API API_KEY (1 = Fetch) with these
///                                          Kafka error codes, one request each, in order
enum DevBrokerControl: Equatable, Sendable {
    case brokerDown(Int32)
    case brokerUp(Int32)
    case leader(topic: String, partition: Int32, broker: Int32)
    case requestErrors(apiKey: Int16, codes: [Int32])

    /// The Kafka API key of Fetch.
    static let fetchAPIKey: Int16 = 1

    /// The line that sends it (without the newline).
    var line: String {
        switch self {
        case .brokerDown(let id): "broker-down \(id)"
        case .brokerUp(let id): "broker-up \(id)"
        case .leader(let topic, let partition, let broker): "leader \(topic) \(partition) \(broker)"
        case .requestErrors(let apiKey, let codes): "request-errors \(apiKey) " + codes.map(String.init).joined(separator: " ")
        }
    }

    /// Parses one line; the error says what is wrong with it.
    init(parsing line: Substring) throws(DevBrokerControlError) {
        let words = line.split(whereSeparator: \.isWhitespace)
        func number<N: FixedWidthInteger>(_ index: Int, _ what: String) throws(DevBrokerControlError) -> N {
            guard index < words.count, let value = N(words[index]) else { throw DevBrokerControlError(reason: "'\(line)': \(what) must be a number") }
            return value
        }
        switch words.first {
        case "broker-down" where words.count == 2: self = .brokerDown(try number(1, "the broker id"))
        case "broker-up" where words.count == 2: self = .brokerUp(try number(1, "the broker id"))
        case "leader" where words.count == 4:
            self = .leader(topic: String(words[1]), partition: try number(2, "the partition"), broker: try number(3, "the broker id"))
        case "request-errors" where words.count >= 3:
            var codes: [Int32] = []
            for index in 2..<words.count { codes.append(try number(index, "each error code")) }
            self = .requestErrors(apiKey: try number(1, "the API key"), codes: codes)
        default:
            throw DevBrokerControlError(
                reason: "'\(line)' is not one of: broker-down ID, broker-up ID, leader TOPIC PARTITION ID, request-errors API_KEY CODE…")
        }
    }
}

struct DevBrokerControlError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
