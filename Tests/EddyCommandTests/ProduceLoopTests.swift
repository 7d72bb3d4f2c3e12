import Foundation
import Testing

@testable import eddy

/// `eddy produce --pad`: messages grown to a size with a "pad" field, still one JSON object.
struct ProduceLoopTests {
    private static let message = Array(#"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "page": "https://www.example.com/", "event": "click"}"#.utf8)

    @Test(arguments: [1_024, 4_096, Self.message.count + 5, Self.message.count + 13])
    func aPaddedMessageHasAtLeastTheSizeAndStaysTheSameObject(size: Int) throws {
        var buffer = Self.message
        ProduceLoop.pad(&buffer, to: size)
        #expect(buffer.count == max(size, Self.message.count + 11), "\(buffer.count)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer)) as? [String: String])
        #expect(object["event"] == "click" && object["user"] == "anna")
        #expect(object["pad"].map { $0.allSatisfy { $0 == "x" } } == true)
    }
}
