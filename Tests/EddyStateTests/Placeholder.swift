import Testing

@Test func placeholderEddyState() { #expect(Bool(true)) }
