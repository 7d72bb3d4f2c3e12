import Testing

@Test func placeholderEddyEngine() { #expect(Bool(true)) }
