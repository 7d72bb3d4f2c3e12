/// A Kafka topic partition, the key of a stored offset.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    /// The topic name (Kafka allows `[a-zA-Z0-9._-]`, so it never contains a NUL byte).
    public var topic: String
    /// The partition number, from 0.
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}
