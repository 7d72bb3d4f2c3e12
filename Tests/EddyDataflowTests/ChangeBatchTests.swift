import EddyDataflow
import EddySQL
import Testing

@Suite struct ChangeBatchTests {
    @Test func changesReadBackAsAppended() {
        var batch = ChangeBatch(keyWidth: 2, rowWidth: 1)
        batch.appendInsert(key: [.int(1), .null], row: [.string("a")])
        batch.appendUpdate(key: [.int(2), .bool(true)], old: [.double(1.5)], new: [.null])
        batch.appendDelete(key: [.int(3), .string("k")], row: [.int(-4)])
        #expect(batch.count == 3)
        #expect(batch[0].kind == .insert && batch[0].oldRow == nil && batch[0].newRow.map(Array.init) == [.string("a")])
        #expect(Array(batch.key(at: 1)) == [.int(2), .bool(true)])
        #expect(batch.oldRow(at: 1).map(Array.init) == [.double(1.5)] && batch.newRow(at: 1).map(Array.init) == [.null])
        #expect(batch[2].kind == .delete && batch[2].newRow == nil && batch[2].oldRow.map(Array.init) == [.int(-4)])

        var joined = ChangeBatch(keyWidth: 2, rowWidth: 1)
        joined.appendDelete(key: [.int(0), .int(0)], row: [.int(0)])
        joined.append(contentsOf: batch)
        #expect(joined.count == 4)
        #expect(joined.oldRow(at: 2).map(Array.init) == [.double(1.5)] && joined.newRow(at: 2).map(Array.init) == [.null])
        #expect(joined.oldRow(at: 3).map(Array.init) == [.int(-4)])

        batch.removeAll()
        #expect(batch.isEmpty)
    }

    @Test func valuesEncodeAndDecode() throws {
        let values: [SQLValue] = [.null, .bool(false), .bool(true), .int(.min), .int(42), .double(-2.5), .string(""), .string("día ✓")]
        var bytes: [UInt8] = []
        ValueCodec.append(contentsOf: values, to: &bytes)
        #expect(try ValueCodec.decodeValues(bytes, count: values.count, what: "values") == values)
        #expect(throws: DataflowError.self) { try ValueCodec.decodeValues(bytes, count: values.count - 1, what: "values") }
        #expect(throws: DataflowError.self) { try ValueCodec.decodeValues(Array(bytes.dropLast()), count: values.count, what: "values") }

        // Values equal in SQL have equal bytes, so that a key's bytes can index its group.
        var zero: [UInt8] = []
        var negativeZero: [UInt8] = []
        ValueCodec.append(.double(0), to: &zero)
        ValueCodec.append(.double(-0.0), to: &negativeZero)
        #expect(zero == negativeZero)
    }
}
