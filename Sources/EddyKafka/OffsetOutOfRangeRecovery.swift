/// Where a partition continues after the broker answered a fetch with "offset out of range", decided from
/// the offset that was expected and the partition's real watermarks (asked of the broker, not taken from the
/// error). Pure: no I/O, so every case is tested without a broker.
///
/// A broker can answer OFFSET_OUT_OF_RANGE for an offset that is inside the partition (a lagging follower,
/// a leader change, an injected fault): treating every such answer as retention would skip messages or, by
/// seeking back to the low watermark, count them twice. Only the watermarks tell the cases apart.
public enum OffsetOutOfRangeRecovery: Sendable, Equatable {
    /// Messages `expected..<low` were deleted by retention before they were read: continue at `low`.
    /// `missing` (`low - expected`, always positive) is the size of the gap.
    case retentionGap(continueAt: Int64, missing: Int64)
    /// The expected offset lies beyond the partition's end (a truncated log, an unclean leader election, a
    /// re-created topic): continue at `high`. Going back further would count messages twice.
    case pastEnd(continueAt: Int64, beyondBy: Int64)
    /// The expected offset is inside the partition (or the watermarks are unknown): the error was spurious
    /// or cannot be judged, so fetch the same offset again. Nothing is skipped and nothing is read twice.
    case retry(at: Int64)

    /// - Parameters:
    ///   - expected: the next offset the reader needs (the one the failed fetch asked for).
    ///   - low: the partition's low watermark (oldest kept offset), or a negative number when unknown.
    ///   - high: the partition's high watermark (next offset to be written), or a negative number when unknown.
    public init(expected: Int64, low: Int64, high: Int64) {
        guard expected >= 0, low >= 0, high >= low else {
            // A logical offset, or no trustworthy bounds: never skip without evidence.
            self = .retry(at: expected)
            return
        }
        if expected < low {
            self = .retentionGap(continueAt: low, missing: low - expected)
        } else if expected > high {
            self = .pastEnd(continueAt: high, beyondBy: expected - high)
        } else {
            // `expected == high` is valid too: the fetch waits for the next message.
            self = .retry(at: expected)
        }
    }

    /// The offset to read next.
    public var nextOffset: Int64 {
        switch self {
        case .retentionGap(let offset, _), .pastEnd(let offset, _), .retry(let offset): offset
        }
    }
}
