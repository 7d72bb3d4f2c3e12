import Testing

@testable import EddyState

@Suite struct StateEncodingTests {
    @Test(arguments: [
        TopicPartition(topic: "test", partition: 0),
        TopicPartition(topic: "user.events-v2_x", partition: 2_147_483_647),
        TopicPartition(topic: "t", partition: 300),
    ])
    func offsetKeysRoundTrip(_ topicPartition: TopicPartition) {
        let key = StateEncoding.offsetKey(topicPartition)
        #expect(key.withUnsafeBytes { StateEncoding.decodeOffsetKey($0) } == topicPartition)
    }

    @Test func offsetKeysSortByTopicThenPartition() {
        let partitions = [
            TopicPartition(topic: "a", partition: 1), TopicPartition(topic: "a", partition: 256),
            TopicPartition(topic: "ab", partition: 0), TopicPartition(topic: "b", partition: 0),
        ]
        let keys = partitions.map(StateEncoding.offsetKey)
        #expect(keys == keys.sorted { $0.lexicographicallyPrecedes($1) })
    }

    @Test func malformedValuesAreRejected() {
        #expect([UInt8](repeating: 0, count: 7).withUnsafeBytes { StateEncoding.decodeUInt64($0) } == nil)
        #expect(StateEncoding.encode(UInt64(0x0102)).withUnsafeBytes { StateEncoding.decodeUInt64($0) } == 0x0102)
        #expect([UInt8]([1, 2, 3]).withUnsafeBytes { StateEncoding.decodeOffsetKey($0) } == nil)
    }
}
