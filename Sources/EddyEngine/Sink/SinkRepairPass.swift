import EddyRedis

/// One slow pass comparing Redis with a checkpoint's rendering of a sink's view, chunk by chunk, rewriting the
/// keys that differ (issue 14, point 5). A sink writes only the keys an epoch changed, so a key another program
/// overwrote or deleted would otherwise stay wrong for as long as its group is idle.
///
/// The pass holds the view rendered from one checkpoint (`pairs`) and a cursor. Epochs committed after it are
/// folded in as they come (`advance`): their pairs are exactly the keys they changed, rendered from their
/// checkpoint, so the snapshot plus those pairs is the newest checkpoint's view, and the pass carries on
/// across epochs instead of starting over after each (on a busy pipeline a large view would otherwise never
/// be finished). Each chunk is compared only while Redis' marker says Redis holds exactly the checkpoint whose
/// values are expected (`SinkProgress.isHeld(byMarker:)`), and repaired in a transaction fenced by that marker
/// (`RedisKeyRepairer`), so a repair never writes over a newer epoch.
///
/// Free of threads; the I/O is the `compare` function handed to `step` (the sink's connection, or a
/// connection of `eddy verify`).
public struct SinkRepairPass: Sendable {
    public typealias Bytes = [UInt8]
    /// Compares a chunk with Redis under the marker check, repairing when asked (`RedisKeyRepairer.compare`).
    public typealias Compare = (
        _ chunk: [(key: Bytes, value: Bytes?)], _ repair: Bool, _ markerMatches: ([UInt8]?) -> Bool
    ) throws -> RedisChunkComparison

    /// What one step found.
    public enum Step: Sendable, Equatable {
        /// A chunk of `keys` keys was compared; `differing` are those that differed (repaired if `repaired`).
        case compared(keys: Int, differing: [Difference], repaired: Bool)
        /// Redis' marker does not stand for the expected values (Redis is at another point of the stream, or
        /// another writer is active): the chunk was not compared. `marker` is what the key held.
        case markerMismatch(marker: Bytes?)
        /// The marker changed during the chunk (an epoch was written): compare the chunk again.
        case markerMoved
        /// Nothing is left to compare.
        case finished
    }

    public struct Difference: Sendable, Equatable {
        public var key: Bytes
        public var difference: RedisKeyDifference

        public init(key: Bytes, difference: RedisKeyDifference) {
            self.key = key
            self.difference = difference
        }
    }

    /// The checkpoint whose values the pass expects: the snapshot's, or the newest folded in since.
    public private(set) var progress: SinkProgress
    /// Keys in the snapshot; the pass compares exactly these (a key new since then waits for the next pass).
    public var keyCount: Int { pairs.count }
    /// Keys compared so far.
    public private(set) var position = 0
    public var isFinished: Bool { position >= pairs.count }

    private let pairs: SinkPairBatch
    /// Values of snapshot keys changed by epochs after the snapshot (nil: the key was deleted).
    private var overrides: [Bytes: Bytes?] = [:]

    /// - Parameters:
    ///   - progress: the checkpoint the pairs were rendered from.
    ///   - pairs: the whole view rendered from it (distinct keys).
    public init(progress: SinkProgress, pairs: SinkPairBatch) {
        self.progress = progress
        self.pairs = pairs
    }

    /// Checkpoint `progress`, newer than the pass's, committed with these dirty pairs: from now on Redis is
    /// expected to hold it. An epoch not newer is ignored (its values are already in the snapshot).
    public mutating func advance(to progress: SinkProgress, pairs: some Sequence<SinkStateMachine.Pair>) {
        guard progress.epoch > self.progress.epoch else { return }
        self.progress = progress
        for pair in pairs { overrides[pair.key] = .some(pair.value) }
    }

    /// The next keys to compare, at most `maxKeys`, with the values expected now; nil when the pass is done.
    public func nextChunk(maxKeys: Int) -> Chunk? {
        precondition(maxKeys > 0, "a repair chunk needs at least one key")
        guard !isFinished else { return nil }
        let end = min(pairs.count, position + maxKeys)
        var chunk: [(key: Bytes, value: Bytes?)] = []
        chunk.reserveCapacity(end - position)
        for pair in pairs[position..<end] {
            chunk.append((pair.key, overrides[pair.key] ?? pair.value))
        }
        return Chunk(start: position, pairs: chunk, progress: progress)
    }

    /// A chunk's comparison came back. The cursor moves only past a chunk that was compared.
    public mutating func record(_ comparison: RedisChunkComparison, of chunk: Chunk) -> Step {
        switch comparison {
        case .markerMismatch(let marker):
            return .markerMismatch(marker: marker)
        case .markerMoved:
            return .markerMoved
        case .compared(let differences, let repaired):
            if position == chunk.start { position = chunk.start + chunk.pairs.count }
            return .compared(
                keys: chunk.pairs.count,
                differing: differences.map { Difference(key: chunk.pairs[$0.index].key, difference: $0.difference) },
                repaired: repaired)
        }
    }

    /// `nextChunk`, `compare` and `record` in one: compares (with `repair`, repairs) the next chunk.
    public mutating func step(maxKeys: Int, repair: Bool, compare: Compare) throws -> Step {
        guard let chunk = nextChunk(maxKeys: maxKeys) else { return .finished }
        return record(try compare(chunk.pairs, repair, chunk.progress.isHeld(byMarker:)), of: chunk)
    }

    /// Keys to compare, taken from the pass at `start`, with the values of checkpoint `progress`.
    public struct Chunk: Sendable {
        public let start: Int
        public let pairs: [(key: Bytes, value: Bytes?)]
        public let progress: SinkProgress
    }
}

extension SinkProgress {
    /// Whether Redis' marker (its raw value, nil when absent) says Redis holds exactly this checkpoint's
    /// values: the same offsets on every partition, in the same output form. The one place the repair and
    /// `eddy verify` read the marker.
    public func isHeld(byMarker marker: [UInt8]?) -> Bool {
        guard let marker, case .progress(let held)? = SinkProgress.parseMarker(marker) else { return false }
        return held.form == form && held.compared(to: self) == .same
    }
}
