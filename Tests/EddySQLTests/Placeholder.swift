import Testing

@Test func placeholderEddySQL() { #expect(Bool(true)) }
