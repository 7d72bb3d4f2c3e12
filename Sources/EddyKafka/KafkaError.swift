/// The one error type of `EddyKafka`: every failure of the consumer, the producer, the dev broker and the
/// configuration mapping is one of these.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, independent of librdkafka's own codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// An option value is missing, unknown or malformed.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// librdkafka refused to create a client.
        public static let clientCreation = Code("clientCreation")
        /// No broker of the bootstrap list answered within the connect timeout.
        public static let brokersUnreachable = Code("brokersUnreachable")
        /// The topic does not exist on the cluster.
        public static let topicNotFound = Code("topicNotFound")
        /// A partition number is outside the topic.
        public static let partitionNotFound = Code("partitionNotFound")
        /// `scan.startup.mode='timestamp'` could not be turned into offsets.
        public static let timestampLookupFailed = Code("timestampLookupFailed")
        /// A requested offset is not (or no longer) in the partition.
        public static let offsetOutOfRange = Code("offsetOutOfRange")
        /// Assigning, pausing, resuming or seeking partitions failed.
        public static let partitionControlFailed = Code("partitionControlFailed")
        /// A metadata or watermark request failed.
        public static let requestFailed = Code("requestFailed")
        /// A message could not be queued for sending.
        public static let produceFailed = Code("produceFailed")
        /// The broker did not acknowledge one or more messages.
        public static let deliveryFailed = Code("deliveryFailed")
        /// Messages were still unacknowledged when a flush timed out.
        public static let flushTimedOut = Code("flushTimedOut")
        /// The mock cluster refused a request.
        public static let mockCluster = Code("mockCluster")
        /// Any other error reported by librdkafka.
        public static let client = Code("client")
    }

    public let code: Code
    /// librdkafka's `rd_kafka_resp_err_t` value, where there is one.
    public let rdKafkaCode: Int32?
    /// A human explanation, fit for one log or error line. Never contains a secret.
    public let reason: String
    /// Whether the same call may succeed later without any change (a broker coming back, a queue draining).
    public let isRetriable: Bool
    /// Whether the client is unusable from now on and must be recreated.
    public let isFatal: Bool

    public init(code: Code, rdKafkaCode: Int32? = nil, reason: String, isRetriable: Bool = false, isFatal: Bool = false) {
        self.code = code
        self.rdKafkaCode = rdKafkaCode
        self.reason = reason
        self.isRetriable = isRetriable
        self.isFatal = isFatal
    }

    public var description: String { reason }
}
