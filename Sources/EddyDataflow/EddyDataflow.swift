// EddyDataflow: the pure core of Eddy's dataflow engine (DESIGN §2). No I/O, no threads, no Foundation.
//
// A pipeline compiles to a graph of operators that exchange batches of changes under one epoch barrier:
//
//     source rows ─► FilterProjectOperator ─► AggregateOperator ─► view ─┬─► sink
//     (decoded once   WHERE + SELECT list:      GROUP BY + aggregates:    │   (writes the net changes
//      per message)   maps each change at       retracts and adds rows,   │    of each epoch)
//                     once, keeps no state      emits the net change of   └─► view over view: its changes
//                                               each touched group at the      are the next operator's input
//                                               barrier (HAVING decides
//                                               which rows are in the view)
//
// What flows on every edge is a `ChangeBatch`: rows inserted, deleted, or updated old → new, each with its
// key (for an aggregate's output, the group key), stored flat, never one object per row. Operators are
// values: `apply` takes a batch in, and a stateful operator hands out what it owes at the barrier
// (`AggregateOperator.emitChanges(into:)`), so a group hit 1,000 times in an epoch sends one update, and a
// group whose output did not change sends nothing. A view's rows are keyed, so downstream a change is
// exact: an update replaces the row under its key, a delete removes it (a `DEL` in Redis).
//
// The epoch barrier, as the runtime drives it (one thread, the source loop):
//   1. apply every batch of the epoch to the operators, in topological order, passing each stateless
//      operator's output straight on;
//   2. at the barrier, in topological order: `emitChanges(into:)` and feed the result to the operators
//      downstream before their own `emitChanges`, so a view over a view changes in the same epoch as its
//      input;
//   3. `drainChangedState` of every stateful operator: the groups changed since the last checkpoint, as
//      key bytes → state bytes (nil for a deleted group), written with the source offsets and the epoch in
//      ONE LMDB transaction (DESIGN §3);
//   4. each sink writes the view changes of that epoch, fenced as today.
// On restart, `restore(key:state:)` is called for every stored group before any input, and the sources
// resume at the stored offsets: the operators then continue exactly as if they had never stopped.

/// An error of the dataflow core: a definition it cannot run, or stored state it cannot read.
public struct DataflowError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// An operator definition is inconsistent (an expression names a column the input does not have, …).
        case invalidDefinition
        /// Stored state cannot be decoded, or does not fit the operator's definition.
        case corruptState
        /// A call out of order (restoring state into an operator that has already taken input, …).
        case invalidUse
    }

    public var code: Code
    /// What went wrong and where, for a human.
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }
}
