import EddyEngine
import EddyWorkload
import Foundation
import Testing

/// Random messages, valid and broken, aggregated by the hot path and by a reference model built on
/// Foundation's JSONSerialization: per-group results and counters must match exactly.
@Suite struct HotPathPropertyTests {
    static let schema = RowSchema(columns: [
        .init(name: "event", kind: .string), .init(name: "n", kind: .int64), .init(name: "user", kind: .string),
    ])
    static let aggregates: [AggregateSpec] = [.init(.count, argument: nil), .init(.sum, argument: 1), .init(.count, argument: 2)]

    struct Reference {
        var results: [[ScalarValue]: (rows: Int64, sum: Int64?, users: Int64)] = [:]
        var skipped = 0
        var notObject = 0
        var wrongTypes = 0
        var rows = 0

        mutating func apply(_ bytes: [UInt8]) {
            guard !Self.hasTrailingComma(bytes),  // Foundation accepts `[1,]`; JSON does not
                let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            else {
                skipped += 1
                return
            }
            guard let fields = object as? [String: Any] else {
                notObject += 1
                return
            }
            rows += 1
            var key: ScalarValue = .null
            switch fields["event"] {
            case nil, is NSNull: break
            case let text as String: key = .string(text)
            default: wrongTypes += 1
            }
            var number: Int64?
            switch fields["n"] {
            case nil, is NSNull: break
            // Foundation answers `is Bool` for any NSNumber 0 or 1; JSON true/false have objCType "c".
            case let value as NSNumber where String(cString: value.objCType) != "c":
                let double = value.doubleValue
                if double == double.rounded() && abs(double) < 1e15 { number = Int64(double) } else { wrongTypes += 1 }
            default: wrongTypes += 1
            }
            var hasUser = false
            switch fields["user"] {
            case nil, is NSNull: break
            case is String: hasUser = true
            default: wrongTypes += 1
            }
            var entry = results[[key]] ?? (0, nil, 0)
            entry.rows += 1
            if let number { entry.sum = (entry.sum ?? 0) + number }
            if hasUser { entry.users += 1 }
            results[[key]] = entry
        }

        /// A `,` directly (but for whitespace) before `]` or `}`, outside strings.
        static func hasTrailingComma(_ bytes: [UInt8]) -> Bool {
            var inString = false
            var escaped = false
            var afterComma = false
            for byte in bytes {
                if inString {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""): inString = true; afterComma = false
                case UInt8(ascii: ","): afterComma = true
                case UInt8(ascii: "]"), UInt8(ascii: "}"): if afterComma { return true }
                case 0x20, 0x09, 0x0A, 0x0D: break
                default: afterComma = false
                }
            }
            return false
        }
    }

    struct MessageGenerator {
        var random: SplitMix64

        mutating func below(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
        mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

        mutating func space() -> String { ["", "", "", " ", "  ", "\n", "\t", " \r\n "][below(8)] }

        mutating func string() -> String {
            let pieces = ["a", "b", "é", "ж", "😀", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00", "\\t", "x y", ",", "}", "]"]
            return "\"" + (0..<below(6)).map { _ in pieces[below(pieces.count)] }.joined() + "\""
        }

        mutating func value(depth: Int) -> String {
            switch below(depth > 3 ? 4 : 6) {
            case 0: return string()
            case 1: return ["0", "-1", "42", "3.25", "-0", "1000000", "0.5"][below(7)]
            case 2: return ["true", "false", "null"][below(3)]
            case 3: return string()
            case 4: return "[" + space() + (0..<below(4)).map { _ in value(depth: depth + 1) }.joined(separator: "," + space()) + space() + "]"
            default:
                return "{" + space() + (0..<below(4)).map { index in
                    "\"k\(index)\"" + space() + ":" + space() + value(depth: depth + 1)
                }.joined(separator: "," + space()) + "}"
            }
        }

        mutating func event() -> String {
            switch below(20) {
            case 0: return "null"
            case 1: return "7"
            case 2: return "[\"click\"]"
            case 3: return "\"cl\\u0069ck\""
            case 4: return "\"cl\u{EF}ck\""
            case 5: return "\"\""
            default: return "\"" + UserEventGenerator.eventNames[below(5)] + "\""
            }
        }

        mutating func number() -> String {
            switch below(10) {
            case 0: return "null"
            case 1: return "\"5\""
            case 2: return "2.5"
            case 3: return "\(below(100)).0"
            case 4: return "true"
            default: return String(below(2001) - 1000)
            }
        }

        mutating func message() -> [UInt8] {
            var fields: [String] = []
            if chance(90) { fields.append("\"event\"" + space() + ":" + space() + event()) }
            if chance(70) { fields.append("\"n\"" + space() + ":" + space() + number()) }
            if chance(50) { fields.append("\"user\"" + space() + ":" + space() + (chance(90) ? string() : "1")) }
            for index in 0..<below(3) { fields.append("\"x\(index)\"" + space() + ":" + space() + value(depth: 1)) }
            for index in fields.indices.reversed() where index > 0 { fields.swapAt(index, below(index + 1)) }
            var bytes = Array((space() + "{" + space() + fields.joined(separator: "," + space()) + space() + "}" + space()).utf8)
            if chance(30) { mutate(&bytes) }
            return bytes
        }

        mutating func mutate(_ bytes: inout [UInt8]) {
            let noise: [UInt8] = [0x7B, 0x7D, 0x5B, 0x5D, 0x2C, 0x3A, 0x22, 0x5C, 0x78, 0x30, 0x20, 0xFF, 0xC3, 0x80, 0x01, 0x2D]
            let position = below(bytes.count + 1)
            switch below(4) {
            case 0: bytes.removeSubrange(position...)
            case 1: if position < bytes.count { bytes.remove(at: position) }
            case 2: bytes.insert(noise[below(noise.count)], at: position)
            default: if position < bytes.count { bytes[position] = noise[below(noise.count)] }
            }
        }
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func randomMessagesMatchTheReference(seed: UInt64) throws {
        var generator = MessageGenerator(random: SplitMix64(seed: seed))
        var view = Aggregator(schema: Self.schema, groupBy: [0], aggregates: Self.aggregates, filter: nil)
        var reference = Reference()
        let count = 3000
        for _ in 0..<count {
            let message = generator.message()
            message.withUnsafeBytes { view.apply($0) }
            reference.apply(message)
        }
        #expect(reference.skipped > count / 20, "the generator should break a good share of messages")
        #expect(reference.results.count >= 6)
        #expect(view.counters.rows == reference.rows)
        #expect(view.counters.skipped - view.counters[.notObject] == reference.skipped)
        #expect(view.counters[.notObject] == reference.notObject)
        #expect(view.counters.wrongTypeFields == reference.wrongTypes)
        let results = try view.table.results()
        #expect(results.count == reference.results.count)
        for (key, expected) in reference.results {
            let expectedValues: [ScalarValue] = [.int64(expected.rows), expected.sum.map(ScalarValue.int64) ?? .null, .int64(expected.users)]
            #expect(results[key] == expectedValues, "group \(key)")
        }
    }
}
