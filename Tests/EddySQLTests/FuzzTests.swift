import EddyWorkload
import Testing
@testable import EddySQL

/// The compiler must return (errors or a pipeline) for any input: no crash, no hang.
@Suite struct FuzzTests {
    static let corpus = exampleSource + "\n" + exampleView + "\n" + exampleSink + "\nSELECT * FROM events_statisics_mv WHERE count > 1 ORDER BY 1 LIMIT 3;\n"
        + "CREATE MATERIALIZED VIEW v2 AS SELECT page, SUM(LENGTH) FROM user_events WHERE user LIKE '%@x' AND event IN ('a', 'b') GROUP BY page HAVING COUNT(*) BETWEEN 1 AND 3;"

    static let fragments = [
        "(", ")", ",", ";", "'", "\"", "--", "/*", "*/", "${X}", "SELECT", "FROM", "GROUP BY", "CREATE", "SOURCE", "SINK",
        "MATERIALIZED VIEW", "WITH", "FORMAT", "ENCODE", "JSON", "TEMPLATE", "COUNT(*)", "NOT", "NULL", "IN", "LIKE",
        "BETWEEN", "AND", "OR", "=", "<>", "-", "9223372036854775808", "1e999", ".5", "{", "}", "é", "\u{0}", "\u{FFFD}",
        "user", "event", "HAVING", "ORDER BY", "LIMIT", "DISTINCT", "::", "||", "IF NOT EXISTS",
    ]

    @Test func mutatedPipelinesNeverCrash() {
        var random = SplitMix64(seed: 42)
        let base = Array(Self.corpus.unicodeScalars)
        for _ in 0..<3000 {
            var scalars = base
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                guard !scalars.isEmpty else { break }
                let position = Int.random(in: 0..<scalars.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: scalars.remove(at: position)
                case 1: scalars.insert(contentsOf: Self.fragments.randomElement(using: &random)!.unicodeScalars, at: position)
                case 2:
                    let end = min(scalars.count, position + Int.random(in: 1...40, using: &random))
                    scalars.removeSubrange(position..<end)
                default:
                    let other = Int.random(in: 0..<scalars.count, using: &random)
                    scalars.swapAt(position, other)
                }
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            let result = compile(text, environment: ["X": "v"])
            #expect(result.pipeline != nil || !result.errors.isEmpty)
            for error in result.errors { _ = error.description }
        }
    }

    @Test func randomBytesNeverCrash() {
        var random = SplitMix64(seed: 7)
        for length in [0, 1, 2, 7, 64, 500, 4096] {
            for _ in 0..<200 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                let result = PipelineCompiler.compile(bytes: bytes, file: "garbage", environment: [:])
                #expect(result.pipeline == nil)
                #expect(!result.errors.isEmpty)
            }
        }
    }

    @Test func randomTokenSoupNeverCrashes() {
        var random = SplitMix64(seed: 99)
        for _ in 0..<2000 {
            let text = (0..<Int.random(in: 1...40, using: &random)).map { _ in Self.fragments.randomElement(using: &random)! }.joined(separator: " ")
            let result = compile(text, environment: ["X": "v"])
            #expect(result.pipeline != nil || !result.errors.isEmpty)
        }
    }

    @Test func pathologicalNesting() {
        let megabyteOfParentheses = String(repeating: "(", count: 1 << 20)
        #expect(compile(megabyteOfParentheses).errors.first?.message.contains("found '('") == true)
        let result = compile("SELECT " + megabyteOfParentheses)
        #expect(result.errors.contains { $0.message.contains("nested too deeply") })

        let deepNot = exampleSource + "\nCREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE " + String(repeating: "NOT ", count: 100_000) + "true GROUP BY event;"
        #expect(compile(deepNot).errors.contains { $0.message.contains("nested too deeply") })

        let deepMinus = "SELECT " + String(repeating: "-", count: 100_000) + "1 FROM t;"
        #expect(!compile(deepMinus).errors.isEmpty)

        let longIn = exampleSource + "\nCREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events WHERE event IN (" + (0..<20_000).map { "'e\($0)'" }.joined(separator: ",") + ") GROUP BY event;"
        #expect(compile(longIn).errors.isEmpty)

        let unterminated = "SELECT '" + String(repeating: "x", count: 1 << 20)
        #expect(compile(unterminated).errors.first?.message.contains("unterminated string") == true)
    }
}
