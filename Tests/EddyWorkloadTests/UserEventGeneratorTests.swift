import Foundation
import Glibc
import Testing

@testable import EddyWorkload

@Suite struct UserEventGeneratorTests {
    @Test func messagesAreJSONObjectsWithTheFourFields() throws {
        var generator = UserEventGenerator(seed: 42)
        let stamp = EventTimestamp(epochSeconds: 1_795_539_603)
        for _ in 0..<500 {
            var buffer: [UInt8] = []
            let eventIndex = generator.appendMessage(timestamp: stamp, to: &buffer)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer)) as? [String: String])
            #expect(Set(object.keys) == ["event_timestamp", "user", "page", "event"])
            #expect(object["event"] == UserEventGenerator.eventNames[eventIndex])
            #expect(object["event_timestamp"] == stamp.description)
            #expect(object["user"]!.contains("@"))
            #expect(object["page"]!.hasPrefix("https://www.example.com/"))
        }
    }

    @Test func sameSeedSameStreamOtherSeedOtherStream() {
        func stream(_ seed: UInt64) -> [UInt8] {
            var generator = UserEventGenerator(seed: seed)
            var buffer: [UInt8] = []
            for _ in 0..<100 { _ = generator.appendMessage(timestamp: EventTimestamp(epochSeconds: 0), to: &buffer) }
            return buffer
        }
        #expect(stream(7) == stream(7))
        #expect(stream(7) != stream(8))
    }

    @Test func populationHasTheOriginalsSizeAndEveryEventOccurs() {
        var generator = UserEventGenerator(seed: 1)
        #expect(Set(generator.users).count == 1000)
        #expect(Set(generator.pages).count == 100)
        var perEvent = [Int](repeating: 0, count: UserEventGenerator.eventNames.count)
        var buffer: [UInt8] = []
        for _ in 0..<10_000 {
            buffer.removeAll(keepingCapacity: true)
            perEvent[generator.appendMessage(timestamp: .now(), to: &buffer)] += 1
        }
        // Uniform over five events: each near 2000; 1700 is more than six standard deviations away.
        #expect(perEvent.allSatisfy { $0 > 1700 })
    }
}

@Suite struct EventTimestampTests {
    @Test func rendersLikeGmtime() {
        var random = SplitMix64(seed: 3)
        let samples: [Int64] = [0, 59, 86_399, 86_400, 951_782_400, 1_795_539_603, 4_102_444_799]
            + (0..<2000).map { _ in Int64(random.next() % 8_000_000_000) }
        for seconds in samples {
            var time = time_t(seconds)
            var parts = tm()
            gmtime_r(&time, &parts)
            let expected = String(
                format: "%04d-%02d-%02d %02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                parts.tm_hour, parts.tm_min, parts.tm_sec)
            #expect(EventTimestamp(epochSeconds: seconds).description == expected, "epoch \(seconds)")
        }
    }
}
