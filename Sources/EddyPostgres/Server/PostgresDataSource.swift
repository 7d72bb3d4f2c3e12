import EddySQL

/// What the PostgreSQL side reads from the pipeline. Implementations read committed checkpoints only (the
/// same read as `eddy query` and `/api/views`), never the hot path's live state, and never block an event
/// loop: `checkpointedRows` runs its scan elsewhere and awaits it.
public protocol PostgresDataSource: Sendable {
    /// The pipeline whose views are queried: their names and columns, its sources and sinks.
    var pipeline: Pipeline { get }
    /// A view's rows from the last committed checkpoint, in the view's output-column order; nil while no
    /// checkpoint holds it (the pipeline has not committed one yet).
    func checkpointedRows(of view: String) async throws -> [[SQLValue]]?
}
