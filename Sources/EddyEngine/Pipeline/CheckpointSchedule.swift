/// When the hot path closes an epoch: every `interval` while caught up (freshness), but while the consumer is
/// far behind the partitions' end an epoch may run up to `catchUpInterval`, so that a group touched throughout a
/// backlog is written to LMDB and Redis once per long epoch rather than once per second. An epoch also closes as
/// soon as `dirtyGroupLimit` groups are dirty, or while catching up `catchUpDirtyGroupLimit` (they bound one
/// transaction's size and the barrier's memory). The catch-up bound is larger because with many keys a smaller
/// one buys nothing: a backlog spread over ~a million keys dirties a group of its own with nearly every message,
/// so epochs closed at 100,000 groups wrote a group per message and rewrote nearly every LMDB leaf page each time
/// (measured at 950K keys: 2.8M group writes for 3M messages, half the daemon's CPU). Only when an epoch closes
/// changes, never what it holds: exactness is the same either way.
///
/// An epoch turns catch-up when the backlog passes `catchUpBacklog`, and then runs until the consumer has read
/// up to the partitions' ends as they were at that moment (or a bound above holds), not only until the backlog is
/// back under `catchUpBacklog`: that last stretch takes milliseconds to read, and as an epoch of its own it
/// rewrote most of LMDB's leaf pages a second time (at 950K keys, its ~95,000 groups fell on nearly every page:
/// 49 MB written after the catch-up's 45 MB). A stream the consumer cannot outrun still closes its epochs, at
/// `catchUpInterval`, and the next one turns catch-up only if the backlog is still past the bound.
struct CheckpointSchedule: Sendable, Equatable {
    /// The configured interval (`--checkpoint-interval`): the one that holds once caught up.
    var interval: Duration
    /// The longest an epoch may run while catching up (`--max-checkpoint-interval`); at least `interval`.
    var catchUpInterval: Duration
    /// Dirty groups that close an epoch at once while caught up.
    var dirtyGroupLimit: Int
    /// Dirty groups that close an epoch at once while catching up; at least `dirtyGroupLimit`.
    var catchUpDirtyGroupLimit: Int
    /// Messages behind the partitions' ends beyond which the consumer counts as catching up.
    var catchUpBacklog: Int64
    /// Whether the open epoch is a catch-up one (see `noteBacklog`); `epochClosed()` clears it.
    private(set) var epochCatchesUp = false

    init(interval: Duration, catchUpInterval: Duration? = nil, dirtyGroupLimit: Int, catchUpDirtyGroupLimit: Int? = nil, catchUpBacklog: Int64) {
        precondition(interval > .zero, "the checkpoint interval must be positive")
        self.interval = interval
        self.catchUpInterval = max(interval, catchUpInterval ?? interval * 10)
        self.dirtyGroupLimit = dirtyGroupLimit
        self.catchUpDirtyGroupLimit = max(dirtyGroupLimit, catchUpDirtyGroupLimit ?? dirtyGroupLimit)
        self.catchUpBacklog = catchUpBacklog
    }

    /// Notes the backlog (messages between the consumer's positions and the partitions' ends, as last known);
    /// true when the open epoch turns catch-up now, and the caller notes the ends it reads up to before closing.
    mutating func noteBacklog(_ backlog: Int64) -> Bool {
        guard !epochCatchesUp, backlog > catchUpBacklog else { return false }
        epochCatchesUp = true
        return true
    }

    /// Whether to close the open epoch now.
    ///
    /// - Parameters:
    ///   - elapsed: time since the last checkpoint.
    ///   - dirtyGroups: groups changed since then.
    ///   - reachedCatchUpEnds: whether the consumer has read up to the ends noted when the epoch turned catch-up
    ///     (asked only of a catch-up epoch).
    func isDue(elapsed: Duration, dirtyGroups: Int, reachedCatchUpEnds: @autoclosure () -> Bool) -> Bool {
        if epochCatchesUp { return reachedCatchUpEnds() || dirtyGroups >= catchUpDirtyGroupLimit || elapsed >= catchUpInterval }
        return dirtyGroups >= dirtyGroupLimit || elapsed >= interval
    }

    mutating func epochClosed() { epochCatchesUp = false }

    /// A partition's end: the larger of its last known high watermark and its entry in `targets`, the ends at
    /// start (-1 for neither).
    static func end(ofPartition index: Int, highWatermarks: [Int64], targets: [Int64]) -> Int64 {
        max(index < highWatermarks.count ? highWatermarks[index] : -1, index < targets.count ? targets[index] : -1)
    }

    /// The messages still to read up to each partition's `end`: per partition, its end minus the next offset, or
    /// minus `starts` (where it was assigned from) while nothing of it has been read: with many partitions most have
    /// delivered nothing in the first moments, and counting them as 0 made a large backlog look small (the first
    /// epochs of a catch-up closed at the caught-up bounds). A partition whose position and start are both unknown
    /// counts 0. (Asked after every batch: it allocates nothing.)
    static func backlog(nextOffsets: [Int64], starts: [Int64], end: (_ partition: Int) -> Int64) -> Int64 {
        var total: Int64 = 0
        for index in nextOffsets.indices {
            let position = nextOffsets[index] >= 0 ? nextOffsets[index] : index < starts.count ? starts[index] : -1
            guard position >= 0 else { continue }
            total += max(0, end(index) - position)
        }
        return total
    }
}
