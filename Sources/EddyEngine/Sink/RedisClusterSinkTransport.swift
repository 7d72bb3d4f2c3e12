import EddyRedis
import Logging

/// `SinkTransport` over a Redis Cluster (`RedisClusterEpochWriter`, docs/redis-cluster.md): one marker per hash
/// slot in use, each fenced by `SinkStateMachine.fence` against its **own** record — the progress of the last
/// acknowledged write that touched the slot — rather than the sink's acknowledged progress, which a slot an epoch
/// skipped never saw. The record is loaded from the store at start, kept here with every acknowledgement, and
/// stored by the checkpoint coordinator with the acknowledgement (`writtenSlots`).
///
/// Lost writes (a failover, a master restarted empty) are looked for on connect, on every probe, after any
/// change of the slot map and at least every `fullCheckInterval` while writing: every slot in use is read and
/// fenced; one missing or behind its record makes the whole view be re-sent (fenced per slot as any write: slots
/// already at it write nothing). Used only on its sink's thread.
final class RedisClusterSinkTransport: SinkTransport {
    private let sink: String
    private let writer: RedisClusterEpochWriter
    private let layout: RedisValueLayout
    private let logger: Logger
    /// Per slot in use, the progress of the last acknowledged write that touched it.
    private(set) var slotRecord: [UInt16: SinkProgress]
    /// Something was acknowledged but no slot recorded (a sink that wrote to a single Redis before, or a store from
    /// before the per-slot record): where the cluster stands is unknown until the whole view was written once.
    private var recordMissing: Bool
    private(set) var writtenSlots: [UInt16] = []
    private var lastFullCheck: ContinuousClock.Instant?

    /// How often a writing sink reads every slot in use, so that a slot that lost writes and that no epoch
    /// touches is noticed: a failover's slot map change is seen only by a call that reaches the failed master.
    static let fullCheckInterval = Duration.seconds(5)

    init(
        sink: String, seeds: [RedisURL], layout: RedisValueLayout = .string, slotRecord: [UInt16: SinkProgress], acknowledged: Bool,
        connectTimeout: Duration, commandTimeout: Duration, logger: Logger
    ) {
        self.sink = sink
        self.layout = layout
        self.logger = logger
        self.slotRecord = slotRecord
        self.recordMissing = acknowledged && slotRecord.isEmpty
        writer = RedisClusterEpochWriter(
            seeds: seeds, connectTimeout: connectTimeout, commandTimeout: commandTimeout,
            clientName: RedisSinkTransport.clientName(sink: sink), logger: logger)
    }

    func connectAndCheck(_ probe: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal? {
        writer.close()
        try writer.connect()
        return try check(probe)
    }

    func check(_ probe: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal? {
        if UnsafeFenceSwitch.isFenceDisabled { return nil }
        if recordMissing && probe.base != nil {
            logger.warning(
                "no per-slot record of what this sink wrote to the Redis Cluster; writing the whole view once", metadata: ["eddy.sink": "\(sink)"])
            return .wholeViewNeeded(.redisLostData)
        }
        let slots = slotRecord.keys.sorted().map { RedisHashSlot(Int($0)) }
        let markers = try writer.readMarkers(sink: sink, slots: slots)
        lastFullCheck = .now
        var ahead: SinkProgress?
        for slot in slots {
            let marker = try parsedMarker(markers[slot], slot: slot)
            switch SinkStateMachine.fence(marker: marker, write: slotWrite(probe, slot: slot)) {
            case nil, .alreadyApplied?:
                continue
            case .wholeViewNeeded(let reason)?:
                logger.warning(
                    "a Redis Cluster slot lost writes (failover, or a master restarted empty); re-sending the view",
                    metadata: [
                        "eddy.sink": "\(sink)", "eddy.redis.slot": "\(slot)", "eddy.redis.marker": "\(marker)",
                        "eddy.acknowledged": "\(slotRecord[UInt16(slot.value)]?.markerText ?? "nothing")", "eddy.reason": "\(reason)",
                    ])
                return .wholeViewNeeded(reason)
            case .markerAhead(let marker)?:
                ahead = ahead.map { Self.join($0, marker) } ?? marker
            }
        }
        return ahead.map(SinkStateMachine.Refusal.markerAhead)
    }

    func write(_ write: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal? {
        writtenSlots = []
        let mapBefore = writer.topology
        let refusals = try writer.write(sink: sink, marker: Array(write.progress.markerText.utf8), pairs: write.pairs, layout: layout) { (slot, bytes) -> RedisMarkerCheck<SinkStateMachine.Refusal> in
            if UnsafeFenceSwitch.isFenceDisabled { return .write }
            var marker = SinkProgress.Marker.absent
            if let bytes {
                guard let parsed = SinkProgress.parseMarker(bytes) else { return .unreadable(detail: RedisSinkTransport.unreadable(bytes)) }
                marker = parsed
            }
            if let refusal = SinkStateMachine.fence(marker: marker, write: self.slotWrite(write, slot: slot)) { return .refuse(refusal) }
            return .write
        }
        let touched = writer.touchedSlots
        // Slots not refused hold the write now; the epoch counts as written only when every refusal says "already there".
        var ahead: SinkProgress?
        for (_, refusal) in refusals.sorted(by: { $0.key < $1.key }) {
            switch refusal {
            case .alreadyApplied: continue
            case .wholeViewNeeded: return refusal
            case .markerAhead(let marker): ahead = ahead.map { Self.join($0, marker) } ?? marker
            }
        }
        if let ahead { return .markerAhead(ahead) }
        if writer.topology != mapBefore || lastFullCheck.map({ ContinuousClock.now - $0 >= Self.fullCheckInterval }) ?? true {
            // A failover may have lost acknowledged writes of slots this epoch did not touch: prefer re-sending.
            let afterWrite = SinkStateMachine.Write(progress: write.progress, pairs: SinkPairBatch(), isWholeView: false, base: nil)
            if case .wholeViewNeeded(let reason)? = try check(afterWrite) { return .wholeViewNeeded(reason) }
        }
        for slot in touched { slotRecord[UInt16(slot.value)] = write.progress }
        writtenSlots = touched.map { UInt16($0.value) }
        if write.isWholeView { recordMissing = false }
        return !touched.isEmpty && refusals.count == touched.count ? .alreadyApplied : nil
    }

    func compare(_ chunk: SinkRepairPass.Chunk, repair: Bool) throws -> RedisChunkComparison {
        throw RedisError(code: .unsupported, reason: "the repair pass does not run on a Redis Cluster sink", isRetriable: false, breaksConnection: false)
    }

    func disconnect() { writer.close() }

    /// `write` as the fence sees it in `slot`: on top of that slot's own record.
    private func slotWrite(_ write: SinkStateMachine.Write, slot: RedisHashSlot) -> SinkStateMachine.Write {
        var slotWrite = write
        slotWrite.base = slotRecord[UInt16(slot.value)]
        return slotWrite
    }

    private func parsedMarker(_ bytes: [UInt8]?, slot: RedisHashSlot) throws -> SinkProgress.Marker {
        guard let bytes else { return .absent }
        guard let marker = SinkProgress.parseMarker(bytes) else {
            throw RedisError(
                code: .invalidMarker,
                reason: "epoch marker \(RedisClusterEpochWriter.markerKey(sink: sink, slot: slot)) \(RedisSinkTransport.unreadable(bytes)): another program uses this key",
                isRetriable: false, breaksConnection: false)
        }
        return marker
    }

    /// The least progress that has reached both (the furthest offset of each partition): what this daemon's
    /// checkpoints must reach before every slot ahead of it is behind it.
    private static func join(_ first: SinkProgress, _ second: SinkProgress) -> SinkProgress {
        var joined = first
        joined.epoch = max(first.epoch, second.epoch)
        joined.offsets.merge(second.offsets) { max($0, $1) }
        return joined
    }
}
