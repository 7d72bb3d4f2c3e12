import Foundation
import Testing

@testable import EddyEngine

@Suite struct ResultTableTests {
    let table = ResultTable(
        columns: ["event", "count"],
        rows: [[.string("click"), .int(48213)], [.string("scroll"), .int(7)], [.null, .int(1)]]
    )

    @Test func tableLooksLikePsql() {
        #expect(table.renderedAsTable() == """
             event  | count
            --------+-------
             click  | 48213
             scroll |     7
                    |     1
            (3 rows)

            """)
    }

    @Test func jsonParsesBackToTheSameRows() throws {
        let tricky = ResultTable(columns: ["name", "n", "avg", "ok"], rows: [
            [.string("quote \" slash \\ tab \t nl \n ctl \u{01} é 😀"), .int(-3), .double(2.5), .bool(true)],
            [.null, .int(Int64.max), .double(.nan), .bool(false)],
        ])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(tricky.renderedAsJSON().utf8)) as? [[String: Any]])
        #expect(parsed.count == 2)
        #expect(parsed[0]["name"] as? String == "quote \" slash \\ tab \t nl \n ctl \u{01} é 😀")
        #expect((parsed[0]["n"] as? NSNumber)?.int64Value == -3)
        #expect((parsed[0]["avg"] as? NSNumber)?.doubleValue == 2.5)
        #expect(parsed[0]["ok"] as? Bool == true)
        #expect(parsed[1]["name"] is NSNull)
        #expect((parsed[1]["n"] as? NSNumber)?.int64Value == Int64.max)
        #expect(parsed[1]["avg"] is NSNull)
        #expect(ResultTable(columns: ["a"], rows: []).renderedAsJSON() == "[]\n")
    }

    @Test func csvQuotesOnlyWhatNeedsIt() {
        let csv = ResultTable(columns: ["a", "b,c"], rows: [[.string("plain"), .string("say \"hi\", twice\nok")]])
        #expect(csv.renderedAsCSV() == "a,\"b,c\"\r\nplain,\"say \"\"hi\"\", twice\nok\"\r\n")
    }
}
