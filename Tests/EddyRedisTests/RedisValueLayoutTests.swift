@testable import EddyRedis
import EddyTestSupport
import Testing

private typealias Pairs = [(key: [UInt8], value: [UInt8]?)]

/// Writes `pairs` in `layout` under a fence that always applies (the fence is the engine's; these tests are about
/// what each value type becomes inside the transaction).
private func write(_ writer: RedisEpochWriter, marker: String, _ pairs: Pairs, layout: RedisValueLayout, sequence: UInt64 = 0, base: UInt64? = nil) throws {
    let refusal = try writer.write(sink: "s", marker: bytes(marker), pairs: pairs, layout: layout, entrySequence: sequence, baseSequence: base) { _ -> RedisMarkerCheck<Int> in .write }
    #expect(refusal == nil)
}

private func hash(_ fields: [(String, String)]) -> [UInt8] {
    RedisValueLayout.hashFields(fields.map { (name: $0.0, value: $0.1) })
}

private func integer(_ reply: RedisReply) -> Int64? {
    if case .integer(let value) = reply { value } else { nil }
}

/// The entries of a stream: ID, then field and value as text.
private func entries(_ server: RedisTestServer, _ stream: String) throws -> [(id: String, field: String, value: String)] {
    guard case .array(let items) = try server.command("XRANGE", stream, "-", "+") else { return [] }
    return items.compactMap { item in
        guard case .array(let parts) = item, parts.count == 2, let id = parts[0].text, case .array(let fields) = parts[1], fields.count == 2 else { return nil }
        return (id, fields[0].text ?? "", fields[1].text ?? "")
    }
}

@Suite struct RedisValueLayoutTests {
    @Test func aHashHoldsExactlyTheRowsFieldsAndADeletionRemovesIt() throws {
        let server = try startedServer()
        let writer = RedisEpochWriter(connection: try connect(server.url), logger: testLogger)
        // A field another program added, and a key that held a string: the hash ends up with the row's fields only.
        try server.command("HSET", "h:click", "stale", "x")
        try server.command("SET", "h:scroll", "a string")
        let layout = RedisValueLayout(kind: .hash, ttlSeconds: 120)
        try write(writer, marker: "1", [
            (bytes("h:click"), hash([("event", "click"), ("count", "3")])),
            (bytes("h:scroll"), hash([("event", "scroll"), ("count", "1")])),
            (bytes("h:none"), hash([])),
        ], layout: layout)
        #expect(try server.command("HGETALL", "h:click") == .array([.string(bytes("event")), .string(bytes("click")), .string(bytes("count")), .string(bytes("3"))]))
        #expect(try server.command("HGET", "h:scroll", "count").text == "1")
        #expect(try integer(server.command("EXISTS", "h:none")) == 0)
        #expect(try integer(server.command("TTL", "h:click")).map { $0 > 0 && $0 <= 120 } == true)
        #expect(try server.get("eddy:s:epoch") == "1")

        try write(writer, marker: "2", [(bytes("h:click"), nil), (bytes("h:scroll"), hash([("event", "scroll"), ("count", "2")]))], layout: layout)
        #expect(try integer(server.command("EXISTS", "h:click")) == 0)
        #expect(try server.command("HGET", "h:scroll", "count").text == "2")
    }

    @Test func aStringWithATTLExpiresAndKeepsItsValue() throws {
        let server = try startedServer()
        let writer = RedisEpochWriter(connection: try connect(server.url), logger: testLogger)
        try write(writer, marker: "1", [(bytes("a"), bytes("1")), (bytes("b"), bytes("2")), (bytes("gone"), nil)], layout: RedisValueLayout(ttlSeconds: 60))
        #expect(try server.get("a") == "1" && server.get("b") == "2")
        for key in ["a", "b"] { #expect(try integer(server.command("TTL", key)).map { $0 > 0 && $0 <= 60 } == true) }
        // Without a TTL the keys have none (-1).
        try write(writer, marker: "2", [(bytes("a"), bytes("3"))], layout: .string)
        #expect(try integer(server.command("TTL", "a")) == -1)
    }

    /// Entry IDs come from the write's sequence: writing one sequence again adds nothing (the rest of the epoch
    /// still applies), a later one adds its entries, and an older one adds none either.
    @Test func streamEntriesOfOneSequenceAreAddedOnce() throws {
        let server = try startedServer()
        let writer = RedisEpochWriter(connection: try connect(server.url), logger: testLogger)
        let layout = RedisValueLayout(kind: .stream(name: bytes("changes")), ttlSeconds: 300)
        try write(writer, marker: "1", [(bytes("click"), bytes("3")), (bytes("scroll"), bytes("1")), (bytes("gone"), nil)], layout: layout, sequence: 40)
        var seen = try entries(server, "changes")
        #expect(seen.map(\.id) == ["40-1", "40-2", "40-3"])
        #expect(seen.map(\.field) == ["click", "scroll", "gone"])
        #expect(seen.map(\.value) == ["3", "1", ""])
        #expect(try integer(server.command("TTL", "changes")).map { $0 > 0 } == true)

        // The same write again (a re-sent epoch, or a whole-view re-send of the same point): no entry, marker written.
        try server.command("PERSIST", "changes")
        try write(writer, marker: "1 again", [(bytes("click"), bytes("3")), (bytes("focus"), bytes("7"))], layout: layout, sequence: 40)
        #expect(try entries(server, "changes").count == 3)
        #expect(try server.get("eddy:s:epoch") == "1 again")
        #expect(try integer(server.command("TTL", "changes")).map { $0 > 0 } == true, "the TTL is set even when the entries were there")
        try write(writer, marker: "0", [(bytes("click"), bytes("1"))], layout: layout, sequence: 12)
        #expect(try entries(server, "changes").count == 3)

        try write(writer, marker: "2", [(bytes("click"), bytes("4"))], layout: layout, sequence: 41)
        seen = try entries(server, "changes")
        #expect(seen.map(\.id).suffix(1) == ["41-1"])
        #expect(seen.last?.value == "4")
    }

    /// A delta built on an older acknowledged write (Redis applied a later epoch whose reply was lost before a
    /// crash): keys whose latest entry since that write already holds the value get no second entry.
    @Test func aDeltaAfterAnUnacknowledgedWriteAddsOnlyWhatChanged() throws {
        let server = try startedServer()
        let writer = RedisEpochWriter(connection: try connect(server.url), logger: testLogger)
        let layout = RedisValueLayout(kind: .stream(name: bytes("changes")))
        try write(writer, marker: "1", [(bytes("click"), bytes("1"))], layout: layout, sequence: 10)
        // Applied at 20, never acknowledged.
        try write(writer, marker: "2", [(bytes("click"), bytes("2")), (bytes("scroll"), bytes("1")), (bytes("gone"), nil)], layout: layout, sequence: 20, base: 10)
        // After the restart: the keys changed since 10, with their values at 30.
        try write(writer, marker: "3", [(bytes("click"), bytes("4")), (bytes("scroll"), bytes("1")), (bytes("gone"), nil), (bytes("focus"), bytes("1"))], layout: layout, sequence: 30, base: 10)
        let seen = try entries(server, "changes")
        #expect(seen.map(\.id) == ["10-1", "20-1", "20-2", "20-3", "30-1", "30-2"])
        #expect(seen.suffix(2).map(\.field) == ["click", "focus"])
        #expect(seen.suffix(2).map(\.value) == ["4", "1"])
    }

    @Test func aStreamKeyHoldingAnotherTypeIsAClearErrorAndNothingIsWritten() throws {
        let server = try startedServer()
        let writer = RedisEpochWriter(connection: try connect(server.url), logger: testLogger)
        try server.command("SET", "changes", "not a stream")
        #expect {
            try write(writer, marker: "1", [(bytes("click"), bytes("3"))], layout: RedisValueLayout(kind: .stream(name: bytes("changes"))), sequence: 1)
        } throws: { error in
            (error as? RedisError).map { $0.reason.contains("stream key changes") && $0.reason.contains("holds a string") && !$0.isRetriable } == true
        }
        #expect(try server.get("eddy:s:epoch") == nil)
        // The connection is still in step.
        #expect(try writer.readMarker(sink: "s") == nil)
    }

    @Test func pubsubPublishesEachValueOnceToTheChannel() throws {
        let server = try startedServer()
        let subscriber = try connect(server.url)
        defer { subscriber.close() }
        var subscribe = RedisCommandEncoder()
        subscribe.appendCommand([bytes("SUBSCRIBE"), bytes("counts")])
        try subscriber.send(subscribe.bytes, commandName: "SUBSCRIBE")
        _ = try subscriber.receive(commandName: "SUBSCRIBE")
        let writer = RedisEpochWriter(connection: try connect(server.url), logger: testLogger)
        try write(writer, marker: "1", [(bytes("click"), bytes("click=3")), (bytes("gone"), nil), (bytes("scroll"), bytes("scroll=1"))], layout: RedisValueLayout(kind: .pubsub(channel: bytes("counts"))))
        var messages: [String] = []
        for _ in 0..<2 {
            guard case .array(let parts) = try subscriber.receive(commandName: "message"), parts.count == 3 else { continue }
            messages.append(parts[2].text ?? "")
        }
        #expect(messages == ["click=3", "scroll=1"])
        #expect(try server.get("eddy:s:epoch") == "1")
    }
}
