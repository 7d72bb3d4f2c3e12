extension Source {
    /// A `CREATE SOURCE` statement equivalent to this source's schema and topic, without secrets: what a
    /// reader of the state directory needs to decode its views (`eddy query`).
    public var schemaDefinition: String {
        let columns = columns.map { "\(BoundExpression.quoteIfNeeded($0.name)) \($0.type)" }.joined(separator: ", ")
        let includes = includedColumns.map { " INCLUDE \($0.kind.rawValue) AS \(BoundExpression.quoteIfNeeded($0.name))" }.joined()
        return "CREATE SOURCE \(BoundExpression.quoteIfNeeded(name)) (\(columns))\(includes) WITH (connector='kafka', topic=\(Self.quoted(kafka.topic)), "
            + "properties.bootstrap.server=\(Self.quoted(kafka.bootstrapServers))) FORMAT PLAIN ENCODE JSON;"
    }

    private static func quoted(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
    }
}

extension View {
    /// The view with its source's schema, as one pipeline text that compiles on its own (`eddy query`
    /// reads views from a state directory this way).
    public func selfContainedDefinition(source: Source) -> String {
        source.schemaDefinition + "\n" + definitionText + ";\n"
    }
}
