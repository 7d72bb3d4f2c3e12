extension Source {
    /// A `CREATE SOURCE` statement equivalent to this source's schema and topic, without secrets: what a
    /// reader of the state directory needs to decode its views (`eddy query`).
    public var schemaDefinition: String {
        var columns = Self.declarations(of: columns).joined(separator: ", ")
        // `EMIT ON WINDOW CLOSE` binds only over a watermarked column.
        if let watermark { columns += ", WATERMARK FOR \(BoundExpression.quoteIfNeeded(watermark.columnName)) AS \(watermark.expression)" }
        let includes = includedColumns.map { " INCLUDE \($0.kind.rawValue) AS \(BoundExpression.quoteIfNeeded($0.name))" }.joined()
        return "CREATE SOURCE \(BoundExpression.quoteIfNeeded(name)) (\(columns))\(includes) WITH (connector='kafka', topic=\(Self.quoted(kafka.topic)), "
            + "properties.bootstrap.server=\(Self.quoted(kafka.bootstrapServers))) FORMAT PLAIN ENCODE JSON;"
    }

    /// The column list as declared: a STRUCT's field columns (consecutive, one root) folded back into `STRUCT<…>`.
    static func declarations(of columns: [Column]) -> [String] {
        var declarations: [String] = []
        var index = 0
        while index < columns.count {
            guard let root = columns[index].path?.root else {
                declarations.append("\(BoundExpression.quoteIfNeeded(columns[index].name)) \(columns[index].type)")
                index += 1
                continue
            }
            var fields: [Column] = []
            while index < columns.count, columns[index].path?.root == root {
                fields.append(columns[index])
                index += 1
            }
            declarations.append("\(BoundExpression.quoteIfNeeded(root)) \(structType(of: fields, depth: 0))")
        }
        return declarations
    }

    private static func structType(of columns: [Column], depth: Int) -> String {
        func name(_ column: Column) -> String {
            if case .field(let name)? = column.path?.steps[depth] { name } else { "" }
        }
        var fields: [String] = []
        var index = 0
        while index < columns.count {
            let field = name(columns[index])
            var group: [Column] = []
            while index < columns.count, name(columns[index]) == field {
                group.append(columns[index])
                index += 1
            }
            let type = group.count == 1 && group[0].path!.steps.count == depth + 1 ? group[0].type.description : structType(of: group, depth: depth + 1)
            fields.append("\(BoundExpression.quoteIfNeeded(field)) \(type)")
        }
        return "STRUCT<" + fields.joined(separator: ", ") + ">"
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
