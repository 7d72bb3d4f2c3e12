import EddyDataflow
import EddySQL
import EddyState

/// The pipeline's views as a dataflow graph (DESIGN §2, revised):
///
///     Kafka ─▶ decode once ─▶ source views (GROUP BY over a source: the hot path's group tables, one thread)
///                                 │ barrier: each changed group's old row → new row
///                                 ▼
///                             derived views (views over views, subqueries in FROM: EddyDataflow operators,
///                                 │           on the checkpoint thread, in definition order)
///                                 ▼
///                             sinks (each writes its view's changes of the epoch, fenced)
///
/// A pipeline may read several sources, each with its own topic, consumer, start-up mode and offsets; the one
/// hot thread reads them in turn. A source view aggregates on the hot path, which decodes each message once for
/// all the views of its source. At each
/// barrier the checkpoint thread turns the groups a source view changed into a batch of changes (the old row
/// is what the last checkpoint holds, the new one what the barrier hands over), and every derived view reads
/// its input's batch: an aggregate (`AggregateOperator`) emits the net change of each group it touched, a
/// filter and projection (`FilterProjectOperator`) maps each change. Every operator's state, every offset
/// and the epoch go into one LMDB transaction. Views are in definition order, which the binder guarantees
/// is an order in which a view comes after its input (no cycles).
public struct DataflowGraph: Sendable {
    /// How one view is run.
    public enum Node: Sendable {
        /// A `GROUP BY` view over the source, aggregated on the hot path.
        case source(ViewPlan)
        /// A view over another view, run by a dataflow operator over its input's changes at each barrier.
        case derived(DerivedViewPlan)
    }

    /// The sources views read, in the pipeline's order.
    public let sources: [Source]
    /// Every view of the pipeline (subqueries in `FROM` included), in definition order.
    public let views: [View]
    public let nodes: [Node]
    /// Per view, the indices of the views that read it.
    public let readers: [[Int]]
    /// Per source, the `TUMBLE` its hot path computes (`window_start`, `window_end` after the source's columns):
    /// one per source, since every view binds those columns at the same positions; views with another window
    /// run on the row path.
    public let hotPathWindows: [View.TimeWindow?]

    /// - Throws: `.unsupported` for what the engine cannot run yet (a watermark that is not a fixed delay),
    ///   at `file:line:column`.
    public init(pipeline: Pipeline) throws(EngineError) {
        guard !pipeline.views.isEmpty else {
            throw EngineError(.unsupported, "the pipeline defines no materialized view: there is nothing to run")
        }
        let sourceNames = Set(pipeline.views.map(\.sourceName))
        let sources = pipeline.sources.filter { sourceNames.contains($0.name) }
        let topics = Dictionary(grouping: sources, by: \.kafka.topic)
        if let (topic, sharing) = topics.first(where: { $0.value.count > 1 }) {
            throw EngineError(.unsupported, "sources \(sharing.map(\.name).joined(separator: " and ")) read the same topic '\(topic)': their offsets would be one; define one source per topic and views over it")
        }
        // What is bound but not run is refused where it is written rather than run without it.
        for source in sources {
            if let watermark = source.watermark, watermark.delayMicroseconds == nil {
                throw EngineError(.unsupported, "\(watermark.location): WATERMARK FOR \(watermark.columnName) AS \(watermark.expression): only \(watermark.columnName) - INTERVAL '...' (a fixed delay) is run")
            }
        }
        var nodes: [Node] = []
        var readers = [[Int]](repeating: [], count: pipeline.views.count)
        var hotPathWindows = [View.TimeWindow?](repeating: nil, count: sources.count)
        for (index, view) in pipeline.views.enumerated() {
            switch view.input {
            case .source(let sourceName):
                let sourceIndex = sources.firstIndex { $0.name == sourceName }!
                let source = sources[sourceIndex]
                // A watermark's late-event filter and the windows the hot path does not compute (HOP, EMIT ON
                // WINDOW CLOSE) run on the row path: the hot path's views see every message.
                var rowPath = source.watermark != nil || !view.temporalFilter.isEmpty
                if let window = view.window, !ViewPlan.runsOnHotPath(window, of: view, over: source)
                    || hotPathWindows[sourceIndex].map({ !$0.isSameWindow(as: window) }) == true
                {
                    rowPath = true
                }
                if rowPath {
                    nodes.append(.derived(try DerivedViewPlan(view: view, input: .sourceRows(sourceIndex), inputKeyWidth: DerivedViewPlan.sourceRowKeyWidth, inputWidth: source.rowColumns.count)))
                    continue
                }
                do {
                    nodes.append(.source(try ViewPlan(view: view, source: source)))
                    if let window = view.window { hotPathWindows[sourceIndex] = window }
                } catch let hotPathRefusal {
                    // What the hot path does not run (rows without aggregation, FILTER, ...) runs as an operator
                    // over the source's rows, materialized when it keeps every row.
                    guard let plan = try? DerivedViewPlan(view: view, input: .sourceRows(sourceIndex), inputKeyWidth: DerivedViewPlan.sourceRowKeyWidth, inputWidth: source.rowColumns.count)
                    else { throw hotPathRefusal }
                    nodes.append(.derived(plan))
                }
            case .view(let inputName):
                guard let input = pipeline.views.firstIndex(where: { $0.name == inputName }), input < index else {
                    throw EngineError(.invalidArgument, "view \(view.name) reads view \(inputName), which is not defined before it")
                }
                let keyWidth = Self.keyWidth(of: nodes[input])
                nodes.append(.derived(try DerivedViewPlan(view: view, input: .view(input), inputKeyWidth: keyWidth, inputWidth: pipeline.views[input].outputColumns.count)))
                readers[input].append(index)
            }
        }
        self.sources = sources
        self.hotPathWindows = hotPathWindows
        views = pipeline.views
        self.nodes = nodes
        self.readers = readers
    }

    /// Values per key of a view's rows: its group key, or (filter and projection) its input's key.
    static func keyWidth(of node: Node) -> Int {
        switch node {
        case .source(let plan): plan.view.groupBy.count
        case .derived(let plan): plan.keyWidth
        }
    }

    public func index(ofView name: String) -> Int? { views.firstIndex { $0.name == name } }

    /// The views aggregated on the hot path, with their indices in `views`.
    public var sourcePlans: [(index: Int, plan: ViewPlan)] {
        nodes.enumerated().compactMap { index, node in if case .source(let plan) = node { (index, plan) } else { nil } }
    }

    /// Whether any view runs as an operator: then the checkpoint thread computes changes at each barrier.
    public var hasDerivedViews: Bool { nodes.contains { if case .derived = $0 { true } else { false } } }

    /// Whether any view reads source `index`'s rows themselves (not on the hot path): then the hot loop hands
    /// them over at each barrier.
    public func readsRows(ofSource index: Int) -> Bool {
        nodes.contains { if case .derived(let plan) = $0, plan.input == .sourceRows(index) { true } else { false } }
    }

    /// The index in `sources` of the source a view reads (at the root of its inputs).
    public func sourceIndex(ofView index: Int) -> Int {
        sources.firstIndex { $0.name == views[index].sourceName }!
    }

    /// The topics the pipeline reads, and the clock when a view reads it: a sink's progress is its checkpoint's
    /// offsets of these.
    public var topics: Set<String> { Set(sources.map(\.kafka.topic) + (hasTemporalFilters ? [Self.clockPartition.topic] : [])) }

    /// Whether a view has a temporal filter: then each epoch has a time (`now()`), stored with the offsets.
    public var hasTemporalFilters: Bool { views.contains { !$0.temporalFilter.isEmpty } }

    /// Where a checkpoint stores its epoch's time (microseconds since 1970), among the offsets: the clock is one
    /// more input whose position only moves forward, so the progress fence covers it as it covers a partition
    /// (equal offsets and equal time are one state; see `TemporalFilterOperator`). `@` is not a character of a
    /// Kafka topic name, so no topic can take the name.
    public static let clockPartition = TopicPartition(topic: "@now", partition: 0)

    /// The decoder's schema of source `index`: its columns, and the window its hot path computes.
    public func schema(ofSource index: Int) -> RowSchema {
        RowSchema(source: sources[index], window: hotPathWindows[index])
    }

    /// What a view's stored state means (its input's definition included): a change makes it unusable.
    public func fingerprint(ofView index: Int) -> String {
        // A window view's state has another form on the hot path than on the row path (which ran it before).
        if case .source(let plan) = nodes[index], plan.view.window != nil { return views[index].canonicalText + "; on the hot path" }
        return views[index].canonicalText
    }

    /// The view as one pipeline text that compiles on its own: the source's schema, the named views it reads
    /// (transitively), and its own definition. A subquery in `FROM` is recorded as the view it belongs to.
    public func selfContainedDefinition(ofView index: Int) -> String {
        let owner = views[index].isDerivedTable ? views[index...].firstIndex { !$0.isDerivedTable } ?? index : index
        var needed = Set([owner])
        for candidate in stride(from: owner, through: 0, by: -1) where needed.contains(candidate) {
            if case .view(let name) = views[candidate].input, let input = self.index(ofView: name) { needed.insert(input) }
            // A subquery's outer view is recorded with it; a view that reads the outer view needs the subquery too.
            if views[candidate].isDerivedTable == false {
                for inner in views[..<candidate].indices where views[inner].isDerivedTable && views[inner].name.hasPrefix(views[candidate].name + ".") {
                    needed.insert(inner)
                }
            }
        }
        return views.indices.filter { needed.contains($0) && !views[$0].isDerivedTable }.reduce(sources[sourceIndex(ofView: owner)].schemaDefinition + "\n") { text, index in
            text + views[index].definitionText + ";\n"
        }
    }

    // MARK: Reading views from a checkpoint

    /// Every output row of view `index` in the snapshot, in no particular order. A view keeps state of its own
    /// unless it only filters and projects: then its rows come from its input's.
    public func rows(ofView index: Int, in snapshot: borrowing CheckpointSnapshot, handles: (String) throws -> ViewHandle) throws -> [[SQLValue]] {
        switch nodes[index] {
        case .source(let plan):
            let handle = try handles(plan.view.name)
            let table = try plan.table { body in try snapshot.forEachEntry(view: handle, body) }
            return try plan.outputRows(of: table)
        case .derived(let plan):
            if plan.materializesRows || plan.windowClose != nil {
                // Rows of a source, or the final rows of closed windows: stored as they are.
                var rows: [[SQLValue]] = []
                try snapshot.forEachEntry(view: try handles(plan.view.name)) { key, value in
                    guard !DerivedStateKey.isTemporalRow(key), plan.materializesRows || DerivedStateKey.isEmittedRow(key) else { return }
                    rows.append(try DerivedStateKey.decodeRow(value, width: plan.view.outputColumns.count, view: plan.view.name))
                }
                return rows
            }
            switch plan.operation {
            case .aggregate(let definition):
                var aggregate = AggregateOperator(definition)
                try snapshot.forEachEntry(view: try handles(plan.view.name)) { key, value in
                    guard !DerivedStateKey.isEmittedRow(key), !DerivedStateKey.isTemporalRow(key) else { return }
                    try DerivedStateKey.restore(storageKey: key, value: value, into: &aggregate, view: plan.view.name)
                }
                var rows: [[SQLValue]] = []
                aggregate.forEachRow { _, row in rows.append(row) }
                return rows
            case .filterProject(var operation):
                guard case .view(let inputIndex) = plan.input else { preconditionFailure("rows of a source are materialized") }
                let inputRows = try rows(ofView: inputIndex, in: snapshot, handles: handles)
                var input = ChangeBatch(keyWidth: 0, rowWidth: graphInputWidth(plan))
                for row in inputRows { input.appendInsert(key: EmptyCollection(), row: row) }
                if let window = plan.window {
                    var assigner = try WindowAssigner(kind: window.kind, timeColumn: window.timeColumn, offsetMicroseconds: window.offsetMicroseconds, inputKeyWidth: 0, inputWidth: window.inputWidth)
                    var windowed = assigner.makeOutputBatch()
                    assigner.apply(input, into: &windowed)
                    input = windowed
                }
                var output = ChangeBatch(keyWidth: 0, rowWidth: operation.outputRowWidth)
                operation.apply(input, into: &output)
                return (0..<output.count).compactMap { output.newRow(at: $0).map(Array.init) }
            }
        }
    }

    /// Values per row of what a derived view reads, before its window (if any).
    private func graphInputWidth(_ plan: DerivedViewPlan) -> Int {
        if let window = plan.window { return window.inputWidth }
        if case .filterProject(let operation) = plan.operation { return operation.inputWidth }
        preconditionFailure("an aggregate's rows are stored")
    }

    /// A view's rows from the last checkpoint of `store`, read in one snapshot.
    public func rows(ofView index: Int, in store: CheckpointStore) throws -> [[SQLValue]] {
        // Handles first: a database opened after a snapshot began is not valid inside it.
        var handles: [String: ViewHandle] = [:]
        var next: Int? = index
        while let current = next {
            handles[views[current].name] = try store.view(named: views[current].name)
            if case .derived(let plan) = nodes[current], case .filterProject = plan.operation, case .view(let input) = plan.input { next = input } else { next = nil }
        }
        return try store.withSnapshot { snapshot in
            try rows(ofView: index, in: snapshot) { name in
                guard let handle = handles[name] else { throw EngineError(.invalidArgument, "view \(name) was not opened before the snapshot") }
                return handle
            }
        }
    }
}

extension DataflowGraph: CustomStringConvertible {
    /// The dataflow as `eddy check` prints it: what runs each view, where, and what it reads.
    public var description: String {
        var text = "dataflow (one epoch barrier for all; every operator's state, the offsets and the epoch in one LMDB transaction):\n"
        for (sourceIndex, source) in sources.enumerated() {
            let readers = views.indices.filter { index in
                switch nodes[index] {
                case .source(let plan): plan.source.name == source.name
                case .derived(let plan): plan.input == .sourceRows(sourceIndex)
                }
            }
            text += "  source \(source.name) (topic \(source.kafka.topic)): each message decoded once, for \(readers.map { views[$0].name }.joined(separator: ", "))\n"
            if let watermark = source.watermark {
                text += "    watermark on \(watermark.columnName): per partition, checkpointed; rows behind it dropped as late; a partition idle for \(source.kafka.watermarkIdleTimeout) does not hold it back\n"
            }
        }
        for (index, node) in nodes.enumerated() {
            let name = views[index].isDerivedTable ? "subquery \(views[index].name)" : "view \(views[index].name)"
            switch node {
            case .source(let plan):
                text += "  \(name): GROUP BY \(plan.view.groupByNames.joined(separator: ", ")) on the hot path (source thread)"
                if let window = plan.view.window { text += ", in windows of \(window) computed per message" }
                text += readers[index].isEmpty ? "\n" : "; its changed groups become changes at each barrier\n"
            case .derived(let plan):
                var kind = switch plan.operation {
                case .aggregate(let definition): "aggregate (\(definition.aggregates.map(\.description).joined(separator: ", ")))"
                case .filterProject: "filter and projection"
                }
                var windows = plan.view.window.map { " in windows of \($0)" } ?? ""
                if !plan.view.temporalFilter.isEmpty {
                    windows += " while \(plan.view.temporalFilter.map(\.description).joined(separator: " and ")) (rows held until the clock passes them, leaving as it does)"
                }
                if plan.windowClose != nil { kind += " emitting each window's rows once, when the watermark passes its end (its state then dropped)," }
                switch plan.input {
                case .view(let input):
                    text += "  \(name): \(kind) over the changes of view \(views[input].name)\(windows), on the checkpoint thread at each barrier\n"
                case .sourceRows(let sourceIndex):
                    let stored = plan.materializesRows ? ", every row stored (keyed by partition and offset)" : ""
                    text += "  \(name): \(kind) over the rows of source \(sources[sourceIndex].name)\(windows) (decoded to values on the hot path, handed over at each barrier)\(stored)\n"
                }
            }
        }
        return text
    }
}

/// A view over another view: the dataflow operator that computes it from its input's changes.
public struct DerivedViewPlan: Sendable {
    public enum Operation: Sendable {
        case aggregate(AggregateDefinition)
        case filterProject(FilterProjectOperator)
    }

    /// What the operator reads.
    public enum Input: Sendable, Equatable {
        /// The changes of the view at this index.
        case view(Int)
        /// The rows of the source at this index of `DataflowGraph.sources`, each an insert keyed by its
        /// partition and offset (as RisingWave keys the rows of an append-only source by a hidden row id).
        case sourceRows(Int)
    }

    /// Values per key of a source's row: partition, offset.
    public static let sourceRowKeyWidth = 2

    public let view: View
    public let input: Input
    public let operation: Operation
    /// Values per key of its rows: its group key, or its input's key.
    public let keyWidth: Int
    /// `TUMBLE` / `HOP` in FROM: maps the input's changes to windowed rows before the operator.
    public let window: WindowAssigner?
    /// `EMIT ON WINDOW CLOSE`: the aggregate's rows go downstream once, when their window closes.
    public var windowClose: View.WindowClose? { view.emitOnWindowClose }
    /// `WHERE … now() …`: the input's rows (windowed, if the view reads a window) enter and leave with the clock
    /// before the operator.
    public let temporalFilter: TemporalFilterOperator?

    /// Whether the view stores every row it holds: a filter and projection of a source's rows, which nothing
    /// upstream keeps, or of rows that come and go with the clock. (Over a view without a temporal filter, its
    /// rows are recomputed from the input's when read.)
    public var materializesRows: Bool {
        guard case .filterProject = operation else { return false }
        if case .sourceRows = input { return true }
        return temporalFilter != nil
    }

    init(view: View, input: Input, inputKeyWidth: Int, inputWidth: Int) throws(EngineError) {
        self.view = view
        self.input = input
        var inputKeyWidth = inputKeyWidth
        var inputWidth = inputWidth
        do {
            if let timeWindow = view.window {
                let assigner = try WindowAssigner(timeWindow, inputKeyWidth: inputKeyWidth, inputWidth: inputWidth)
                window = assigner
                inputKeyWidth = assigner.outputKeyWidth
                inputWidth = assigner.outputRowWidth
            } else {
                window = nil
            }
            temporalFilter = view.temporalFilter.isEmpty ? nil : try TemporalFilterOperator(
                bounds: view.temporalFilter, prefilter: view.filter, keyWidth: inputKeyWidth, rowWidth: inputWidth)
            if view.isAggregating {
                let definition = try AggregateDefinition(view: view, inputWidth: inputWidth)
                operation = .aggregate(definition)
                keyWidth = definition.groupBy.count
            } else {
                operation = .filterProject(try FilterProjectOperator(inputWidth: inputWidth, filter: view.filter, projection: view.outputColumns.map(\.expression)))
                keyWidth = inputKeyWidth
            }
        } catch {
            throw EngineError(.unsupported, "view \(view.name): \(error.reason)")
        }
    }
}

/// How a derived view's group is stored in LMDB, whose keys hold 1...511 bytes: `0x01` and the encoded group
/// key when that fits (a global aggregate's key is empty), else `0x02` and a 128-bit digest of it, with the
/// whole key (4-byte little-endian length, then the bytes) in front of the state.
enum DerivedStateKey {
    static let plainMarker: UInt8 = 0x01
    static let longMarker: UInt8 = 0x02
    /// An `EMIT ON WINDOW CLOSE` view's emitted row (its group's state is gone): `0x03` and the encoded group
    /// key, or `0x04` and its digest when longer; the value is the row.
    static let emittedRowMarker: UInt8 = 0x03
    static let longEmittedRowMarker: UInt8 = 0x04
    /// A row a temporal filter holds (visible now, or once the clock reaches it): `0x05` and the encoded input
    /// key (a source row's partition and offset, or a view's key; `0x06` and its digest when longer), the value
    /// the key's length and bytes, then the row.
    static let temporalRowMarker: UInt8 = 0x05
    static let longTemporalRowMarker: UInt8 = 0x06
    static let maxStorageBytes = 511

    /// The LMDB key and value of group `key` holding `state`.
    static func encode(key: [UInt8], state: [UInt8]) -> (storageKey: [UInt8], value: [UInt8]) {
        guard key.count >= maxStorageBytes else { return ([plainMarker] + key, state) }
        return (storageKey(of: key), withUnsafeBytes(of: UInt32(key.count).littleEndian, Array.init) + key + state)
    }

    /// The LMDB key of group `key`.
    static func storageKey(of key: [UInt8]) -> [UInt8] {
        guard key.count >= maxStorageBytes else { return [plainMarker] + key }
        let (first, second) = key.withUnsafeBufferPointer(KeyHasher.digest128)
        return [longMarker] + withUnsafeBytes(of: first.littleEndian, Array.init) + withUnsafeBytes(of: second.littleEndian, Array.init)
    }

    /// Whether a stored key is an emitted row's (not a group's state).
    static func isEmittedRow(_ storageKey: UnsafeRawBufferPointer) -> Bool {
        storageKey.first == emittedRowMarker || storageKey.first == longEmittedRowMarker
    }

    /// Whether a stored key is a row a temporal filter holds.
    static func isTemporalRow(_ storageKey: UnsafeRawBufferPointer) -> Bool {
        storageKey.first == temporalRowMarker || storageKey.first == longTemporalRowMarker
    }

    /// The stored key and value of a row a temporal filter holds under input key `key` (nil row: its stored key).
    static func temporalRowEntry(key: [SQLValue], row: [SQLValue]?) -> (storageKey: [UInt8], value: [UInt8]?) {
        var keyBytes: [UInt8] = []
        ValueCodec.append(contentsOf: key, to: &keyBytes)
        let storageKey: [UInt8]
        if keyBytes.count < maxStorageBytes {
            storageKey = [temporalRowMarker] + keyBytes
        } else {
            let (first, second) = keyBytes.withUnsafeBufferPointer(KeyHasher.digest128)
            storageKey = [longTemporalRowMarker] + withUnsafeBytes(of: first.littleEndian, Array.init) + withUnsafeBytes(of: second.littleEndian, Array.init)
        }
        guard let row else { return (storageKey, nil) }
        var value = withUnsafeBytes(of: UInt32(keyBytes.count).littleEndian, Array.init) + keyBytes
        ValueCodec.append(contentsOf: row, to: &value)
        return (storageKey, value)
    }

    /// The input key and row of a stored temporal filter row.
    static func decodeTemporalRow(_ value: UnsafeRawBufferPointer, keyWidth: Int, rowWidth: Int, view: String) throws(EngineError) -> (key: [SQLValue], row: [SQLValue]) {
        do throws(DataflowError) {
            guard value.count >= 4 else { throw DataflowError(.corruptState, "a held row of \(value.count) bytes") }
            let length = Int(UInt32(value[0]) | UInt32(value[1]) << 8 | UInt32(value[2]) << 16 | UInt32(value[3]) << 24)
            guard length <= value.count - 4 else { throw DataflowError(.corruptState, "a held row's key of \(length) bytes in \(value.count)") }
            let key = try ValueCodec.decodeValues(Array(value[4..<4 + length]), count: keyWidth, what: "the key of a held row of view \(view)")
            let row = try ValueCodec.decodeValues(Array(value[(4 + length)...]), count: rowWidth, what: "a held row of view \(view)")
            return (key, row)
        } catch {
            throw EngineError(.corruptState, "view \(view): temporal filter: \(error.reason)")
        }
    }

    /// The stored key of an emitted row of group `key` (its values), the window's value first (`windowKey`, its
    /// position in the group key): a window's rows are then stored side by side at the end of the table rather
    /// than spread over it, so an epoch that closes a window dirties a few LMDB pages, not a page per row (which
    /// grew each commit, and LMDB's malloc'ed dirty pages with it, as closed windows accumulated).
    static func emittedRowKey(_ key: ArraySlice<SQLValue>, windowKey: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        ValueCodec.append(key[key.startIndex + windowKey], to: &bytes)
        for (position, value) in key.enumerated() where position != windowKey { ValueCodec.append(value, to: &bytes) }
        guard bytes.count >= maxStorageBytes else { return [emittedRowMarker] + bytes }
        let (first, second) = bytes.withUnsafeBufferPointer(KeyHasher.digest128)
        return [longEmittedRowMarker] + withUnsafeBytes(of: first.littleEndian, Array.init) + withUnsafeBytes(of: second.littleEndian, Array.init)
    }

    /// The stored key of a materialized row: its key values, encoded (never longer than 511 bytes for a
    /// partition and offset).
    static func rowKey(_ key: ArraySlice<SQLValue>) -> [UInt8] {
        var bytes: [UInt8] = [plainMarker]
        ValueCodec.append(contentsOf: key, to: &bytes)
        return bytes
    }

    /// A materialized row's stored value.
    static func rowValue(_ row: ArraySlice<SQLValue>) -> [UInt8] {
        var bytes: [UInt8] = []
        ValueCodec.append(contentsOf: row, to: &bytes)
        return bytes
    }

    static func decodeRow(_ value: UnsafeRawBufferPointer, width: Int, view: String) throws(EngineError) -> [SQLValue] {
        do {
            return try ValueCodec.decodeValues(Array(value), count: width, what: "a stored row of view \(view)")
        } catch {
            throw EngineError(.corruptState, error.reason)
        }
    }

    /// Restores a stored entry into `aggregate`.
    static func restore(
        storageKey: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, into aggregate: inout AggregateOperator, view: String
    ) throws(EngineError) {
        let (key, state) = try decode(storageKey: storageKey, value: value, view: view)
        do {
            try aggregate.restore(key: key, state: state)
        } catch {
            throw EngineError(.corruptState, "view \(view): \(error.reason)")
        }
    }

    /// The group key and state of a stored entry.
    static func decode(storageKey: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, view: String) throws(EngineError) -> (key: [UInt8], state: [UInt8]) {
        switch storageKey.first {
        case plainMarker?:
            return (Array(storageKey.dropFirst()), Array(value))
        case longMarker? where value.count >= 4:
            let length = Int(UInt32(value[0]) | UInt32(value[1]) << 8 | UInt32(value[2]) << 16 | UInt32(value[3]) << 24)
            guard length <= value.count - 4 else { break }
            return (Array(value[4..<4 + length]), Array(value[(4 + length)...]))
        default:
            break
        }
        throw EngineError(.corruptState, "view \(view): a stored group of \(storageKey.count) key bytes and \(value.count) state bytes is malformed")
    }
}
