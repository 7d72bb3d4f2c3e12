import EddyEngine
import EddyPostgres
import EddySQL
import Foundation

/// What the PostgreSQL side reads, from the runner: the pipeline's definitions, and each view's rows from the
/// last committed checkpoint, the same read `/api/views` does (`PipelineRunner.checkpointedRows`), once per
/// committed epoch, on a queue of its own.
struct RunnerPostgresDataSource: PostgresDataSource {
    let runner: PipelineRunner
    private let checkpointedViews: CheckpointedViewCache<Result<[[SQLValue]], any Error>>

    init(runner: PipelineRunner) {
        self.runner = runner
        checkpointedViews = CheckpointedViewCache(
            queue: DispatchQueue(label: "eddy.pg.checkpointed-views"),
            committedEpoch: { runner.statistics.snapshot.lastCommittedEpoch }
        ) { name in
            do {
                return try runner.checkpointedRows(view: name).map { .success($0.rows) }
            } catch {
                return .failure(error)
            }
        }
    }

    var pipeline: Pipeline { runner.pipeline }

    func checkpointedRows(of view: String) async throws -> [[SQLValue]]? {
        try await checkpointedViews.value(of: view)?.get()
    }
}
