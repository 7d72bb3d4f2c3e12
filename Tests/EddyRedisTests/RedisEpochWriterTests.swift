@testable import EddyRedis
import EddyTestSupport
import Testing

private typealias Pairs = [(key: [UInt8], value: [UInt8]?)]

/// An epoch from text: a `nil` value deletes the key.
private func pairs(_ values: [String: String?]) -> Pairs {
    values.sorted { $0.key < $1.key }.map { (key: bytes($0.key), value: $0.value.map(bytes)) }
}

private func makeWriter(_ server: RedisTestServer, commandTimeout: Duration = .seconds(30)) throws -> RedisEpochWriter {
    RedisEpochWriter(connection: try connect(server.url, commandTimeout: commandTimeout), logger: testLogger)
}

private func memoryInfo(_ server: RedisTestServer, _ field: String) throws -> Int {
    let info = try #require(try server.command("INFO", "memory").text)
    let line = try #require(info.split(whereSeparator: \.isNewline).first { $0.hasPrefix(field + ":") })
    return try #require(Int(line.dropFirst(field.count + 1)))
}

/// What a write did under the epoch-number fence these tests drive the writer with. The writer itself leaves the
/// fence to its caller (the engine's progress fence, tested in SinkStateMachineTests); a simple decimal fence
/// keeps these tests about what the writer owns: reading the marker under WATCH, all-or-nothing transactions,
/// refusals that write nothing.
private enum EpochOutcome: Equatable {
    case applied
    case stale(marker: UInt64)
    case behind(marker: UInt64?)
}

extension RedisEpochWriter {
    /// Applies `epoch` when `minimumMarker <= marker < epoch` (absent = 0), the marker holding the epoch in decimal.
    fileprivate func write<Epoch: Sequence>(sink: String, epoch: UInt64, minimumMarker: UInt64, pairs: Epoch) throws(RedisError) -> EpochOutcome
    where Epoch.Element == (key: [UInt8], value: [UInt8]?) {
        let refusal = try write(sink: sink, marker: bytes(String(epoch)), pairs: pairs) { marker -> RedisMarkerCheck<EpochOutcome> in
            let current: UInt64
            if let marker {
                guard let parsed = UInt64(String(decoding: marker, as: UTF8.self)) else {
                    return .unreadable(detail: "holds \"\(String(decoding: marker, as: UTF8.self))\", not an epoch number")
                }
                current = parsed
            } else {
                current = 0
            }
            if current >= epoch { return .refuse(.stale(marker: current)) }
            if current < minimumMarker { return .refuse(.behind(marker: marker == nil ? nil : current)) }
            return .write
        }
        return refusal ?? .applied
    }

    /// The marker as a decimal epoch.
    fileprivate func readEpoch(sink: String) throws(RedisError) -> UInt64? {
        try readMarker(sink: sink).flatMap { UInt64(String(decoding: $0, as: UTF8.self)) }
    }
}

@Suite struct RedisEpochWriterTests {
    @Test func markerKeyNamesTheSink() {
        #expect(RedisEpochWriter.markerKey(sink: "clicks") == "eddy:clicks:epoch")
    }

    @Test func appliesStaleAndBehindFollowTheMarker() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        #expect(try writer.readEpoch(sink: "s") == nil)

        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1", "b": "1"])) == .applied)
        #expect(try writer.readEpoch(sink: "s") == 1)
        #expect(try server.get("a") == "1")

        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 1, pairs: pairs(["a": "3"])) == .applied)
        #expect(try server.get("eddy:s:epoch") == "3")

        // Equal and older epochs are stale and write nothing.
        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 1, pairs: pairs(["a": "again", "b": nil])) == .stale(marker: 3))
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 0, pairs: pairs(["a": "older", "new": "x", "b": nil])) == .stale(marker: 3))
        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 1, pairs: pairs(["a": nil, "b": nil])) == .stale(marker: 3))
        #expect(try server.get("a") == "3")
        #expect(try server.get("b") == "1")
        #expect(try server.get("new") == nil)

        // The marker is below what was acknowledged: Redis lost data; nothing is written or deleted.
        #expect(try writer.write(sink: "s", epoch: 9, minimumMarker: 5, pairs: pairs(["a": "9", "b": nil])) == .behind(marker: 3))
        #expect(try server.get("a") == "3")
        #expect(try server.get("b") == "1")
        #expect(try writer.readEpoch(sink: "s") == 3)

        try server.flushAll()
        #expect(try writer.write(sink: "s", epoch: 10, minimumMarker: 3, pairs: pairs(["a": "10"])) == .behind(marker: nil))
        #expect(try server.get("a") == nil)
        // The whole view re-sent with the bound lowered to what Redis has.
        #expect(try writer.write(sink: "s", epoch: 10, minimumMarker: 0, pairs: pairs(["a": "10", "b": "10"])) == .applied)
        #expect(try server.get("b") == "10")

        // Sinks are fenced apart.
        #expect(try writer.write(sink: "other", epoch: 1, minimumMarker: 0, pairs: pairs(["o": "1"])) == .applied)
        #expect(try writer.readEpoch(sink: "s") == 10)
    }

    @Test func epochOfSetsAndDeletesAppliesBoth() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1", "b": "1", "c": "1"])) == .applied)
        // A row left the view (b), one changed (a), one arrived (d); deleting a key that is not there
        // (never written, or already deleted by an epoch whose reply was lost) is no error.
        let epoch = pairs(["a": "2", "b": nil, "d": "2", "never": nil])
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: epoch) == .applied)
        #expect(try server.get("a") == "2")
        #expect(try server.get("b") == nil)
        #expect(try server.get("c") == "1")
        #expect(try server.get("d") == "2")
        #expect(try server.command("DBSIZE") == .integer(4))
        #expect(try writer.readEpoch(sink: "s") == 2)
        // Deletes only: the keys are gone and the marker moves.
        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 2, pairs: pairs(["b": nil, "c": nil, "d": nil])) == .applied)
        #expect(try server.command("DBSIZE") == .integer(2))
        #expect(try writer.readEpoch(sink: "s") == 3)
        // A key of another type is deleted too.
        try server.command("RPUSH", "list", "x")
        #expect(try writer.write(sink: "s", epoch: 4, minimumMarker: 3, pairs: pairs(["list": nil])) == .applied)
        #expect(try server.command("EXISTS", "list") == .integer(0))
    }

    @Test func emptyEpochStillMovesTheMarker() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 7, minimumMarker: 0, pairs: Pairs()) == .applied)
        #expect(try writer.readEpoch(sink: "s") == 7)
        #expect(try server.command("DBSIZE") == .integer(1))
    }

    @Test func keysAndValuesAreBinarySafe() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        let key: [UInt8] = [0, 1, 13, 10, 0xFF, 0xC3, 0x28, 0x24, 0x2A]
        let value: [UInt8] = Array(0...255).reversed()
        #expect(try writer.write(sink: "bin", epoch: 1, minimumMarker: 0, pairs: [(key: key, value: value), (key: [], value: [])] as Pairs) == .applied)
        let connection = try server.connect()
        #expect(try connection.command([bytes("GET"), key]) == .string(value))
        #expect(try connection.command([bytes("GET"), []]) == .string([]))
        #expect(try writer.write(sink: "bin", epoch: 2, minimumMarker: 1, pairs: [(key: key, value: nil)]) == .applied)
        #expect(try connection.command([bytes("EXISTS"), key]) == .integer(0))
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
        #expect(try writer.readMarker(sink: "s") == bytes("twelve"))  // what it means is the caller's fence's business

        try server.command("DEL", "eddy:s:epoch")
        try server.command("RPUSH", "eddy:s:epoch", "1")
        let list = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1"])) }
        #expect(list?.reason == "epoch marker eddy:s:epoch on Redis at 127.0.0.1:\(server.port) holds a list, not an epoch marker: another program uses this key")
        let read = #expect(throws: RedisError.self) { try writer.readMarker(sink: "s") }
        #expect(read?.code == .invalidMarker)
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
        #expect(try writer.readEpoch(sink: "s") == .max)
        // Leading zeros written by someone else still compare by value.
        try server.command("SET", "eddy:t:epoch", "0007")
        #expect(try writer.write(sink: "t", epoch: 7, minimumMarker: 0, pairs: pairs([:])) == .stale(marker: 7))
        #expect(try writer.write(sink: "t", epoch: 8, minimumMarker: 7, pairs: pairs([:])) == .applied)
    }

    @Test func largeEpochIsAppliedAtOnce() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        let count = 200_001  // the last MSET is a partial one
        let epoch = (0..<count).lazy.map { index in (key: bytes("view:\(index)"), value: Optional(bytes("\(index * 7)"))) }
        #expect(try writer.write(sink: "big", epoch: 1, minimumMarker: 0, pairs: epoch) == .applied)
        #expect(try server.command("DBSIZE") == .integer(Int64(count + 1)))
        #expect(try server.get("view:0") == "0")
        #expect(try server.get("view:123456") == "864192")
        #expect(try server.get("view:199999") == "1399993")
        // A second large epoch overwrites in place.
        let second = (0..<count).lazy.map { index in (key: bytes("view:\(index)"), value: Optional(bytes("x\(index)"))) }
        #expect(try writer.write(sink: "big", epoch: 2, minimumMarker: 1, pairs: second) == .applied)
        #expect(try server.get("view:199999") == "x199999")
    }

    @Test func largeEpochOfDeletesIsAppliedAtOnce() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        let existing = (0..<100_000).lazy.map { index in (key: bytes("view:\(index)"), value: Optional(bytes("\(index)"))) }
        #expect(try writer.write(sink: "big", epoch: 1, minimumMarker: 0, pairs: existing) == .applied)
        // 100 001 deletes (the last DEL names one key), half of keys that exist (so DELs remove 1 000, 0 or some), beside 10 sets.
        let deletes = (50_000..<150_001).lazy.map { index in (key: bytes("view:\(index)"), value: [UInt8]?.none) }
        let sets = (0..<10).lazy.map { index in (key: bytes("new:\(index)"), value: Optional(bytes("n"))) }
        #expect(try writer.write(sink: "big", epoch: 2, minimumMarker: 1, pairs: [deletes, sets].joined()) == .applied)
        #expect(try server.command("DBSIZE") == .integer(50_000 + 10 + 1))
        #expect(try server.get("view:49999") == "49999")
        #expect(try server.get("view:50000") == nil)
        #expect(try server.get("view:99999") == nil)
        #expect(try server.get("new:9") == "n")
        #expect(try writer.readEpoch(sink: "big") == 2)
    }

    @Test func outOfMemoryWritesNothing() throws {
        let server = try startedServer(["--maxmemory-policy", "noeviction"])
        let writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1", "gone": "1"])) == .applied)

        try server.command("CONFIG", "SET", "maxmemory", "1")
        // Inside MULTI, Redis refuses every command queued over the limit, DEL included (it would free
        // memory, but queueing it costs some), so deletes never slip through alone.
        let error = #expect(throws: RedisError.self) {
            try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["a": "2", "b": "2", "gone": nil]))
        }
        #expect(error?.code == .outOfMemory)
        #expect(error?.isRetriable == true)
        #expect(error?.breaksConnection == false)
        #expect(error?.reason == "Redis at 127.0.0.1:\(server.port) is over maxmemory and refused the epoch write (MULTI/EXEC) (OOM); nothing was written")
        #expect(try server.get("a") == "1")
        #expect(try server.get("b") == nil)
        #expect(try server.get("gone") == "1")
        #expect(try server.get("eddy:s:epoch") == "1")
        // An epoch of deletes only, and an empty one, are refused too (they would write the marker).
        let deletesOnly = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["gone": nil])) }
        #expect(deletesOnly?.code == .outOfMemory)
        #expect(try server.get("gone") == "1")
        let empty = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs([:])) }
        #expect(empty?.code == .outOfMemory)
        // Room again: the same connection and writer go on.
        try server.command("CONFIG", "SET", "maxmemory", "0")
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["a": "2", "b": "2", "gone": nil])) == .applied)
        #expect(try server.get("gone") == nil)
        #expect(try server.get("b") == "2")
    }

    @Test func transactionRefusedAtExecIsOutOfMemory() throws {
        // Memory crossing the limit after queueing and before EXEC (other clients writing) makes Redis
        // refuse EXEC itself with this reply (captured from Redis 7.0.15); it cannot be timed from a test.
        let exec = "EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'."
        #expect(RedisEpochWriter.abortReason(execError: exec, refusedWhileQueued: nil) == "OOM command not allowed when used memory > 'maxmemory'.")
        let previous = "EXECABORT Transaction discarded because of previous errors."
        #expect(RedisEpochWriter.abortReason(execError: previous, refusedWhileQueued: "OOM no room") == "OOM no room")
        #expect(RedisEpochWriter.abortReason(execError: previous, refusedWhileQueued: nil) == previous)

        let server = try startedServer()
        let connection = try connect(server.url)
        let error = connection.serverError(RedisEpochWriter.abortReason(execError: exec, refusedWhileQueued: nil), commandName: "the epoch write")
        #expect(error.code == .outOfMemory)
        #expect(error.isRetriable)
    }

    @Test func transactionCrossingTheLimitWhileQueuedWritesNothing() throws {
        let server = try startedServer(["--maxmemory-policy", "noeviction"])
        let writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1"])) == .applied)
        // Queued commands hold their arguments: 100 000 pairs (~9 MB queued) pass 2 MB of room half-way
        // through the queue; the MSET refused there aborts the whole transaction, including the MSETs
        // queued before it.
        try server.command("CONFIG", "SET", "maxmemory", String(try memoryInfo(server, "used_memory") + 2 << 20))
        let big: Pairs = (0..<100_000).map { (key: bytes("key:\($0)"), value: bytes("value-\($0)-0123456789")) }
        let error = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: big) }
        #expect(error?.code == .outOfMemory)
        #expect(try server.command("DBSIZE") == .integer(2))
        #expect(try writer.readEpoch(sink: "s") == 1)
        try server.command("CONFIG", "SET", "maxmemory", "0")
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: big) == .applied)
        #expect(try server.command("DBSIZE") == .integer(100_002))
    }

    @Test func transactionStartsOverWhenTheMarkerMovesAfterWatch() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1", "b": "1"])) == .applied)

        // Rewritten to the same value: still a change for WATCH, so EXEC applies nothing and the write
        // starts over, then succeeds.
        var interventions = 0
        writer.afterMarkerRead = {
            interventions += 1
            if interventions == 1 { _ = try? server.command("SET", "eddy:s:epoch", "1") }
        }
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["a": "2"])) == .applied)
        #expect(interventions == 2)

        // A newer writer gets in between: the epoch is stale and nothing of it is written.
        interventions = 0
        writer.afterMarkerRead = {
            interventions += 1
            _ = try? server.command("SET", "eddy:s:epoch", "9")
        }
        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 2, pairs: pairs(["a": "3", "c": "3", "b": nil])) == .stale(marker: 9))
        #expect(interventions == 1)
        #expect(try server.get("a") == "2")
        #expect(try server.get("b") == "1")
        #expect(try server.get("c") == nil)

        // The marker changes every time: the write gives up with a retriable error.
        writer.afterMarkerRead = { _ = try? server.command("SET", "eddy:s:epoch", "9") }
        let error = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 10, minimumMarker: 9, pairs: pairs(["a": "10"])) }
        #expect(error?.code == .serverUnavailable)
        #expect(error?.isRetriable == true)
        #expect(try server.get("a") == "2")
    }

    /// An epoch whose MSETs are sent in several chunks is encoded again when its transaction starts over, and the
    /// second attempt applies all of it (and only it).
    @Test func aChunkedEpochStartsOverWhole() throws {
        let server = try startedServer()
        let writer = try makeWriter(server)
        let count = 150_000
        let epoch: Pairs = (0..<count).map { (key: bytes("view:\($0)"), value: bytes("v\($0 * 3)")) }
        #expect(epoch.reduce(0) { $0 + $1.key.count + ($1.value?.count ?? 0) } > 2 * RedisEpochWriter.streamedChunkBytes)
        var interventions = 0
        writer.afterMarkerRead = {
            interventions += 1
            if interventions == 1 { _ = try? server.command("SET", "eddy:s:epoch", "0") }
        }
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: epoch) == .applied)
        #expect(interventions == 2)
        #expect(try server.command("DBSIZE") == .integer(Int64(count + 1)))
        #expect(try server.get("view:0") == "v0")
        #expect(try server.get("view:74999") == "v224997")
        #expect(try server.get("view:149999") == "v449997")
        #expect(try writer.readEpoch(sink: "s") == 1)
    }

    /// WATCH and GET go out together: when WATCH is refused (a user without the permission), GET's reply
    /// must still be read, so that the next command on the connection gets its own reply.
    @Test func refusedWatchLeavesTheConnectionInStep() throws {
        let server = try startedServer()
        try server.command("ACL", "SETUSER", "nowatch", "on", ">pw", "~*", "+@all", "-watch")
        try server.command("SET", "eddy:s:epoch", "5")
        var url = server.url
        url.user = "nowatch"
        url.password = "pw"
        let writer = RedisEpochWriter(connection: try connect(url), logger: testLogger)
        let error = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 6, minimumMarker: 5, pairs: pairs(["a": "6"])) }
        #expect(error?.code == .permissionDenied)
        #expect(error?.reason.contains("WATCH") == true)
        #expect(try server.get("a") == nil)
        #expect(try server.get("eddy:s:epoch") == "5")

        // Still in step: each command gets its own reply (not GET's "5" left over).
        #expect(writer.connection.isOpen)
        #expect(try writer.connection.command("ECHO", "next") == .string(bytes("next")))
        #expect(try writer.readEpoch(sink: "s") == 5)
        try server.command("SET", "eddy:s:epoch", "7")
        #expect(try writer.readEpoch(sink: "s") == 7)
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
        // Redis has dropped the client and its queued transaction before the pause ends.
        #expect(try eventually { try server.connectedClients() == 0 })
        try server.unpause()

        // Had the old transaction survived, epoch 1 would now be stale (or overwritten by it).
        let fresh = RedisEpochWriter(connection: try connect(server.url), logger: testLogger)
        #expect(try fresh.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "new"])) == .applied)
        #expect(try eventually(timeout: .milliseconds(200)) { try server.get("a") != "new" } == false)
        #expect(try fresh.readEpoch(sink: "s") == 1)
    }

    @Test func timeoutDuringALargeWriteLeavesAllOrNothing() throws {
        let server = try startedServer()
        let count = 100_000
        let epoch: Pairs = (0..<count).map { (key: bytes("view:\($0)"), value: bytes("\($0)")) }
        let writer = try makeWriter(server, commandTimeout: .milliseconds(5))
        _ = try writer.readMarker(sink: "s")
        var timedOut = false
        do {
            _ = try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: epoch)
        } catch {
            #expect(error.code == .timeout)
            timedOut = true
        }
        #expect(timedOut, "a 100 000-key epoch should take longer than 5 ms")
        // Redis may still be reading the old command (the socket was closed after it was sent): it runs
        // whole or not at all, before or after the retry; the fence makes the order harmless.
        let retry = try makeWriter(server)
        let size = try retry.connection.command("DBSIZE")
        #expect(size == .integer(0) || size == .integer(Int64(count + 1)))
        let outcome = try retry.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: epoch)
        #expect(outcome == .applied || outcome == .stale(marker: 1))
        if size != .integer(0) { #expect(outcome == .stale(marker: 1)) }
        #expect(try retry.connection.command("DBSIZE") == .integer(Int64(count + 1)))
    }

    /// A large epoch's commands go to the socket directly (not through hiredis's buffer): a server gone while they
    /// are written is a broken connection to retry, not a SIGPIPE, and nothing of the epoch is applied.
    @Test func serverGoneDuringALargeDirectWriteBreaksTheConnection() throws {
        let server = try startedServer(persistent: true)
        let writer = try makeWriter(server, commandTimeout: .seconds(5))
        #expect(try writer.write(sink: "s", epoch: 1, minimumMarker: 0, pairs: pairs(["a": "1"])) == .applied)
        let epoch: Pairs = (0..<100_000).map { (key: bytes("view:\($0)"), value: bytes("\($0)")) }
        #expect(epoch.reduce(0) { $0 + $1.key.count + ($1.value?.count ?? 0) } > RedisConnection.directWriteBytes)
        writer.afterMarkerRead = { server.stop() }
        let error = #expect(throws: RedisError.self) { try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: epoch) }
        #expect(error?.code == .connectionBroken, "\(String(describing: error))")
        #expect(error?.breaksConnection == true && error?.isRetriable == true)
        #expect(!writer.connection.isOpen)
        try server.start(persistent: true)
        let retry = try makeWriter(server)
        #expect(try retry.readEpoch(sink: "s") == 1)
        #expect(try retry.connection.command("DBSIZE") == .integer(2))
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
        #expect(try writer.readEpoch(sink: "s") == 1)
        #expect(try writer.write(sink: "s", epoch: 2, minimumMarker: 1, pairs: pairs(["a": "2"])) == .applied)

        // Restarted empty: the acknowledged epoch is gone.
        server.stop()
        try server.start(persistent: false)
        writer = try makeWriter(server)
        #expect(try writer.write(sink: "s", epoch: 3, minimumMarker: 2, pairs: pairs(["a": "3"])) == .behind(marker: nil))
    }
}
