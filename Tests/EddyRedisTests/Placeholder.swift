import Testing

@Test func placeholderEddyRedis() { #expect(Bool(true)) }
