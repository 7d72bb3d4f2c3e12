/// Compiles a Redis sink's `WITH (...)` and `FORMAT ... ENCODE ... (...)` options into `RedisSinkSettings`.
struct SinkOptionsCompiler {
    let source: SourceText
    var errors: [SQLError] = []
    var warnings: [SQLError] = []

    /// TLS options, named as RisingWave's Kafka connector names them (`properties.ssl.*.location`, from
    /// librdkafka), since RisingWave's Redis sink has none (its `rediss://` trusts the system store only).
    static let tlsOptions = ["redis.ssl.ca.location", "redis.ssl.certificate.location", "redis.ssl.key.location", "redis.ssl.server.name"]
    static let accepted = ["connector", "primary_key", "redis.url"] + tlsOptions + ["sink.max_pending_epochs", "redis.ttl_seconds"]
    /// `redis_value_type` and the options that go with it, in `FORMAT ... ENCODE ... (...)` as RisingWave has them.
    static let valueTypeOptions = ["redis_value_type", "stream", "channel", "stream_column", "channel_column"]

    mutating func compile(_ statement: CreateSink, view: View) -> RedisSinkSettings? {
        let errorCount = errors.count
        var byKey: [String: OptionEntry] = [:]
        for option in statement.options {
            if let first = byKey[option.key] {
                errors.append(source.error(.invalidOption, "option '\(option.key)' is given twice (first at \(source.location(first.keyStart)))", from: option.keyStart, to: option.keyEnd))
                continue
            }
            byKey[option.key] = option
            if !Self.accepted.contains(option.key) {
                var message = "unknown Redis sink option '\(option.key)'; accepted: \(Self.accepted.joined(separator: ", "))"
                if ["key_format", "value_format", "force_append_only"].contains(option.key) {
                    message += " (\(option.key) belongs in FORMAT PLAIN ENCODE TEMPLATE (...))"
                }
                errors.append(source.error(.invalidOption, message, from: option.keyStart, to: option.keyEnd))
            }
        }
        let withSpan = (statement.withStart, statement.withStart + 4)
        guard let connector = byKey["connector"] else {
            errors.append(source.error(.invalidOption, "sink '\(statement.name.name)' needs connector='redis' in its WITH options", from: withSpan.0, to: withSpan.1))
            return nil
        }
        guard connector.value.lowercased() == "redis" else {
            errors.append(source.error(.unsupported, "connector '\(connector.value)' is not supported for sinks; Eddy writes to 'redis'", from: connector.valueStart, to: connector.valueEnd))
            return nil
        }
        var endpoint: RedisEndpoint?
        var clusterNodes: [RedisEndpoint] = []
        let incomplete = statement.options.contains(where: \.hasFailedSubstitution) || (statement.format?.options.contains(where: \.hasFailedSubstitution) ?? false)
        if let url = byKey["redis.url"], url.hasFailedSubstitution {
            endpoint = nil
        } else if let url = byKey["redis.url"] {
            if let (first, nodes) = parseRedisURLs(url) {
                let tls = tlsSettings(byKey, isTLS: first.tls != nil)
                endpoint = first
                endpoint?.tls = tls
                clusterNodes = nodes.map { node in
                    var node = node
                    node.tls = tls
                    return node
                }
            }
        } else {
            errors.append(source.error(.invalidOption, "sink '\(statement.name.name)' needs redis.url (e.g. redis.url='redis://host:6379')", from: withSpan.0, to: withSpan.1))
        }
        var primaryKey: [Int] = []
        if let option = byKey["primary_key"] {
            for part in option.value.split(separator: ",", omittingEmptySubsequences: false) {
                let name = part.trimmingSpaces
                guard let index = view.outputColumnIndex(named: name) ?? view.outputColumnIndex(named: name.lowercased()) else {
                    errors.append(source.error(.unknownName, "primary_key column '\(name)' is not a column of view '\(view.name)' (columns: \(view.outputColumns.map(\.name).joined(separator: ", ")))", from: option.valueStart, to: option.valueEnd))
                    continue
                }
                if primaryKey.contains(index) {
                    errors.append(source.error(.duplicateName, "primary_key names column '\(name)' twice", from: option.valueStart, to: option.valueEnd))
                }
                primaryKey.append(index)
            }
            // Two groups under one key would overwrite each other in Redis in whatever order they change.
            let grouped = Set(view.groupByNames)
            let covered = Set(primaryKey.compactMap { index -> String? in
                if case .groupKey(_, let name) = view.outputColumns[index].expression { return name }
                return nil
            })
            for missing in view.groupByNames where !covered.contains(missing) && errors.count == errorCount {
                let hint = view.outputColumns.contains { if case .groupKey(_, let name) = $0.expression { name == missing } else { false } }
                    ? "add it to primary_key" : "select it in the view and add it to primary_key"
                errors.append(source.error(.invalidOption, "primary_key must include the view's GROUP BY column '\(missing)', or different groups would overwrite one Redis key; \(hint)", from: option.valueStart, to: option.valueEnd))
            }
            _ = grouped
        } else {
            errors.append(source.error(.invalidOption, "sink '\(statement.name.name)' needs primary_key (the view's GROUP BY columns, e.g. primary_key='\(view.groupByNames.first ?? "column")')", from: withSpan.0, to: withSpan.1))
        }
        var maxPendingEpochs: Int?
        if let option = byKey["sink.max_pending_epochs"] {
            if let value = Int(option.value), value >= 1 { maxPendingEpochs = value } else {
                errors.append(source.error(.invalidOption, "sink.max_pending_epochs must be a whole number of at least 1, not '\(option.value)'", from: option.valueStart, to: option.valueEnd))
            }
        }

        guard let format = statement.format else {
            errors.append(source.error(.invalidOption, "sink '\(statement.name.name)' needs FORMAT PLAIN ENCODE TEMPLATE (key_format='...', value_format='...') or FORMAT PLAIN ENCODE JSON", from: statement.end - 1, to: statement.end))
            return nil
        }
        guard format.format.name == "plain" || format.format.name == "upsert" else {
            errors.append(source.error(.unsupported, "FORMAT \(format.format.name.uppercased()) is not supported for Redis sinks; use FORMAT PLAIN or FORMAT UPSERT", from: format.format.start, to: format.format.end))
            return nil
        }
        let isUpsert = format.format.name == "upsert"
        var formatOptions: [String: OptionEntry] = [:]
        for option in format.options {
            if let first = formatOptions[option.key] {
                errors.append(source.error(.invalidOption, "option '\(option.key)' is given twice (first at \(source.location(first.keyStart)))", from: option.keyStart, to: option.keyEnd))
            }
            formatOptions[option.key] = option
        }
        var forceAppendOnly = false
        if let option = formatOptions["force_append_only"] {
            switch option.value.lowercased() {
            case "true": forceAppendOnly = true
            case "false": forceAppendOnly = false
            default: errors.append(source.error(.invalidOption, "force_append_only must be 'true' or 'false', not '\(option.value)'", from: option.valueStart, to: option.valueEnd))
            }
            if isUpsert && forceAppendOnly {
                errors.append(source.error(.invalidOption, "force_append_only='true' contradicts FORMAT UPSERT (which deletes rows that leave the view); use FORMAT PLAIN", from: option.valueStart, to: option.valueEnd))
            }
        }
        let valueType = compileValueType(formatOptions)
        var ttlSeconds: Int?
        if let option = byKey["redis.ttl_seconds"], !option.hasFailedSubstitution {
            if let value = Int(option.value), (1...Self.maxTTLSeconds).contains(value) {
                ttlSeconds = value
                if case .pubsub = valueType {
                    errors.append(source.error(.invalidOption, "redis.ttl_seconds does not apply to redis_value_type 'pubsub': a published message is not kept", from: option.keyStart, to: option.keyEnd))
                }
            } else {
                errors.append(source.error(.invalidOption, "redis.ttl_seconds must be a whole number of seconds from 1 to \(Self.maxTTLSeconds), not '\(option.value)'", from: option.valueStart, to: option.valueEnd))
            }
        }
        let encoding: RedisSinkSettings.Encoding
        switch format.encode.name {
        case "template":
            let accepted = ["force_append_only", "key_format", "value_format"] + Self.valueTypeOptions
            for option in format.options where !accepted.contains(option.key) {
                errors.append(source.error(.invalidOption, "unknown ENCODE TEMPLATE option '\(option.key)'; accepted: \(accepted.joined(separator: ", "))", from: option.keyStart, to: option.keyEnd))
            }
            let key = template(formatOptions["key_format"], name: "key_format", view: view, allowed: primaryKey, encode: format.encode)
            // A hash holds a field per column: a value template has no place in it.
            var value = Template(parts: [])
            if valueType == .hash {
                if let option = formatOptions["value_format"] {
                    errors.append(source.error(.invalidOption, "value_format does not apply to redis_value_type 'hash': the hash has a field per column of view '\(view.name)'", from: option.keyStart, to: option.keyEnd))
                }
            } else if let parsed = template(formatOptions["value_format"], name: "value_format", view: view, allowed: nil, encode: format.encode) {
                value = parsed
            } else {
                return nil
            }
            if let key, let option = formatOptions["key_format"], errors.count == errorCount {
                for index in primaryKey where !key.columns.contains(index) {
                    errors.append(source.error(.invalidTemplate, "key_format must use every primary_key column; '{\(view.outputColumns[index].name)}' is missing, so different rows would share a Redis key", from: option.valueStart, to: option.valueEnd))
                }
            }
            guard let key else { return nil }
            encoding = .template(key: key, value: value)
        case "json":
            let accepted = ["force_append_only"] + Self.valueTypeOptions
            for option in format.options where !accepted.contains(option.key) {
                errors.append(source.error(.invalidOption, "unknown ENCODE JSON option '\(option.key)'; accepted: \(accepted.joined(separator: ", "))", from: option.keyStart, to: option.keyEnd))
            }
            encoding = .json
        default:
            errors.append(source.error(.unsupported, "ENCODE \(format.encode.name.uppercased()) is not supported for Redis sinks; use ENCODE TEMPLATE or ENCODE JSON", from: format.encode.start, to: format.encode.end))
            return nil
        }
        var keyAsText = false
        if let keyEncode = format.keyEncode {
            if keyEncode.name != "text" {
                errors.append(source.error(.unsupported, "KEY ENCODE \(keyEncode.name.uppercased()) is not supported for Redis sinks; use KEY ENCODE TEXT", from: keyEncode.start, to: keyEncode.end))
            } else if case .template = encoding {
                errors.append(source.error(.invalidOption, "KEY ENCODE TEXT applies to ENCODE JSON; with ENCODE TEMPLATE the key is key_format", from: keyEncode.start, to: keyEncode.end))
            } else if primaryKey.count != 1 {
                errors.append(source.error(.invalidOption, "KEY ENCODE TEXT needs exactly one primary_key column (the key is its text), not \(primaryKey.count)", from: keyEncode.start, to: keyEncode.end))
            } else {
                keyAsText = true
            }
        }
        guard errors.count == errorCount, !incomplete, let endpoint else { return nil }
        var settings = RedisSinkSettings(
            endpoint: endpoint, encoding: encoding, primaryKeyColumns: primaryKey, forceAppendOnly: forceAppendOnly,
            maxPendingEpochs: maxPendingEpochs)
        settings.valueType = valueType
        settings.ttlSeconds = ttlSeconds
        settings.isUpsert = isUpsert
        settings.keyAsText = keyAsText
        settings.clusterNodes = clusterNodes
        if !clusterNodes.isEmpty, case .stream = valueType {
            errors.append(source.error(.unsupported, "redis_value_type 'stream' is not supported on a Redis Cluster (redis.url lists nodes): the stream is one key, name one Redis server", from: byKey["redis.url"]!.valueStart, to: byKey["redis.url"]!.valueEnd))
            return nil
        }
        if !clusterNodes.isEmpty, case .pubsub = valueType {
            errors.append(source.error(.unsupported, "redis_value_type 'pubsub' is not supported on a Redis Cluster (redis.url lists nodes): name one Redis server", from: byKey["redis.url"]!.valueStart, to: byKey["redis.url"]!.valueEnd))
            return nil
        }
        return settings
    }

    /// Redis' own limit on a relative expiry is far larger; a year keeps typos like a millisecond count visible.
    static let maxTTLSeconds = 366 * 24 * 3600

    /// `redis_value_type` with its `stream` or `channel` (RisingWave's names; its `stream_column` and
    /// `channel_column`, a name per row, are not supported: a stream's entries are fenced per stream).
    private mutating func compileValueType(_ options: [String: OptionEntry]) -> RedisSinkSettings.ValueType {
        func named(_ key: String) -> String? {
            guard let option = options[key] else { return nil }
            guard !option.value.isEmpty else {
                errors.append(source.error(.invalidOption, "\(key) must not be empty", from: option.valueStart, to: option.valueEnd))
                return nil
            }
            return option.value
        }
        for key in ["stream_column", "channel_column"] {
            guard let option = options[key] else { continue }
            let named = key == "stream_column" ? "stream" : "channel"
            errors.append(source.error(.unsupported, "\(key) (a \(named) per row) is not supported: name one with \(named)='<name>'", from: option.keyStart, to: option.keyEnd))
        }
        let typeOption = options["redis_value_type"]
        let type = typeOption?.value.lowercased() ?? "string"
        for key in ["stream", "channel"] {
            guard let option = options[key], type != (key == "stream" ? "stream" : "pubsub") else { continue }
            errors.append(source.error(.invalidOption, "\(key) applies to redis_value_type '\(key == "stream" ? "stream" : "pubsub")' only", from: option.keyStart, to: option.keyEnd))
        }
        switch type {
        case "string": return .string
        case "hash": return .hash
        case "stream", "pubsub":
            let key = type == "stream" ? "stream" : "channel"
            guard let name = named(key) else {
                // (A `<key>_column` given instead was reported above.)
                if options[key] == nil, options[key + "_column"] == nil, let typeOption {
                    errors.append(source.error(.invalidOption, "redis_value_type '\(type)' needs \(key)='<name>' (the \(key) to write to)", from: typeOption.valueStart, to: typeOption.valueEnd))
                }
                return .string
            }
            return type == "stream" ? .stream(name: name) : .pubsub(channel: name)
        default:
            if let typeOption {
                var message = "redis_value_type must be 'string', 'hash', 'stream' or 'pubsub', not '\(typeOption.value)'"
                if type == "geospatial" { message += " (geospatial is not supported)" }
                errors.append(source.error(.invalidOption, message, from: typeOption.valueStart, to: typeOption.valueEnd))
            }
            return .string
        }
    }

    // MARK: Templates

    /// Parses `…{column}…`. `allowed` restricts the columns (key_format may only use primary key columns).
    private mutating func template(_ option: OptionEntry?, name: String, view: View, allowed: [Int]?, encode: Identifier) -> Template? {
        guard let option else {
            errors.append(source.error(.invalidOption, "ENCODE TEMPLATE needs \(name) (e.g. \(name)='{\(view.outputColumns.first?.name ?? "column")}')", from: encode.start, to: encode.end))
            return nil
        }
        guard !option.value.isEmpty else {
            errors.append(source.error(.invalidTemplate, "\(name) must not be empty", from: option.valueStart, to: option.valueEnd))
            return nil
        }
        var parts: [Template.Part] = []
        var text = ""
        var scalars = option.value.unicodeScalars[...]
        // Error positions point into the value when it was written literally (not substituted).
        func position(_ scalarOffset: Int) -> (Int, Int) {
            guard !option.isSubstituted else { return (option.valueStart, option.valueEnd) }
            let prefix = String(String.UnicodeScalarView(option.value.unicodeScalars.prefix(scalarOffset)))
            let start = option.valueStart + 1 + prefix.utf8.count
            return (start, start + 1)
        }
        var offset = 0
        var failed = false
        while let scalar = scalars.first {
            if scalar == "{" {
                guard let close = scalars.firstIndex(of: "}") else {
                    let (start, end) = position(offset)
                    errors.append(source.error(.invalidTemplate, "\(name): '{' at character \(offset + 1) has no closing '}'", from: start, to: end))
                    return nil
                }
                let column = String(String.UnicodeScalarView(scalars[scalars.index(after: scalars.startIndex)..<close]))
                let (start, _) = position(offset)
                let end = start + column.utf8.count + 2
                if let index = view.outputColumnIndex(named: column) {
                    if let allowed, !allowed.contains(index) {
                        errors.append(source.error(.invalidTemplate, "\(name) may only use primary_key columns (\(allowed.map { view.outputColumns[$0].name }.joined(separator: ", "))); '{\(column)}' is not one", from: start, to: end))
                        failed = true
                    }
                    if !text.isEmpty { parts.append(.text(text)) }
                    text = ""
                    parts.append(.column(index, name: column))
                } else {
                    var message = "\(name) names '{\(column)}', which is not a column of view '\(view.name)' (columns: \(view.outputColumns.map(\.name).joined(separator: ", ")))"
                    if column.isEmpty { message = "\(name) has an empty placeholder '{}'; name a column of view '\(view.name)'" }
                    if let close = closestName(column, view.outputColumns.map(\.name)) { message += "; did you mean '{\(close)}'?" }
                    errors.append(source.error(.invalidTemplate, message, from: start, to: end))
                    failed = true
                }
                offset += column.unicodeScalars.count + 2
                scalars = scalars[scalars.index(after: close)...]
                continue
            }
            if scalar == "}" {
                let (start, end) = position(offset)
                errors.append(source.error(.invalidTemplate, "\(name): '}' at character \(offset + 1) has no opening '{'", from: start, to: end))
                return nil
            }
            text.unicodeScalars.append(scalar)
            scalars = scalars.dropFirst()
            offset += 1
        }
        if !text.isEmpty { parts.append(.text(text)) }
        return failed ? nil : Template(parts: parts)
    }

    // MARK: redis.url

    /// The `redis.ssl.*` options of a `rediss://` URL (an empty `TLS` when none is given: the system CA store
    /// and the URL's host); nil for `redis://`, where any of them is an error (the user meant TLS).
    private mutating func tlsSettings(_ byKey: [String: OptionEntry], isTLS: Bool) -> RedisEndpoint.TLS? {
        var given: [String: String] = [:]
        for key in Self.tlsOptions {
            guard let option = byKey[key], !option.hasFailedSubstitution else { continue }
            guard isTLS else {
                errors.append(source.error(.invalidOption, "\(key) applies to TLS connections only: redis.url must start with rediss://", from: option.keyStart, to: option.keyEnd))
                continue
            }
            guard !option.value.isEmpty else {
                errors.append(source.error(.invalidOption, "\(key) must not be empty", from: option.valueStart, to: option.valueEnd))
                continue
            }
            given[key] = option.value
        }
        guard isTLS else { return nil }
        let certificate = given["redis.ssl.certificate.location"]
        let key = given["redis.ssl.key.location"]
        if let option = byKey["redis.ssl.certificate.location"], certificate != nil, key == nil {
            errors.append(source.error(.invalidOption, "redis.ssl.certificate.location needs redis.ssl.key.location (the client certificate's private key)", from: option.keyStart, to: option.keyEnd))
        }
        if let option = byKey["redis.ssl.key.location"], key != nil, certificate == nil {
            errors.append(source.error(.invalidOption, "redis.ssl.key.location needs redis.ssl.certificate.location (the client certificate)", from: option.keyStart, to: option.keyEnd))
        }
        return RedisEndpoint.TLS(
            caLocation: given["redis.ssl.ca.location"], certificateLocation: certificate, keyLocation: key, serverName: given["redis.ssl.server.name"])
    }

    /// `redis.url`: one URL, or a JSON array of URLs naming nodes of a Redis Cluster (RisingWave's form), any of
    /// which serves as a seed. Returns the first node and, for an array, every node (empty for one URL).
    private mutating func parseRedisURLs(_ option: OptionEntry) -> (RedisEndpoint, [RedisEndpoint])? {
        guard Substring(option.value).trimmingSpaces.hasPrefix("[") else { return parseRedisURL(option.value, option, label: "redis.url").map { ($0, []) } }
        func fail(_ message: String) -> (RedisEndpoint, [RedisEndpoint])? {
            errors.append(source.error(.invalidOption, "redis.url: \(message)", from: option.valueStart, to: option.valueEnd))
            return nil
        }
        guard let texts = Self.jsonStrings(option.value) else {
            return fail("expected a JSON array of URLs, e.g. [\"redis://host:7000\", \"redis://host:7001\"] (a Redis Cluster)")
        }
        guard !texts.isEmpty else { return fail("the list of Redis Cluster nodes is empty") }
        var nodes: [RedisEndpoint] = []
        for (index, text) in texts.enumerated() {
            guard let node = parseRedisURL(text, option, label: "redis.url node \(index + 1) of \(texts.count)") else { return nil }
            nodes.append(node)
        }
        let first = nodes[0]
        if nodes.contains(where: { ($0.tls != nil) != (first.tls != nil) }) {
            return fail("every node of a Redis Cluster must use the same scheme (redis:// or rediss://): the TLS settings apply to all")
        }
        if nodes.contains(where: { $0.username != first.username || $0.password != first.password }) {
            return fail("every node of a Redis Cluster must carry the same user and password: the sink logs in to every master with them")
        }
        if let index = nodes.firstIndex(where: { $0.database != 0 }) {
            return fail("node \(index + 1) names database \(nodes[index].database): a Redis Cluster has database 0 only")
        }
        return (first, nodes)
    }

    /// The strings of a JSON array of strings (`\"`, `\\`, `\/` and `\uXXXX` escapes); nil when `text` is not one.
    static func jsonStrings(_ text: String) -> [String]? {
        var scalars = Substring(text).unicodeScalars.drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        func skipSpace() { scalars = scalars.drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" } }
        guard scalars.first == "[" else { return nil }
        scalars = scalars.dropFirst()
        skipSpace()
        var strings: [String] = []
        if scalars.first == "]" {
            scalars = scalars.dropFirst()
            skipSpace()
            return scalars.isEmpty ? [] : nil
        }
        while true {
            guard scalars.first == "\"" else { return nil }
            scalars = scalars.dropFirst()
            var string = String.UnicodeScalarView()
            while true {
                guard let scalar = scalars.first else { return nil }
                scalars = scalars.dropFirst()
                if scalar == "\"" { break }
                guard scalar == "\\" else {
                    string.append(scalar)
                    continue
                }
                guard let escaped = scalars.first else { return nil }
                scalars = scalars.dropFirst()
                switch escaped {
                case "\"", "\\", "/": string.append(escaped)
                case "n": string.append("\n")
                case "t": string.append("\t")
                case "u":
                    guard scalars.count >= 4, let code = UInt32(String(String.UnicodeScalarView(scalars.prefix(4))), radix: 16),
                        let decoded = Unicode.Scalar(code)
                    else { return nil }
                    scalars = scalars.dropFirst(4)
                    string.append(decoded)
                default: return nil
                }
            }
            strings.append(String(string))
            skipSpace()
            guard let next = scalars.first else { return nil }
            scalars = scalars.dropFirst()
            skipSpace()
            if next == "]" { return scalars.isEmpty ? strings : nil }
            guard next == "," else { return nil }
        }
    }

    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://…` for TLS; errors name `label` and point at the
    /// option's value.
    private mutating func parseRedisURL(_ text: String, _ option: OptionEntry, label: String) -> RedisEndpoint? {
        func fail(_ message: String) -> RedisEndpoint? {
            // Never echo the URL itself: it may carry a password.
            errors.append(source.error(.invalidOption, "\(label): \(message)", from: option.valueStart, to: option.valueEnd))
            return nil
        }
        var rest = Substring(text)
        let scheme = ["redis://", "rediss://"].first { rest.lowercased().hasPrefix($0) }
        guard let scheme else {
            return fail("expected redis://[user[:password]@]host[:port][/db] (rediss:// for TLS)")
        }
        rest = rest.dropFirst(scheme.count)
        // The credentials go first (everything before the last '@', as SecretRanges masks it), so
        // that no later message can quote any part of them: a password may hold '?', '/' or ':'.
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                username = String(credentials[..<colon])
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                username = String(credentials)
            }
            guard let decodedUser = percentDecoded(username ?? ""), let decodedPassword = percentDecoded(password ?? "") else {
                return fail("malformed %-escape in the credentials")
            }
            username = decodedUser.isEmpty ? nil : decodedUser
            password = password == nil ? nil : decodedPassword
        }
        if let query = rest.firstIndex(of: "?") {
            return fail("query parameters ('\(rest[query...].prefix { $0 != "=" })') are not supported")
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let value = Int(path), value >= 0 else { return fail("the database after '/' must be a number, not '\(path)'") }
                database = value
            }
        }
        var host: String
        var port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return fail("unclosed '[' in an IPv6 host") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let value = Int(rest.dropFirst()), (1...65_535).contains(value) else { return fail("the port must be a number from 1 to 65535") }
                port = value
            } else if !rest.isEmpty {
                return fail("unexpected text after the host")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65_535).contains(value) else {
                return fail("the port must be a number from 1 to 65535")
            }
            port = value
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { return fail("no host (expected redis://host:port)") }
        // TLS settings are filled in by the caller, from the redis.ssl.* options.
        return RedisEndpoint(host: host, port: port, username: username, password: password, database: database, tls: scheme == "rediss://" ? RedisEndpoint.TLS() : nil)
    }

    private func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
