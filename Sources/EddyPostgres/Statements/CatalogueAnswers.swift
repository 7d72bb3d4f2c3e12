import EddySQL
import Foundation

/// Answers the catalogue reads clients send (`pg_catalog.*`, `information_schema.*`) from Eddy's own
/// catalogue: its materialized views, as PostgreSQL would list them (relkind `m`, schema `public`).
///
/// Eddy has no general SQL engine over system tables. The queries are recognised by shape: psql's `\d`
/// family (list relations, find a relation by name, its details, its columns, a view's definition) gets
/// real rows; any other catalogue read gets an honest empty answer with the columns its select list names,
/// which is what clients expect of a database with nothing of that kind.
struct CatalogueAnswers {
    /// A view as the catalogue shows it.
    struct Relation {
        var oid: Int
        var name: String
        var columns: [ResultColumn]
        var definition: String
    }

    let relations: [Relation]
    let user: String

    /// OIDs of user relations start where PostgreSQL's do.
    static let firstOID = 16_384

    init(views: [View], user: String) {
        relations = views.enumerated().map { index, view in
            Relation(
                oid: Self.firstOID + index, name: view.name,
                columns: view.outputColumns.map { ResultColumn(name: $0.name, type: PostgresType($0.type)) },
                definition: view.definitionText)
        }
        self.user = user
    }

    static func isCatalogueQuery(_ statement: StatementText) -> Bool {
        let tokens = statement.tokens
        for (index, token) in tokens.enumerated() where token.kind == .word {
            if token.text == "pg_catalog" || token.text == "information_schema" { return true }
            if token.text.hasPrefix("pg_"), index > 0, tokens[index - 1].isWord("from") || tokens[index - 1].isWord("join") { return true }
        }
        return false
    }

    func answer(_ statement: StatementText, list: SelectList) -> PlannedStatement {
        let columns = list.items.map { ResultColumn(name: $0.name, type: $0.key.hasSuffix(".oid") || $0.key == "oid" ? .oid : .text) }
        let text = statement.text.lowercased()
        func rows(_ values: [[SQLValue]]) -> PlannedStatement { .rows(columns: columns, rows: values) }

        // psql \d, \dm, \dv, \dt …: "List of relations".
        if text.contains("pg_catalog.pg_class"), list.items.contains(where: { $0.name == "Name" }), list.items.contains(where: { $0.name == "Type" }) {
            let kinds = Self.relkinds(in: statement)
            let listed = relations.filter { (kinds.isEmpty || kinds.contains("m")) && matches($0, statement) }
            return rows(listed.map { relation in
                list.items.map { item in
                    switch item.name {
                    case "Schema": .string("public")
                    case "Name": .string(relation.name)
                    case "Type": .string("materialized view")
                    case "Owner": .string(user)
                    case "Persistence": .string("permanent")
                    case "Access method": .string("heap")
                    case "Size": .string("0 bytes")
                    default: .null
                    }
                }
            })
        }
        // psql \d NAME, first step: which relations the pattern names.
        if text.contains("pg_catalog.pg_class"), list.items.map(\.key) == ["c.oid", "n.nspname", "c.relname"] {
            return rows(relations.filter { matches($0, statement) }.map { [.int(Int64($0.oid)), .string("public"), .string($0.name)] })
        }
        // psql \d NAME, second step: the relation's kind and flags.
        if list.items.contains(where: { $0.key == "c.relchecks" }), relation(byOIDIn: statement) != nil {
            return rows([list.items.map { item in
                switch item.key {
                case "c.relchecks": .int(0)
                case "c.relkind": .string("m")
                case "c.relpersistence": .string("p")
                case "c.relreplident": .string("d")
                case "c.reltablespace": .int(0)
                case "am.amname": .string("heap")
                case _ where item.key.hasPrefix("c.relhas") || item.key.hasPrefix("c.relrowsecurity") || item.key.hasPrefix("c.relforcerowsecurity")
                    || item.key.hasPrefix("c.relispartition") || item.key.hasPrefix("false"):
                    .bool(false)
                case _ where item.key.hasPrefix("pg_catalog.array_to_string") || item.key.hasPrefix("case"): .string("")
                default: .null
                }
            }])
        }
        // psql \d NAME, third step: the columns.
        if text.contains("pg_catalog.pg_attribute"), list.items.contains(where: { $0.key == "a.attname" }), let relation = relation(byOIDIn: statement) {
            return rows(relation.columns.map { column in
                list.items.map { item in
                    if item.key == "a.attname" { return .string(column.name) }
                    if item.key.hasPrefix("pg_catalog.format_type") { return .string(column.type.name) }
                    if item.key == "a.attnotnull" { return .bool(false) }
                    if item.key == "a.attidentity" || item.key == "a.attgenerated" { return .string("") }
                    if item.key == "a.attstorage" { return .string(column.type.size < 0 ? "x" : "p") }
                    return .null
                }
            })
        }
        // \d+ on a view: its definition.
        if let item = list.items.first(where: { $0.key.hasPrefix("pg_catalog.pg_get_viewdef(") }), let relation = relation(byOIDIn: statement) {
            return .rows(columns: [ResultColumn(name: item.name, type: .text)], rows: [[.string(relation.definition)]])
        }
        return rows([])
    }

    /// The relation whose OID the statement compares with (`c.oid = '16384'`, `attrelid = '16384'`).
    private func relation(byOIDIn statement: StatementText) -> Relation? {
        for token in statement.tokens where token.kind == .string || token.kind == .number {
            if let oid = Int(token.text), let relation = relations.first(where: { $0.oid == oid }) { return relation }
        }
        return nil
    }

    /// The letters of `c.relkind IN ('r','p','v','m',…)`; empty when the statement has none.
    private static func relkinds(in statement: StatementText) -> Set<String> {
        let tokens = statement.tokens
        guard let start = tokens.indices.first(where: { tokens[$0].isWord("relkind") && $0 + 1 < tokens.count && tokens[$0 + 1].isWord("in") }) else { return [] }
        var kinds: Set<String> = []
        for token in tokens[(start + 2)...] {
            if token.kind == .symbol && token.text == ")" { break }
            if token.kind == .string { kinds.insert(token.text) }
        }
        return kinds
    }

    /// Whether the relation's name matches the statement's `relname OPERATOR(pg_catalog.~) '^(pattern)$'`, if it has one.
    private func matches(_ relation: Relation, _ statement: StatementText) -> Bool {
        let tokens = statement.tokens
        let comparedName = tokens.indices.first { index in
            tokens[index].isWord("relname") && index + 1 < tokens.count && (tokens[index + 1].isWord("operator") || tokens[index + 1].text == "~")
        }
        guard let nameIndex = comparedName,
            let pattern = tokens[nameIndex...].prefix(10).first(where: { $0.kind == .string })?.text
        else { return true }
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return false }
        let range = NSRange(relation.name.startIndex..., in: relation.name)
        return expression.firstMatch(in: relation.name, range: range) != nil
    }
}
