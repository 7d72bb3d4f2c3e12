@testable import EddyRedis
import EddyTestSupport
import Testing

private typealias Pairs = [(key: [UInt8], value: [UInt8]?)]

private func pairs(_ values: [(String, String?)]) -> Pairs {
    values.map { (key: bytes($0.0), value: $0.1.map(bytes)) }
}

private func holds(_ expected: String) -> ([UInt8]?) -> Bool {
    { $0 == bytes(expected) }
}

@Suite struct RedisKeyRepairerTests {
    @Test func findsMissingDifferentAndUnexpectedKeysAndRepairsThemUnderTheMarker() throws {
        let server = try startedServer()
        let repairer = RedisKeyRepairer(connection: try connect(server.url), logger: testLogger)
        try server.command("SET", "eddy:s:epoch", "v1 7 progress")
        try server.command("MSET", "same", "1", "changed", "by someone", "left", "stale", "other", "untouched")
        let expected = pairs([("same", "1"), ("changed", "2"), ("gone", "3"), ("left", nil), ("absent", nil)])

        let compared = try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: false, markerMatches: holds("v1 7 progress"))
        #expect(compared == .compared(differences: [
            RedisKeyMismatch(index: 1, difference: .different),
            RedisKeyMismatch(index: 2, difference: .missing),
            RedisKeyMismatch(index: 3, difference: .unexpected),
        ], repaired: false))
        // Comparing writes nothing.
        #expect(try server.get("changed") == "by someone")
        #expect(try server.get("gone") == nil)
        #expect(try server.get("left") == "stale")

        let repaired = try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: true, markerMatches: holds("v1 7 progress"))
        guard case .compared(let differences, true) = repaired else {
            Issue.record("expected a repair, got \(repaired)")
            return
        }
        #expect(differences.map(\.index) == [1, 2, 3])
        #expect(try server.get("changed") == "2")
        #expect(try server.get("gone") == "3")
        #expect(try server.get("left") == nil)
        #expect(try server.get("other") == "untouched")
        #expect(try server.get("eddy:s:epoch") == "v1 7 progress")

        #expect(try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: true, markerMatches: holds("v1 7 progress"))
            == .compared(differences: [], repaired: false))
        // The connection is in step after every path.
        #expect(try repairer.connection.command("PING") == .status("PONG"))
    }

    @Test func aMarkerThatDoesNotStandForTheValuesStopsTheComparison() throws {
        let server = try startedServer()
        let repairer = RedisKeyRepairer(connection: try connect(server.url), logger: testLogger)
        try server.command("SET", "k", "old")
        let expected = pairs([("k", "new")])
        #expect(try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: true, markerMatches: holds("v1 8 p"))
            == .markerMismatch(marker: nil))
        try server.command("SET", "eddy:s:epoch", "v1 9 p")
        #expect(try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: true, markerMatches: holds("v1 8 p"))
            == .markerMismatch(marker: bytes("v1 9 p")))
        #expect(try server.get("k") == "old")
        #expect(try repairer.connection.command("PING") == .status("PONG"))
    }

    @Test func anEpochWrittenDuringTheComparisonWinsOverTheRepair() throws {
        let server = try startedServer()
        let repairer = RedisKeyRepairer(connection: try connect(server.url), logger: testLogger)
        let writer = try connect(server.url)
        try server.command("MSET", "eddy:s:epoch", "v1 1 p", "k", "overwritten")
        let expected = pairs([("k", "1")])
        // Another writer applies a newer epoch after the marker and the keys were read, before the repair runs.
        let outcome = try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: true) { marker in
            _ = try? writer.command("MSET", "k", "2", "eddy:s:epoch", "v1 2 p")
            return marker == bytes("v1 1 p")
        }
        #expect(outcome == .markerMoved)
        #expect(try server.get("k") == "2")
        #expect(try server.get("eddy:s:epoch") == "v1 2 p")

        // A read-only comparison is told the same: its reads may mix two points of the stream.
        let readOnly = try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: false) { marker in
            _ = try? writer.command("SET", "eddy:s:epoch", "v1 3 p")
            return true
        }
        #expect(readOnly == .markerMoved)
        #expect(try repairer.connection.command("PING") == .status("PONG"))
    }

    @Test func aRepairRefusedForMemoryWritesNothingWhileComparingStillWorks() throws {
        let server = try startedServer(["--maxmemory-policy", "noeviction"])
        let repairer = RedisKeyRepairer(connection: try connect(server.url), logger: testLogger)
        try server.command("MSET", "eddy:s:epoch", "v1 1 p", "a", "wrong", "b", "stale")
        try server.command("CONFIG", "SET", "maxmemory", "1")
        let expected = pairs([("a", "right"), ("b", nil)])
        let error = #expect(throws: RedisError.self) {
            try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: true, markerMatches: holds("v1 1 p"))
        }
        #expect(error?.code == .outOfMemory)
        #expect(try server.get("a") == "wrong")
        #expect(try server.get("b") == "stale")
        #expect(try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: false, markerMatches: holds("v1 1 p"))
            == .compared(differences: [RedisKeyMismatch(index: 0, difference: .different), RedisKeyMismatch(index: 1, difference: .unexpected)], repaired: false))
        try server.command("CONFIG", "SET", "maxmemory", "0")
        guard case .compared(_, true) = try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: true, markerMatches: holds("v1 1 p")) else {
            Issue.record("expected the repair to apply once memory is available")
            return
        }
        #expect(try server.get("a") == "right")
        #expect(try server.get("b") == nil)
    }

    @Test func aKeyOfAnotherTypeIsMissingAndOverwritten() throws {
        let server = try startedServer()
        let repairer = RedisKeyRepairer(connection: try connect(server.url), logger: testLogger)
        try server.command("SET", "eddy:s:epoch", "v1 1 p")
        try server.command("RPUSH", "k", "x")
        let expected = pairs([("k", "5")])
        #expect(try repairer.compare(markerKey: "eddy:s:epoch", pairs: expected, repair: true, markerMatches: holds("v1 1 p"))
            == .compared(differences: [RedisKeyMismatch(index: 0, difference: .missing)], repaired: true))
        #expect(try server.get("k") == "5")
    }
}
