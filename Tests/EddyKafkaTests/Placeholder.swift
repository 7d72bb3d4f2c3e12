import Testing

@Test func placeholderEddyKafka() { #expect(Bool(true)) }
