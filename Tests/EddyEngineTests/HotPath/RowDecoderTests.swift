import EddyEngine
import Testing

@Suite struct RowDecoderTests {
    let one = schema(("s", .string))

    @Test func decodesTheExampleMessage() {
        let message = #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna.smith12@example.org", "page": "https://www.example.com/docs/7", "event": "click"}"#
        let micros = (daysSince1970(2026, 11, 24) * 86_400 + 17 * 3600 + 3) * 1_000_000
        #expect(decode(message, userEvents) == .row([
            .int(micros), .text("anna.smith12@example.org"), .text("https://www.example.com/docs/7"), .text("click"),
        ]))
    }

    @Test func resolvesEveryEscape() {
        #expect(decode(#"{"s": "q\" b\\ s\/ \b\f\n\r\t end"}"#, one) == .row([.text("q\" b\\ s/ \u{08}\u{0C}\n\r\t end")]))
        #expect(decode(#"{"s": "caf\u00e9 \u00E9"}"#, one) == .row([.text("café é")]))
        #expect(decode(#"{"s": "\u0041\u07ff\u0800\uffff"}"#, one) == .row([.text("A\u{7FF}\u{800}\u{FFFF}")]))
        #expect(decode(#"{"s": "\u0000"}"#, one) == .row([.string([0])]))
        #expect(decode(#"{"s": "\ud83d\ude00 \uD83D\uDE00"}"#, one) == .row([.text("😀 😀")]))
        #expect(decode(#"{"s": "\udbff\udfff"}"#, one) == .row([.text("\u{10FFFF}")]))
        // Raw UTF-8 passes through unchanged.
        #expect(decode(#"{"s": "é😀ж"}"#, one) == .row([.text("é😀ж")]))
    }

    @Test func escapesAlsoWorkInSkippedValuesAndKeys() {
        #expect(decode(#"{"x": "\n\u00e9\ud83d\ude00", "\u0073": "k"}"#, one) == .row([.text("k")]))
        #expect(decode(#"{"x": ["\"", {"\\": "\/"}], "s": "v\"w"}"#, one) == .row([.text("v\"w")]))
    }

    @Test func rejectsLoneSurrogatesAndBadEscapes() {
        for body in [
            #""\ud83d""#, #""\ud83d x""#, #""\ude00""#, #""\ud83d\u0041""#, #""\ud83d\ud83d""#, #""\ud83d\""#,
            #""\x""#, #""\u12""#, #""\u12g4""#, #""\'""#, #""\U0041""#,
        ] {
            #expect(decode(#"{"s": \#(body)}"#, one) == .skipped(.notJSON), "\(body)")
            #expect(decode(#"{"other": \#(body), "s": "a"}"#, one) == .skipped(.notJSON), "skipped \(body)")
        }
    }

    @Test func rejectsControlCharactersInStrings() {
        for control: UInt8 in [0x00, 0x01, 0x09, 0x0A, 0x1F] {
            #expect(decode(Array(#"{"s": "a"#.utf8) + [control] + Array(#""}"#.utf8), one) == .skipped(.notJSON))
        }
        #expect(decode(Array(#"{"s": "a"#.utf8) + [0x7F] + Array(#""}"#.utf8), one) == .row([.string([0x61, 0x7F])]))
    }

    @Test func validatesUTF8() {
        let invalid: [[UInt8]] = [
            [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC3], [0xC3, 0x41], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xE2, 0x82], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xF0, 0x9F, 0x98],
        ]
        for bytes in invalid {
            #expect(decode(Array(#"{"s": "ab"#.utf8) + bytes + Array(#"cdefghijkl"}"#.utf8), one) == .skipped(.invalidUTF8), "\(bytes)")
            // Near the end of the message (the scanner's tail path) and in a skipped field.
            #expect(decode(Array(#"{"s": ""#.utf8) + bytes + Array(#""}"#.utf8), one) == .skipped(.invalidUTF8), "tail \(bytes)")
            #expect(decode(Array(#"{"x": ""#.utf8) + bytes + Array(#"", "s": "a"}"#.utf8), one) == .skipped(.invalidUTF8))
        }
        let valid: [[UInt8]] = [[0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80],
                                [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF]]
        for bytes in valid {
            #expect(decode(Array(#"{"s": ""#.utf8) + bytes + Array(#""}"#.utf8), one) == .row([.string(bytes)]), "\(bytes)")
        }
        // A message cut inside a multi-byte character.
        #expect(decode(Array(#"{"s": "caf"#.utf8) + [0xC3], one) == .skipped(.invalidUTF8))
        // Non-ASCII outside strings is a syntax error.
        #expect(decode([0xEF, 0xBB, 0xBF] + Array(#"{"s": "a"}"#.utf8), one) == .skipped(.notJSON))
    }

    @Test func nullMissingAndWrongTypePerKind() {
        let kinds: [(ColumnKind, good: String, expected: Cell, wrong: [String])] = [
            (.string, #""x""#, .text("x"), ["1", "true", "[]", "{}", "-0.5"]),
            (.int64, "42", .int(42), [#""42""#, "true", "[1]", "{}", "4.2"]),
            (.double, "4.5", .double(4.5), [#""4.5""#, "false", "[]", "{\"a\":1}"]),
            (.decimal, "19.99", .double(19.99), [#""19.99""#, "true"]),
            (.bool, "true", .bool(true), [#""true""#, "1", "0", "[]"]),
            // Numbers are times (guessed unit, `timeNumbersFollowTheSourceOption`) within years 1-9999.
            (.timestamp, #""1970-01-01 00:00:01""#, .int(1_000_000), ["1e30", "-1e20", #""yesterday""#, "true", "[]"]),
            (.timestamptz, #""1970-01-01T00:00:01Z""#, .int(1_000_000), ["1e30", #""1970-01-01 25:00:00""#]),
            (.date, #""1970-01-02""#, .int(1), ["1", #""1970-01-02 00:00:00""#, #""1970-1-2""#]),
        ]
        for (kind, good, expected, wrongs) in kinds {
            let schema = schema(("c", kind), ("other", .string))
            #expect(decode(#"{"c": \#(good), "other": "o"}"#, schema) == .row([expected, .text("o")]), "\(kind)")
            #expect(decode(#"{"other": "o"}"#, schema) == .row([.null, .text("o")]), "\(kind) missing")
            #expect(decode(#"{"c": null, "other": "o"}"#, schema) == .row([.null, .text("o")]), "\(kind) null")
            for wrong in wrongs {
                #expect(decode(#"{"c": \#(wrong), "other": "o"}"#, schema) == .row([.wrongType, .text("o")]), "\(kind) \(wrong)")
            }
        }
        #expect(decode(#"{"c": false}"#, schema(("c", .bool))) == .row([.bool(false)]))
    }

    @Test func timeNumbersFollowTheSourceOption() {
        let second: Int64 = 1_700_000_000
        func times(_ unit: TimeNumberUnit, _ json: String) -> Decoded {
            decode(#"{"t": \#(json), "z": \#(json)}"#, RowSchema(columns: [.init(name: "t", kind: .timestamp), .init(name: "z", kind: .timestamptz)], timeNumbers: unit))
        }
        func both(_ micros: Int64) -> Decoded { .row([.int(micros), .int(micros)]) }
        #expect(times(.seconds, "1700000000") == both(second * 1_000_000))
        #expect(times(.seconds, "1700000000.25") == both(second * 1_000_000 + 250_000))
        #expect(times(.seconds, "-1") == both(-1_000_000))
        #expect(times(.milliseconds, "1700000000123") == both(second * 1_000_000 + 123_000))
        #expect(times(.microseconds, "1700000000123456") == both(second * 1_000_000 + 123_456))
        // Guessed by magnitude, as RisingWave's guess_number_unit: each of these is the same instant.
        for json in ["1700000000", "1700000000000", "1700000000000000", "1700000000000000000"] {
            #expect(times(.guess, json) == both(second * 1_000_000), "\(json)")
        }
        // Strings stay ISO text in every mode; numbers are a wrong type when the mode says strings only.
        #expect(times(.milliseconds, #""2023-11-14 22:13:20""#) == both(second * 1_000_000))
        #expect(times(.none, "1700000000") == .row([.wrongType, .wrongType]))
        // Beyond year 9999, or overflowing: a wrong type (counted), never a trap.
        #expect(times(.seconds, "253402300800") == .row([.wrongType, .wrongType]))
        #expect(times(.microseconds, "9223372036854775807") == .row([.wrongType, .wrongType]))
        #expect(times(.seconds, "9223372036854775807") == .row([.wrongType, .wrongType]))
        #expect(times(.milliseconds, "1e300") == .row([.wrongType, .wrongType]))
    }

    @Test func exactKeyMatchingWhenIgnoringKeyCaseIsOff() {
        let exact = RowSchema(columns: [.init(name: "event", kind: .string)], ignoresKeyCase: false)
        #expect(decode(#"{"Event": "a"}"#, exact) == .row([.null]))
        #expect(decode(#"{"Event": "a", "event": "b"}"#, exact) == .row([.text("b")]))
        #expect(decode(#"{"Event": "a"}"#, schema(("event", .string))) == .row([.text("a")]))
    }

    @Test func nestedPathsAreReadInOnePass() {
        let nested = RowSchema(columns: [
            .init(name: "(device).os", kind: .string, origin: .path(root: "device", steps: [.field("os")])),
            .init(name: "(device).b.c", kind: .int64, origin: .path(root: "device", steps: [.field("b"), .field("c")])),
            .init(name: "payload", kind: .string, reading: .json),
            .init(name: "payload->>'k'", kind: .string, origin: .path(root: "payload", steps: [.field("k")]), reading: .text),
            .init(name: "payload->'k'", kind: .string, origin: .path(root: "payload", steps: [.field("k")]), reading: .json),
            .init(name: "payload->'list'->>1", kind: .string, origin: .path(root: "payload", steps: [.field("list"), .index(1)]), reading: .text),
            .init(name: "(payload->>'n')::INT", kind: .int64, origin: .path(root: "payload", steps: [.field("n")]), reading: .castText),
            .init(name: "event", kind: .string),
        ])
        let message = #"{"device": {"os": "linux", "b": {"c": 7, "d": [1, {"x": 2}]}}, "payload": {"k": "v\"w", "list": [10, {"a": null}, 3], "n": "42"}, "event": "click"}"#
        #expect(decode(message, nested) == .row([
            .text("linux"), .int(7), .text(#"{"k": "v\"w", "list": [10, {"a": null}, 3], "n": "42"}"#), .text("v\"w"), .text(#""v\"w""#),
            .text(#"{"a": null}"#), .int(42), .text("click"),
        ]))
        // Numbers cast as numbers; a field of another case matches, an exact one wins; missing and null are NULL.
        #expect(decode(#"{"Device": {"OS": "mac"}, "payload": {"n": 5, "k": 1.5, "list": []}}"#, nested) == .row([
            .text("mac"), .null, .text(#"{"n": 5, "k": 1.5, "list": []}"#), .text("1.5"), .text("1.5"), .null, .int(5), .null,
        ]))
        #expect(decode(#"{"device": {"os": "exact", "OS": "folded"}, "payload": null}"#, nested) == .row([
            .text("exact"), .null, .null, .null, .null, .null, .null, .null,
        ]))
        // A value of the wrong shape: NULL, counted for typed and cast columns; text that is not a number: wrong type.
        #expect(decode(#"{"device": "flat", "payload": {"n": "forty", "k": {"deep": [1]}}}"#, nested) == .row([
            .null, .null, .text(#"{"n": "forty", "k": {"deep": [1]}}"#), .text(#"{"deep": [1]}"#), .text(#"{"deep": [1]}"#), .null, .wrongType, .null,
        ]))
        #expect(decode(#"{"device": {"b": {"c": "x"}}}"#, nested) == .row([.null, .wrongType, .null, .null, .null, .null, .null, .null]))
        // Nested values are still validated and depth-limited.
        #expect(decode(#"{"device": {"os": "a", "b": {"c": 1,}}}"#, nested) == .skipped(.notJSON))
        #expect(decode(#"{"device": {"b": {"c": [[[1]]]}}}"#, nested, limits: DecoderLimits(maxDepth: 4)) == .skipped(.tooDeep))
        #expect(decode(#"{"payload": {"list": [0, [[1]]]}}"#, nested, limits: DecoderLimits(maxDepth: 3)) == .skipped(.tooDeep))
    }

    @Test func skipsNestedValuesButValidatesThem() {
        let nested = #"{"a": [1, -2.5e3, "x", true, false, null, {"b": {"c": [[], {}, [{}]]}}], "s": "v", "z": {}}"#
        #expect(decode(nested, one) == .row([.text("v")]))
        for broken in [
            #"{"a": [1, 2,], "s": "v"}"#, #"{"a": {"b" 1}, "s": "v"}"#, #"{"a": {"b": 1,}, "s": "v"}"#,
            #"{"a": [1 2], "s": "v"}"#, #"{"a": {1: 2}, "s": "v"}"#, #"{"a": [}, "s": "v"}"#, #"{"a": {]}, "s": "v"}"#,
            #"{"a": [tru], "s": "v"}"#, #"{"a": [nul], "s": "v"}"#, #"{"a": [01], "s": "v"}"#, #"{"a": [[1], "s": "v"}"#,
        ] {
            #expect(decode(broken, one) == .skipped(.notJSON), "\(broken)")
        }
    }

    @Test func enforcesTheDepthLimit() {
        let limits = DecoderLimits(maxDepth: 3)
        #expect(decode(#"{"a": {"b": [1]}, "s": "v"}"#, one, limits: limits) == .row([.text("v")]))
        #expect(decode(#"{"a": {"b": [[1]]}, "s": "v"}"#, one, limits: limits) == .skipped(.tooDeep))
        #expect(decode(#"{"s": [[[]]]}"#, one, limits: limits) == .skipped(.tooDeep))
        #expect(decode(#"{"s": [[]]}"#, one, limits: limits) == .row([.wrongType]))
        #expect(decode(#"[[[[1]]]]"#, one, limits: limits) == .skipped(.tooDeep))
        #expect(decode(#"[[[1]]]"#, one, limits: limits) == .skipped(.notObject))
        #expect(decode(#"{"s": "v"}"#, one, limits: DecoderLimits(maxDepth: 1)) == .row([.text("v")]))
        #expect(decode(#"{"a": {}}"#, one, limits: DecoderLimits(maxDepth: 1)) == .skipped(.tooDeep))
        // The default of 64, beyond one 64-bit word of the container stack.
        let deep = String(repeating: "[", count: 63) + String(repeating: "]", count: 63)
        #expect(decode(#"{"a": \#(deep), "s": "v"}"#, one) == .row([.text("v")]))
        #expect(decode(#"{"a": [\#(deep)], "s": "v"}"#, one) == .skipped(.tooDeep))
        let mixed = String(repeating: #"{"k": ["#, count: 100) + "1" + String(repeating: "]}", count: 100)
        #expect(decode(#"{"a": \#(mixed), "s": "v"}"#, one, limits: DecoderLimits(maxDepth: 201)) == .row([.text("v")]))
        #expect(decode(#"{"a": \#(mixed), "s": "v"}"#, one, limits: DecoderLimits(maxDepth: 200)) == .skipped(.tooDeep))
    }

    @Test func enforcesTheSizeLimitWithoutScanning() {
        let limits = DecoderLimits(maxMessageBytes: 12)
        #expect(decode(#"{"s": "abc"}"#, one, limits: limits) == .row([.text("abc")]))
        #expect(decode(#"{"s": "abcd"}"#, one, limits: limits) == .skipped(.tooLarge))
        // Garbage over the limit is too large, not malformed: it is never looked at.
        #expect(decode([UInt8](repeating: 0xFF, count: 13), one, limits: limits) == .skipped(.tooLarge))
    }

    @Test func emptyAndNonObjectMessages() {
        #expect(decode([], one) == .skipped(.emptyMessage))
        #expect(decode(" \n\t\r ", one) == .skipped(.emptyMessage))
        for value in ["[]", "[1, {\"s\": 2}]", #""s""#, "1", "-0.5", "true", "false", "null", " [ ] "] {
            #expect(decode(value, one) == .skipped(.notObject), "\(value)")
        }
        for value in ["[", "[1,]", #""s"#, "01", "nul", "x", "}", "{]", "]", "1 2", "[] []", "\"a\" x"] {
            #expect(decode(value, one) == .skipped(.notJSON), "\(value)")
        }
    }

    @Test func everyTruncationOfAMessageIsSkipped() {
        let message = Array(#"{"event_timestamp": "2026-11-24 17:00:03", "user": "é\u00e9", "n": [1, {"x": null}], "event": "click", "t": true}"#.utf8)
        for length in 0..<message.count {
            let decoded = decode(Array(message[..<length]), userEvents)
            // Cut inside "é": the scan meets the incomplete character before the missing quote.
            let expected: SkipReason = length == 0 ? .emptyMessage : (message[length] & 0xC0 == 0x80 ? .invalidUTF8 : .notJSON)
            #expect(decoded == .skipped(expected), "prefix \(length)")
        }
        if case .row = decode(message, userEvents) {} else { Issue.record("the whole message decodes") }
    }

    @Test func rejectsTrailingGarbage() {
        #expect(decode(#"{"s": "a"} "#, one) == .row([.text("a")]))
        for suffix in ["x", "}", "{}", ",", "0", "\"", "\u{0}"] {
            #expect(decode(#"{"s": "a"}"# + suffix, one) == .skipped(.notJSON), "\(suffix)")
        }
    }

    @Test func acceptsWhitespaceEverywhere() {
        let spaced = " \t\r\n{ \n\"s\" \t:\r \"a\" \n, \"n\"\n:\n[ 1 ,\t{ \"x\" : null } ] , \"b\" : true\r\n}\t \n"
        #expect(decode(spaced, schema(("s", .string), ("b", .bool))) == .row([.text("a"), .bool(true)]))
        #expect(decode("{}", one) == .row([.null]))
        #expect(decode("{ \n }", one) == .row([.null]))
        // Only JSON's four whitespace characters.
        #expect(decode("{\u{0B}\"s\": \"a\"}", one) == .skipped(.notJSON))
        #expect(decode("{\u{A0}\"s\": \"a\"}", one) == .skipped(.notJSON))
    }

    @Test func duplicateKeysLastWins() {
        let schema = schema(("s", .string), ("n", .int64))
        #expect(decode(#"{"s": "a", "n": 1, "s": "b", "n": 2}"#, schema) == .row([.text("b"), .int(2)]))
        #expect(decode(#"{"s": "a", "s": null}"#, schema) == .row([.null, .null]))
        #expect(decode(#"{"s": 1, "s": "ok"}"#, schema) == .row([.text("ok"), .null]))
        #expect(decode(#"{"s": "ok", "s": 1}"#, schema) == .row([.wrongType, .null]))
        #expect(decode(#"{"s": "\u00e9", "s": "x", "s": "\n"}"#, schema) == .row([.text("\n"), .null]))
    }

    @Test func fieldNamesMatchExactlyFirstThenIgnoringASCIICase() {
        let schema = schema(("event", .string), ("pageViewCount", .int64))
        #expect(decode(#"{"EVENT": "a", "PageViewCount": 3}"#, schema) == .row([.text("a"), .int(3)]))
        #expect(decode(#"{"Event": "a", "event": "b", "EVENT": "c"}"#, schema) == .row([.text("b"), .null]))
        #expect(decode(#"{"event": "b", "Event": "a"}"#, schema) == .row([.text("b"), .null]))
        #expect(decode(#"{"Event": "a", "EVENT": "c"}"#, schema) == .row([.text("c"), .null]))
        #expect(decode(#"{"even": "a", "events": "b", "évent": "c", "event ": "d"}"#, schema) == .row([.null, .null]))
        #expect(decode(#"{"\u0045vent": "u"}"#, schema) == .row([.text("u"), .null]))
        // Long names (compared beyond their first 8 bytes) and names that share a length.
        let long = RowSchema(columns: [
            .init(name: "a_rather_long_column_name_1", kind: .int64), .init(name: "a_rather_long_column_name_2", kind: .int64),
            .init(name: "user", kind: .string), .init(name: "page", kind: .string), .init(name: "", kind: .string),
        ])
        #expect(decode(#"{"A_RATHER_LONG_COLUMN_NAME_2": 2, "a_rather_long_column_name_1": 1, "page": "p", "user": "u", "": "e"}"#, long)
            == .row([.int(1), .int(2), .text("u"), .text("p"), .text("e")]))
        #expect(decode(#"{"a_rather_long_column_name_3": 3, "a_rather_long_column_name_": 4}"#, long) == .row([.null, .null, .null, .null, .null]))
    }

    @Test func numberEdgeCases() {
        let numbers = schema(("i", .int64), ("d", .double))
        func both(_ literal: String) -> Decoded { decode(#"{"i": \#(literal), "d": \#(literal)}"#, numbers) }
        #expect(both("0") == .row([.int(0), .double(0)]))
        #expect(both("-0") == .row([.int(0), .double(-0.0)]))
        #expect(both("-0.0") == .row([.int(0), .double(-0.0)]))
        #expect(both("1.0") == .row([.int(1), .double(1)]))
        #expect(both("1e3") == .row([.int(1000), .double(1000)]))
        #expect(both("1E+3") == .row([.int(1000), .double(1000)]))
        #expect(both("1500e-3") == .row([.wrongType, .double(1.5)]))
        #expect(both("2500e-3") == .row([.wrongType, .double(2.5)]))
        #expect(both("3000e-3") == .row([.int(3), .double(3)]))
        #expect(both("1.5") == .row([.wrongType, .double(1.5)]))
        #expect(both("-1.25e-2") == .row([.wrongType, .double(-0.0125)]))
        #expect(both("9223372036854775807") == .row([.int(Int64.max), .double(9.223372036854775807e18)]))
        #expect(both("-9223372036854775808") == .row([.int(Int64.min), .double(-9.223372036854775808e18)]))
        #expect(both("9223372036854775808") == .row([.wrongType, .double(9.223372036854775808e18)]))
        #expect(both("-9223372036854775809") == .row([.wrongType, .double(-9.223372036854775809e18)]))
        #expect(both("92233720368547758070") == .row([.wrongType, .double(9.223372036854775807e19)]))
        #expect(both("9223372036854775807.000000000000") == .row([.int(Int64.max), .double(9.223372036854775807e18)]))
        #expect(both("922337203685477580.7e1") == .row([.int(Int64.max), .double(9.223372036854775807e18)]))
        #expect(both("1.00000000000000000000001") == .row([.wrongType, .double(1)]))
        #expect(both("123456789012345678901234567890") == .row([.wrongType, .double(1.2345678901234568e29)]))
        #expect(both("0.1") == .row([.wrongType, .double(0.1)]))
        #expect(both("0.30000000000000004") == .row([.wrongType, .double(0.30000000000000004)]))
        #expect(both("2.2250738585072014e-308") == .row([.wrongType, .double(2.2250738585072014e-308)]))
        #expect(both("1.7976931348623157e308") == .row([.wrongType, .double(1.7976931348623157e308)]))
        #expect(both("1e309") == .row([.wrongType, .wrongType]))
        #expect(both("-1e400") == .row([.wrongType, .wrongType]))
        #expect(both("1e-400") == .row([.wrongType, .double(0)]))
        #expect(both("0e999999999999") == .row([.int(0), .double(0)]))
        #expect(both("4.35") == .row([.wrongType, .double(4.35)]))
        // 1e309 is valid JSON: in a field no column wants, it is skipped like any number.
        #expect(decode(#"{"x": 1e309, "i": 1}"#, numbers) == .row([.int(1), .null]))
        for invalid in ["01", "-01", "00", "-", "+1", "1.", ".5", "1e", "1e+", "-.5", "1.e3", "0x10", "Infinity", "NaN", "--1", "1..2"] {
            #expect(both(invalid) == .skipped(.notJSON), "\(invalid)")
            #expect(decode(#"{"x": \#(invalid), "i": 1}"#, numbers) == .skipped(.notJSON), "skipped \(invalid)")
        }
    }

    @Test func tumbleColumnsAreComputedFromTheDecodedTime() {
        func windowed(offsetSeconds: Int64) -> RowSchema {
            var columns = [RowSchema.Column(name: "ts", kind: .timestamp)]
            for isEnd in [false, true] {
                columns.append(.init(
                    name: isEnd ? "window_end" : "window_start", kind: .timestamp,
                    origin: .tumble(timeColumn: 0, sizeMicroseconds: 60_000_000, offsetMicroseconds: offsetSeconds * 1_000_000, isEnd: isEnd)))
            }
            return RowSchema(columns: columns)
        }
        let minute = daysSince1970(2026, 11, 24) * 86_400 + 17 * 3600
        func micros(_ seconds: Int64) -> Cell { .int(seconds * 1_000_000) }
        #expect(decode(#"{"ts": "2026-11-24 17:00:59"}"#, windowed(offsetSeconds: 0)) == .row([micros(minute + 59), micros(minute), micros(minute + 60)]))
        #expect(decode(#"{"ts": "2026-11-24 17:01:00"}"#, windowed(offsetSeconds: 0)) == .row([micros(minute + 60), micros(minute + 60), micros(minute + 120)]))
        // Before 1970 the window still starts at or before the time.
        #expect(decode(#"{"ts": "1969-12-31 23:59:30"}"#, windowed(offsetSeconds: 0)) == .row([micros(-30), micros(-60), micros(0)]))
        // Windows aligned 15 s past the minute.
        #expect(decode(#"{"ts": "2026-11-24 17:00:10"}"#, windowed(offsetSeconds: 15)) == .row([micros(minute + 10), micros(minute - 45), micros(minute + 15)]))
        // A NULL time (missing, null, of the wrong type) has NULL windows, as tumble_start(NULL).
        #expect(decode(#"{"x": 1}"#, windowed(offsetSeconds: 0)) == .row([.null, .null, .null]))
        #expect(decode(#"{"ts": null}"#, windowed(offsetSeconds: 0)) == .row([.null, .null, .null]))
        #expect(decode(#"{"ts": true}"#, windowed(offsetSeconds: 0)) == .row([.wrongType, .null, .null]))
    }

    @Test func timestampsAndDates() {
        let times = schema(("t", .timestamp), ("z", .timestamptz), ("d", .date))
        func seconds(_ y: Int, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0, _ s: Int = 0) -> Int64 {
            (daysSince1970(y, mo, d) * 86_400 + Int64(h * 3600 + mi * 60 + s)) * 1_000_000
        }
        func all(_ text: String) -> Decoded { decode(#"{"t": "\#(text)", "z": "\#(text)", "d": "\#(text)"}"#, times) }

        #expect(all("2024-02-29") == .row([.int(seconds(2024, 2, 29)), .int(seconds(2024, 2, 29)), .int(daysSince1970(2024, 2, 29))]))
        #expect(all("2000-02-29") == .row([.int(seconds(2000, 2, 29)), .int(seconds(2000, 2, 29)), .int(daysSince1970(2000, 2, 29))]))
        #expect(all("1969-12-31") == .row([.int(-86_400_000_000), .int(-86_400_000_000), .int(-1)]))
        #expect(all("0001-01-01") == .row([.int(seconds(1, 1, 1)), .int(seconds(1, 1, 1)), .int(daysSince1970(1, 1, 1))]))
        #expect(all("9999-12-31") == .row([.int(seconds(9999, 12, 31)), .int(seconds(9999, 12, 31)), .int(daysSince1970(9999, 12, 31))]))
        for invalid in ["2023-02-29", "1900-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32",
                        "0000-01-01", "2026-1-01", "2026/01/01", "20260101", "", "2026-01-0a", "+2026-01-01"] {
            #expect(all(invalid) == .row([.wrongType, .wrongType, .wrongType]), "\(invalid)")
        }

        let base = seconds(2026, 11, 24, 17, 0, 3)
        let cases: [(String, Cell, Cell)] = [
            ("2026-11-24 17:00:03", .int(base), .int(base)),
            ("2026-11-24T17:00:03", .int(base), .int(base)),
            ("2026-11-24 17:00:03.5", .int(base + 500_000), .int(base + 500_000)),
            ("2026-11-24 17:00:03.000001", .int(base + 1), .int(base + 1)),
            ("2026-11-24 17:00:03.123456", .int(base + 123_456), .int(base + 123_456)),
            ("2026-11-24 17:00:03Z", .wrongType, .int(base)),
            ("2026-11-24 17:00:03+02:00", .wrongType, .int(base - 7_200_000_000)),
            ("2026-11-24 17:00:03-05:30", .wrongType, .int(base + 19_800_000_000)),
            ("2026-11-24 17:00:03+0200", .wrongType, .int(base - 7_200_000_000)),
            ("2026-11-24 17:00:03+02", .wrongType, .int(base - 7_200_000_000)),
            ("2026-11-24 17:00:03.25Z", .wrongType, .int(base + 250_000)),
            ("2026-11-24 00:00:00", .int(seconds(2026, 11, 24)), .int(seconds(2026, 11, 24))),
            ("2026-11-24 23:59:59", .int(seconds(2026, 11, 24, 23, 59, 59)), .int(seconds(2026, 11, 24, 23, 59, 59))),
        ]
        for (text, plain, zoned) in cases {
            #expect(decode(#"{"t": "\#(text)", "z": "\#(text)"}"#, times) == .row([plain, zoned, .null]), "\(text)")
        }
        for invalid in ["2026-11-24 24:00:00", "2026-11-24 17:60:00", "2026-11-24 17:00:60", "2026-11-24 17:00", "2026-11-24 17:00:03.",
                        "2026-11-24 17:00:03.1234567", "2026-11-24X17:00:03", "2026-11-24 17:00:03 ", "2026-11-24 17:00:03+2",
                        "2026-11-24 17:00:03+24:00", "2026-11-24 17:00:03+02:60", "2026-11-24 17:00:03Z+01", "2026-02-30 17:00:03"] {
            #expect(decode(#"{"t": "\#(invalid)", "z": "\#(invalid)"}"#, times) == .row([.wrongType, .wrongType, .null]), "\(invalid)")
        }
        // Escapes inside a time are resolved first.
        #expect(decode(#"{"d": "2026\u002d11-24"}"#, times) == .row([.null, .null, .int(daysSince1970(2026, 11, 24))]))
    }

    @Test func reusesItsBuffersAcrossMessagesOfEverySize() {
        var decoder = RowDecoder(schema: one)
        let long = String(repeating: "\\n", count: 5000)
        #expect(decode(Array(#"{"s": "\#(long)"}"#.utf8), with: &decoder) == .row([.string(Array(repeating: 0x0A, count: 5000))]))
        #expect(decode(Array(#"{"s": "a\tb"}"#.utf8), with: &decoder) == .row([.text("a\tb")]))
        #expect(decode(Array(#"{"x": 1}"#.utf8), with: &decoder) == .row([.null]))
        // A copy decodes on its own buffers.
        var copy = decoder
        #expect(decode(Array(#"{"s": "c\"d"}"#.utf8), with: &copy) == .row([.text("c\"d")]))
        #expect(decode(Array(#"{"s": "e"}"#.utf8), with: &decoder) == .row([.text("e")]))
    }
}


/// The decoder learns the messages' shape (field templates, the last date) and reuses it; none of that
/// may change a result. Every message here is decoded by one long-lived decoder and by a fresh one.
@Suite struct LearntShapeTests {
    static let schema = RowSchema(columns: [
        .init(name: "event_timestamp", kind: .timestamp), .init(name: "user", kind: .string),
        .init(name: "event", kind: .string), .init(name: "n", kind: .int64), .init(name: "Zone", kind: .timestamptz),
    ])

    func expectSameAsFresh(_ messages: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        var longLived = RowDecoder(schema: Self.schema)
        for (index, message) in messages.enumerated() {
            let bytes = Array(message.utf8)
            let fresh = decode(bytes, Self.schema)
            let reused = decode(bytes, with: &longLived)
            #expect(reused == fresh, "message \(index): \(message)", sourceLocation: sourceLocation)
        }
    }

    @Test func fieldTemplatesNeverChangeResults() {
        let base = #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "event": "click", "n": 1}"#
        expectSameAsFresh([
            base, base,
            // More or less whitespace where the template ends or starts.
            #"{"event_timestamp":  "2026-11-24 17:00:03", "user":"anna" , "event": "click", "n": 1}"#,
            #"{"event_timestamp": "2026-11-24 17:00:03",  "user": "anna", "event": "click", "n": 1 }"#,
            base,
            // Another order, missing and extra fields, an escaped key, a case-insensitive key.
            #"{"user": "bob", "event_timestamp": "2026-11-24 17:00:04", "event": "scroll"}"#,
            #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "x": [1, {"event": "no"}], "event": "click"}"#,
            #"{"event_timestamp": "2026-11-24 17:00:03", "\u0075ser": "esc", "event": "click", "n": 1}"#,
            #"{"event_timestamp": "2026-11-24 17:00:03", "USER": "caps", "user": "exact", "event": "click"}"#,
            #"{"event_timestamp": "2026-11-24 17:00:03", "user": "exact", "USER": "caps", "event": "click"}"#,
            // The template's bytes followed by something invalid, or cut short.
            #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "event": "click", "n": 1"#,
            #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "event": "click", "n": }"#,
            #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "event": "click", "n": 1}}"#,
            #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "event": "#,
            #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "#,
            #"{"event_timestamp": "#,
            "{",
            // A message of other types behind the same keys.
            #"{"event_timestamp": 5, "user": null, "event": ["click"], "n": "1"}"#,
            base,
            // Duplicate keys after a template match.
            #"{"event_timestamp": "2026-11-24 17:00:03", "user": "anna", "event": "click", "n": 1, "n": 2, "event": null}"#,
            base,
            "[]", "{}", "   ", base,
            // Many fields: beyond the number of templates kept.
            "{" + (0..<40).map { #""f\#($0)": \#($0)"# }.joined(separator: ", ") + #", "n": 7}"#,
            "{" + (0..<40).map { #""f\#($0)": \#($0)"# }.joined(separator: ", ") + #", "n": 8}"#,
            // A key long enough to have no template.
            #"{"\#(String(repeating: "k", count: 60))": 1, "n": 3}"#,
            #"{"\#(String(repeating: "k", count: 60))": 1, "n": 4}"#,
        ])
    }

    @Test func theDateCacheNeverChangesResults() {
        func message(_ time: String) -> String { #"{"event_timestamp": "\#(time)", "Zone": "\#(time)"}"# }
        expectSameAsFresh([
            message("2024-02-29 10:00:00"), message("2024-02-29 23:59:59"), message("2024-02-30 10:00:00"),
            message("2024-02-29 24:00:00"), message("2024-02-29 10:60:00"), message("2024-02-29 10:00:60"),
            message("2024-02-29T10:00:00"), message("2024-02-29t10:00:00"), message("2024-02-29 1a:00:00"),
            message("2024-02-29 10-00-00"), message("2024-02-29 10:00:00.5"), message("2024-02-29 10:00:00Z"),
            message("2023-02-29 10:00:00"), message("2023-02-28 10:00:00"), message("2023-02-2810:00:00"),
            message("2024-02-29 10:00:0"), message("2024-02-29 10:00:00 "), message("2024-02-29"),
            message("2024-02-29 10:00:00\\u0030"), message("2024-02-29 10:00:00"), message("2024-02-29 10:00:0\\u0030"),
            message("2024-13-29 10:00:00"), message("1969-12-31 23:59:59"), message("1970-01-01 00:00:00"),
        ])
        // And the values themselves, through the fast path (same date, many times).
        var decoder = RowDecoder(schema: Self.schema)
        let day = daysSince1970(2024, 2, 29) * 86_400
        for (time, seconds) in [("00:00:00", 0), ("10:11:12", 36_672), ("23:59:59", 86_399)] {
            let expected = Cell.int((day + Int64(seconds)) * 1_000_000)
            let decoded = decode(Array(message("2024-02-29 \(time)").utf8), with: &decoder)
            #expect(decoded == .row([expected, .null, .null, .null, expected]))
        }
    }
}
