import Testing

@Test func placeholderEddyCLI() { #expect(Bool(true)) }
