import EddyWorkload
import EddySQL
import Foundation
import Testing

@testable import EddyEngine

/// `CompiledPredicate` must answer exactly as the SQL front end's evaluator (`ReferencePredicate`) on every row.
@Suite struct CompiledPredicateTests {
    static let source = """
        CREATE SOURCE src (s VARCHAR, i BIGINT, d DOUBLE PRECISION, b BOOLEAN, t TIMESTAMP, dt DATE, tz TIMESTAMPTZ)
          WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
        """

    static let texts = ["", "a", "ab", "abc", "b", "é", "éa", "a_b", "100%", "日本", "A", "zz"]
    static let patterns = ["%", "a%", "%b", "_", "__", "a_c", "%é%", "100\\%", "a\\_b", "%a%b%", "日_", "é_"]
    static let times = ["2026-11-24 17:00:03", "2026-11-24", "2026-11-24 17:00:03.5", "1999-12-31 23:59:59", "2026-01-01 00:00:00.000001"]

    func predicate(_ rng: inout SplitMix64, depth: Int = 0) -> String {
        func pick<T>(_ values: [T]) -> T { values[Int(rng.next() % UInt64(values.count))] }
        if depth < 3 && rng.next() % 3 == 0 {
            switch rng.next() % 3 {
            case 0: return "(\(predicate(&rng, depth: depth + 1)) AND \(predicate(&rng, depth: depth + 1)))"
            case 1: return "(\(predicate(&rng, depth: depth + 1)) OR \(predicate(&rng, depth: depth + 1)))"
            default: return "NOT (\(predicate(&rng, depth: depth + 1)))"
            }
        }
        let comparison = pick(["=", "<>", "<", "<=", ">", ">="])
        let number = pick(["0", "1", "-1", "2.5", "9223372036854775807", "-9223372036854775808", "1e300", "NULL"])
        switch rng.next() % 12 {
        case 0: return "s \(comparison) '\(pick(Self.texts))'"
        case 1: return "s \(rng.next() % 2 == 0 ? "" : "NOT ")LIKE '\(pick(Self.patterns))'"
        case 2: return "i \(comparison) \(number)"
        case 3: return "(i \(pick(["+", "-", "*", "/", "%"])) \(pick(["1", "0", "-1", "3", "9223372036854775807"]))) \(comparison) \(number)"
        case 4: return "d \(comparison) \(number)"
        case 5: return "(d \(pick(["+", "-", "*", "/", "%"])) i) \(comparison) \(number)"
        case 6: return "b \(pick(["= true", "= false", "IS NULL", "IS NOT NULL", "<> true"]))"
        case 7: return "t \(comparison) '\(pick(Self.times))'"
        case 8: return "dt \(comparison) '\(pick(["2026-11-24", "1970-01-01", "2000-02-29"]))'"
        case 9: return "s \(rng.next() % 2 == 0 ? "" : "NOT ")IN (\((0..<3).map { _ in "'\(pick(Self.texts))'" }.joined(separator: ", "))\(rng.next() % 3 == 0 ? ", NULL" : ""))"
        case 10: return "i BETWEEN \(pick(["-5", "0"])) AND \(pick(["3", "10"]))"
        default: return "\(pick(["s", "i", "d", "t", "tz"])) IS \(rng.next() % 2 == 0 ? "" : "NOT ")NULL"
        }
    }

    func row(_ rng: inout SplitMix64) -> String {
        func pick<T>(_ values: [T]) -> T { values[Int(rng.next() % UInt64(values.count))] }
        var fields: [String] = []
        func maybe(_ name: String, _ values: [String]) {
            switch rng.next() % 6 {
            case 0: return  // missing
            case 1: fields.append("\"\(name)\": null")
            default: fields.append("\"\(name)\": \(pick(values))")
            }
        }
        maybe("s", Self.texts.map { "\"\($0)\"" } + ["\"a\\u00e9\"", "17"])
        maybe("i", ["0", "1", "-1", "3", "-5", "10", "9223372036854775807", "-9223372036854775808", "\"x\""])
        maybe("d", ["0", "2.5", "-1", "1e300", "-0.0", "3", "true"])
        maybe("b", ["true", "false", "1"])
        maybe("t", Self.times.map { "\"\($0)\"" } + ["\"2026-11-24T17:00:03\"", "\"bad\""])
        maybe("dt", ["\"2026-11-24\"", "\"1970-01-01\"", "\"2000-02-29\"", "\"2026-13-01\""])
        maybe("tz", ["\"2026-11-24 17:00:03Z\"", "\"2026-11-24 18:00:03+01:00\""])
        return "{" + fields.shuffled(using: &rng).joined(separator: ", ") + "}"
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func compiledAnswersAsTheReference(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var compiledCount = 0
        for _ in 0..<300 {
            let wherePart = predicate(&rng)
            let result = PipelineCompiler.compile(
                text: Self.source + "\nCREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM src WHERE \(wherePart);", file: "t.sql", environment: [:])
            let view = try #require(result.pipeline?.views.first, "\(wherePart): \(result.errors.map(\.message))")
            let plan = try ViewPlan(view: view, source: try #require(result.pipeline?.sources.first))
            let filter = try #require(view.filter)
            guard let compiled = CompiledPredicate.make(filter, schema: plan.schema) else { continue }
            compiledCount += 1
            let reference = ReferencePredicate(expression: filter, schema: plan.schema)
            var decoder = RowDecoder(schema: plan.schema)
            for _ in 0..<40 {
                let message = row(&rng)
                let outcome = Array(message.utf8).withUnsafeBytes { payload in
                    decoder.decode(payload) { row in (compiled.accepts(row), reference.accepts(row)) }
                }
                guard case .success(let (fast, slow)) = outcome else { continue }
                #expect(fast == slow, "WHERE \(wherePart) on \(message): compiled \(fast), reference \(slow)")
            }
        }
        #expect(compiledCount > 250)
    }

    @Test func unsupportedFormsFallBackToTheReference() throws {
        let result = PipelineCompiler.compile(
            text: Self.source + "\nCREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM src WHERE s ILIKE 'A%' OR s || 'x' = 'ax';", file: "t.sql", environment: [:])
        let view = try #require(result.pipeline?.views.first)
        let plan = try ViewPlan(view: view, source: try #require(result.pipeline?.sources.first))
        #expect(CompiledPredicate.make(try #require(view.filter), schema: plan.schema) == nil)
        // The plan still filters, through the reference evaluator.
        var aggregator = plan.makeAggregator()
        for message in [#"{"s": "abc"}"#, #"{"s": "b"}"#, #"{"s": "a"}"#] {
            Array(message.utf8).withUnsafeBytes { aggregator.apply($0) }
        }
        #expect(aggregator.counters.rows == 2 && aggregator.counters.filteredOut == 1)
    }
}
