/// Fake user-behaviour events, shaped like the original pipeline's load generator: about 1000 e-mail
/// logins, about 100 page URLs, one of five events, and the current time, one JSON object per message:
///
///     {"event_timestamp": "2026-11-24 17:00:03", "user": "anna.smith@example.org", "page": "https://www.example.com/", "event": "click"}
///
/// Every message is written into a caller-owned buffer from byte strings prepared once, so producing
/// at full speed costs no allocation per message. The same seed gives the same stream of users, pages
/// and events (timestamps follow the clock).
public struct UserEventGenerator: Sendable {
    /// The event kinds, in the order used for event indexes.
    public static let eventNames: [String] = ["click", "scroll", "submit", "download", "focus"]

    public let users: [[UInt8]]
    public let pages: [[UInt8]]
    private let eventValues: [[UInt8]]
    private var random: SplitMix64

    /// - Parameters:
    ///   - seed: fixes the sequence of users, pages and events.
    ///   - userCount: distinct logins (default 1000, as the original).
    ///   - pageCount: distinct pages (default 100, as the original).
    public init(seed: UInt64, userCount: Int = 1000, pageCount: Int = 100) {
        precondition(userCount > 0 && pageCount > 0, "need at least one user and one page")
        // The user and page lists depend on the seed too, so that two seeds are two different populations.
        var lists = SplitMix64(seed: seed ^ 0x5EED_0F_E7E475)
        users = (0..<userCount).map { index in
            let first = Self.firstNames[Int(lists.next() % UInt64(Self.firstNames.count))]
            let last = Self.lastNames[Int(lists.next() % UInt64(Self.lastNames.count))]
            let domain = Self.domains[Int(lists.next() % UInt64(Self.domains.count))]
            // The index keeps logins distinct even when names repeat.
            return Array("\(first).\(last)\(index)@\(domain)".utf8)
        }
        pages = (0..<pageCount).map { index in
            if index == 0 { return Array("https://www.example.com/".utf8) }
            let section = Self.sections[Int(lists.next() % UInt64(Self.sections.count))]
            return Array("https://www.example.com/\(section)/\(index)".utf8)
        }
        eventValues = Self.eventNames.map { Array($0.utf8) }
        random = SplitMix64(seed: seed)
    }

    /// Appends one message to `buffer` (which is not cleared) and returns the index of its event in
    /// `eventNames`.
    ///
    /// - Parameter timestamp: the 19-byte `YYYY-MM-DD HH:MM:SS` text to put in `event_timestamp`.
    @inline(__always)
    public mutating func appendMessage(timestamp: EventTimestamp, to buffer: inout [UInt8]) -> Int {
        let user = users[Int(random.next() % UInt64(users.count))]
        let page = pages[Int(random.next() % UInt64(pages.count))]
        let eventIndex = Int(random.next() % UInt64(eventValues.count))
        buffer.append(contentsOf: Self.prefixTimestamp)
        timestamp.append(to: &buffer)
        buffer.append(contentsOf: Self.prefixUser)
        buffer.append(contentsOf: user)
        buffer.append(contentsOf: Self.prefixPage)
        buffer.append(contentsOf: page)
        buffer.append(contentsOf: Self.prefixEvent)
        buffer.append(contentsOf: eventValues[eventIndex])
        buffer.append(contentsOf: Self.suffix)
        return eventIndex
    }

    private static let prefixTimestamp = Array(#"{"event_timestamp": ""#.utf8)
    private static let prefixUser = Array(#"", "user": ""#.utf8)
    private static let prefixPage = Array(#"", "page": ""#.utf8)
    private static let prefixEvent = Array(#"", "event": ""#.utf8)
    private static let suffix = Array(#""}"#.utf8)

    private static let firstNames = [
        "anna", "ben", "carla", "david", "emma", "felix", "grace", "hugo", "iris", "jonas",
        "kira", "leo", "mia", "noah", "olga", "paul", "quinn", "rosa", "sam", "tara",
    ]
    private static let lastNames = [
        "smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "moore", "taylor", "clark",
        "lewis", "walker", "young", "king", "wright", "scott", "green", "baker", "adams", "nelson",
    ]
    private static let domains = ["example.org", "example.com", "example.net", "mail.example", "corp.example"]
    private static let sections = ["products", "blog", "docs", "pricing", "about", "careers", "support", "news"]
}

/// SplitMix64: a tiny, fast, well-distributed generator; plenty for fake data (and reproducible tests),
/// trivially seedable.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
