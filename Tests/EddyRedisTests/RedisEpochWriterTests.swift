@testable import EddyRedis
import EddyTestSupport
import Testing

private func pairs(_ values: [String: String]) -> [(key: [UInt8], value: [UInt8])] {
    values.sorted { $0.key < $1.key }.map { (key: bytes($0.key), value: bytes($0.value)) }
}

private func makeWriter(_ server: RedisTestServer, commandTimeout: Duration = .seconds(30), form: RedisEpochScript.Form = .flagged) throws -> RedisEpochWriter {
    RedisEpochWriter(connection: try connect(server.url, commandTimeout: commandTimeout), logger: testLogger, scriptForm: form)
}

private func memoryInfo(_ server: RedisTestServer, _ field: String) throws -> Int {
    let info = try #require(try server.command("INFO", "memory").text)
    let line = try #require(info.split(whereSeparator: \.isNewline).first { $0.hasPrefix(field + ":") })
    return try #require(Int(line.dropFirst(field.count + 1)))
}

@Suite struct RedisEpochWriterTests {
    @Test func markerKeyNamesTheSink() {
        #expect(RedisEpochWriter.markerKey(sink: "clicks") == "eddy:clicks:epoch")
    }

    @Test func appliesStaleAndBehindFollowTheMarker() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        #expect(try writer.readMarker(sink: "s") == nil)

        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1", "b": "1"])) == .applied)
        #expect(try writer.readMarker(sink: "s") == 1)
        #expect(try server.get("a") == "1")

        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 1, pairs: pairs(["a": "3"])) == .applied)
        #expect(try server.get("eddy:s:epoch") == "3")

        // Equal and older epochs are stale and write nothing.
        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 1, pairs: pairs(["a": "again"])) == .stale(marker: 3))
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 0, pairs: pairs(["a": "older", "new": "x"])) == .stale(marker: 3))
        #expect(try server.get("a") == "3")
        #expect(try server.get("new") == nil)

        // The marker is below what was acknowledged: Redis lost data; nothing is written.
        #expect(try writer.write(sink: "s", epoch: 9, minimumMarker: 5, pairs: pairs(["a": "9"])) == .behind(marker: 3))
        #expect(try server.get("a") == "3")
        #expect(try writer.readMarker(sink: "s") == 3)

        try server.flushAll()
        #expect(try writer.write(sink: "s", epoch: 10, minimumMarker: 3, pairs: pairs(["a": "10"])) == .behind(marker: nil))
        #expect(try server.get("a") == nil)
        // The whole view re-sent with the bound lowered to what Redis has.
        #expect(try writer.write(sink: "s", epoch: 10, minimumMarker: 0, pairs: pairs(["a": "10", "b": "10"])) == .applied)
        #expect(try server.get("b") == "10")

        // Sinks are fenced apart.
        #expect(try writer.write(sink: "other", epoch: 1, minimumMarker: 0, pairs: pairs(["o": "1"])) == .applied)
        #expect(try writer.readMarker(sink: "s") == 10)
    }

    @Test func emptyEpochStillMovesTheMarker() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 7, minimumMarker: 0, pairs: [(key: [UInt8], value: [UInt8])]()) == .applied)
        #expect(try writer.readMarker(sink: "s") == 7)
        #expect(try server.command("DBSIZE") == .integer(1))
    }

    @Test func keysAndValuesAreBinarySafe() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        let key: [UInt8] = [0, 1, 13, 10, 0xFF, 0xC3, 0x28, 0x24, 0x2A]
        let value: [UInt8] = Array(0...255).reversed()
        #expect(try writer.write(sink: "bin", epoch: 1, minimumMarker: 0, pairs: [(key: key, value: value), (key: [], value: [])]) == .applied)
        let connection = try server.connect()
        #expect(try connection.command([bytes("GET"), key]) == .string(value))
        #expect(try connection.command([bytes("GET"), []]) == .string([]))
    }

    @Test func keyOfAnotherTypeIsOverwritten() throws {
        let server = try startedServer()
        try server.command("RPUSH", "k", "a", "b")
        try server.command("HSET", "h", "f", "v")
        let writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["k": "now a string", "h": "too"])) == .applied)
        #expect(try server.get("k") == "now a string")
        #expect(try server.command("TYPE", "h") == .status("string"))
    }

    @Test func markerOfAnotherKindIsAClearErrorAndWritesNothing() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        try server.command("SET", "eddy:s:epoch", "twelve")
        let text = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1"])) }
        #expect(text?.code == .invalidMarker)
        #expect(text?.reason == "epoch marker eddy:s:epoch on Redis at 127.0.0.1:\(server.port) holds \"twelve\", not an epoch number: another program uses this key")
        let read = #expect(throws: RedisError.self) { try writer.readMarker(sink: "s") }
        #expect(read?.code == .invalidMarker)

        try server.command("DEL", "eddy:s:epoch")
        try server.command("RPUSH", "eddy:s:epoch", "1")
        let list = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1"])) }
        #expect(list?.reason == "epoch marker eddy:s:epoch on Redis at 127.0.0.1:\(server.port) holds a list, not an epoch number: another program uses this key")
        #expect(try server.get("a") == nil)
        #expect(writer.connection.isOpen)
    }

    @Test func epochsAreComparedExactlyBeyondDoublePrecision() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        let big: UInt64 = (1 << 53) + 1
        #expect(try writer.write(sink: "s", epoch: big, minimumMarker: 0, pairs: pairs(["a": "1"])) == .applied)
        // 2^53 + 2 would equal 2^53 + 1 as a double: here it is newer.
        #expect(try writer.write(sink: "s", epoch: big + 1, minimumMarker: big, pairs: pairs(["a": "2"])) == .applied)
        #expect(try writer.write(sink: "s", epoch: big, minimumMarker: 0, pairs: pairs(["a": "old"])) == .stale(marker: big + 1))
        #expect(try writer.write(sink: "s", epoch: .max, minimumMarker: big + 1, pairs: pairs(["a": "max"])) == .applied)
        #expect(try writer.readMarker(sink: "s") == .max)
        // Leading zeros written by someone else still compare by value.
        try server.command("SET", "eddy:t:epoch", "0007")
        #expect(try writer.write(sink: "t", epoch: 7, minimumMarker: 0, pairs: pairs([:])) == .stale(marker: 7))
        #expect(try writer.write(sink: "t", epoch: 8, minimumMarker: 7, pairs: pairs([:])) == .applied)
    }

    @Test func largeEpochIsAppliedAtOnce() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        let count = 200_000
        let epoch = (0..<count).lazy.map { index in (key: bytes("view:\(index)"), value: bytes("\(index * 7)")) }
        #expect(try writer.write(sink: "big", epoch: 1, minimumMarker: 0, pairs: epoch) == .applied)
        #expect(try server.command("DBSIZE") == .integer(Int64(count + 1)))
        #expect(try server.get("view:0") == "0")
        #expect(try server.get("view:123456") == "864192")
        #expect(try server.get("view:199999") == "1399993")
        // A second large epoch overwrites in place.
        let second = (0..<count).lazy.map { index in (key: bytes("view:\(index)"), value: bytes("x\(index)")) }
        #expect(try writer.write(sink: "big", epoch: 2, minimumMarker: 1, pairs: second) == .applied)
        #expect(try server.get("view:199999") == "x199999")
    }

    @Test(arguments: [RedisEpochScript.Form.flagged, .legacy])
    func outOfMemoryWritesNothing(form: RedisEpochScript.Form) throws {
        let server = try startedServer(["--maxmemory-policy", "noeviction"])
        let writer = try makeWriter(server, form: form)
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1"])) == .applied)

        // Full from the start: refused before anything is written.
        try server.command("CONFIG", "SET", "maxmemory", "1")
        let error = #expect(throws: RedisError.self) {
            try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["a": "2", "b": "2"]))
        }
        #expect(error?.code == .outOfMemory)
        #expect(error?.isRetriable == true)
        #expect(error?.breaksConnection == false)
        #expect(error?.reason == "Redis at 127.0.0.1:\(server.port) is over maxmemory and refused the epoch write (EVALSHA) (OOM); nothing was written")
        #expect(try server.get("a") == "1")
        #expect(try server.get("b") == nil)
        #expect(try server.get("eddy:s:epoch") == "1")
        // An empty epoch is refused too (it would write the marker).
        let empty = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs([:])) }
        #expect(empty?.code == .outOfMemory)

        // A limit that is passed when the script starts and crossed half-way: it completes past the limit,
        // never half-way. The command's own arguments count towards maxmemory when it is checked, so the
        // limit is calibrated with the same epoch sent once as stale (it writes nothing): its peak is the
        // memory in use at the check plus the script's own copies; the real run adds the written data.
        try server.command("CONFIG", "SET", "maxmemory", "0")
        let big = (0..<100_000).map { (key: bytes("key:\($0)"), value: bytes("value-\($0)-0123456789")) }
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: big) == .stale(marker: 1))
        let peakAtCheck = try memoryInfo(server, "used_memory_peak")
        let limit = peakAtCheck + 1 << 20
        try server.command("CONFIG", "SET", "maxmemory", String(limit))
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: big) == .applied)
        #expect(try server.command("DBSIZE") == .integer(100_002))
        #expect(try memoryInfo(server, "used_memory_peak") > limit)
        #expect(try writer.readMarker(sink: "s") == 2)
    }

    @Test func writeQueuedUnderPauseDiesWithItsConnection() throws {
        let server = try startedServer()
        let writer = try makeWriter(server, commandTimeout: .milliseconds(300))
        _ = try writer.readMarker(sink: "s")  // connected and idle
        try server.pause(writesFor: .seconds(60))
        defer { try? server.unpause() }
        let error = #expect(throws: RedisError.self) {
            try writer.write(sink: "s", epoch: 2, minimumMarker: 0, pairs: pairs(["a": "old"]))
        }
        #expect(error?.code == .timeout)
        #expect(error?.breaksConnection == true)
        #expect(!writer.connection.isOpen)
        // Redis has dropped the client and its queued script before the pause ends.
        #expect(try eventually { try server.connectedClients() == 0 })
        try server.unpause()

        // Had the old script survived, epoch 1 would now be stale (or overwritten by it).
        let fresh = RedisEpochWriter(connection: try connect(server.url), logger: testLogger)
        #expect(try fresh.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "new"])) == .applied)
        #expect(try eventually(timeout: .milliseconds(200)) { try server.get("a") != "new" } == false)
        #expect(try fresh.readMarker(sink: "s") == 1)
    }

    @Test func scriptIsLoadedAgainAfterScriptFlush() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1"])) == .applied)
        try server.command("SCRIPT", "FLUSH")
        let sha = String(decoding: try #require(writer.loadedScriptSHA), as: UTF8.self)
        #expect(try server.command("SCRIPT", "EXISTS", sha) == .array([.integer(0)]))
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["a": "2"])) == .applied)
        #expect(try server.command("SCRIPT", "EXISTS", sha) == .array([.integer(1)]))
        #expect(try server.get("a") == "2")
    }

    @Test func writerSurvivesARestartThroughANewConnection() throws {
        let server = try startedServer(persistent: true)
        var writer = try makeWriter(server, commandTimeout: .seconds(2))
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1"])) == .applied)
        server.stop()
        let down = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["a": "2"])) }
        #expect(down?.breaksConnection == true)
        #expect(down?.isRetriable == true)
        try server.start(persistent: true)
        writer = try makeWriter(server)
        #expect(try writer.readMarker(sink: "s") == 1)
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["a": "2"])) == .applied)

        // Restarted empty: the acknowledged epoch is gone.
        server.stop()
        try server.start(persistent: false)
        writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 2, pairs: pairs(["a": "3"])) == .behind(marker: nil))
    }
}
