import EddySQL

/// The running state of one aggregate for one group: enough to add a row and to take one back exactly.
///
/// `COUNT` and `SUM`/`AVG` retract by subtraction (integers in 128 bits, so that a sum is exact whatever
/// order rows arrive and leave in); `MIN`/`MAX` and `DISTINCT` keep their values with a count each.
struct AggregateAccumulator: Sendable {
    /// Values taken in: rows for `COUNT(*)`, else non-NULL values passing the FILTER (distinct ones for DISTINCT).
    var count: Int64 = 0
    /// The sum of the integer values taken in.
    var integerSum: Int128 = 0
    /// The sum of the double values taken in, and how many there are (at 0 the sum is reset to exactly 0,
    /// so rounding left by a subtraction does not outlive the values).
    var doubleSum: Double = 0
    var doubleCount: Int64 = 0
    /// For `MIN`/`MAX` and `DISTINCT`.
    var values = ValueMultiset()

    /// Adds (`sign` +1) or retracts (`sign` -1) one input row's contribution: `value` is the argument's
    /// value, nil for `COUNT(*)`.
    mutating func add(_ value: SQLValue?, sign: Int64, function: AggregateFunction) {
        guard let value else {
            count += sign
            return
        }
        if value == .null { return }
        if function.isDistinct {
            let transition = values.add(value, count: sign)
            if transition != 0 { contribute(value, sign: Int64(transition), function: function) }
        } else {
            if function.keepsValues { _ = values.add(value, count: sign) }
            contribute(value, sign: sign, function: function)
        }
        precondition(count >= 0, "aggregate \(function) retracted more values than it took in")
    }

    private mutating func contribute(_ value: SQLValue, sign: Int64, function: AggregateFunction) {
        count += sign
        guard function.sums else { return }
        switch value {
        case .int(let number): integerSum += Int128(number) * Int128(sign)
        case .double(let number):
            doubleCount += sign
            doubleSum = doubleCount == 0 ? 0 : doubleSum + (sign > 0 ? number : -number)
        default: break  // the binder allows only numbers here
        }
    }

    /// The aggregate's SQL value.
    func result(_ function: AggregateFunction) -> SQLValue {
        switch function.kind {
        case .countRows, .count:
            return .int(count)
        case .sum:
            guard count > 0 else { return .null }
            if doubleCount > 0 { return .double(Double(integerSum) + doubleSum) }
            return Int64(exactly: integerSum).map(SQLValue.int) ?? .double(Double(integerSum))
        case .average:
            guard count > 0 else { return .null }
            return .double((Double(integerSum) + doubleSum) / Double(count))
        case .minimum:
            return values.smallest ?? .null
        case .maximum:
            return values.largest ?? .null
        }
    }

    // MARK: State

    /// Layout: the function's kind and a flags byte (bit 0: DISTINCT), the count (LEB128); for `SUM`/`AVG` the
    /// integer sum (two little-endian words, low then high), the double sum's bits and the double count
    /// (LEB128); for kept values their number (LEB128), then each value (`ValueCodec`) and its count (LEB128).
    func encode(_ function: AggregateFunction, into bytes: inout [UInt8]) {
        bytes.append(function.kind.rawValue)
        bytes.append(function.isDistinct ? 1 : 0)
        ValueCodec.appendVarint(UInt64(count), to: &bytes)
        if function.sums {
            ValueCodec.appendLittleEndian(UInt64(truncatingIfNeeded: integerSum), to: &bytes)
            ValueCodec.appendLittleEndian(UInt64(truncatingIfNeeded: integerSum >> 64), to: &bytes)
            ValueCodec.appendLittleEndian(doubleSum.bitPattern, to: &bytes)
            ValueCodec.appendVarint(UInt64(doubleCount), to: &bytes)
        }
        if function.keepsValues {
            ValueCodec.appendVarint(UInt64(values.distinctCount), to: &bytes)
            for (value, count) in zip(values.values, values.counts) {
                ValueCodec.append(value, to: &bytes)
                ValueCodec.appendVarint(UInt64(count), to: &bytes)
            }
        }
    }

    static func decode(_ function: AggregateFunction, from reader: inout ByteReader, index: Int) throws(DataflowError) -> AggregateAccumulator {
        let name = "aggregate \(index + 1) (\(function))"
        let kind = try reader.byte()
        let flags = try reader.byte()
        guard kind == function.kind.rawValue, flags == (function.isDistinct ? 1 : 0) else {
            throw reader.corrupt("holds function \(kind) with flags \(flags) for \(name): it belongs to another definition")
        }
        var accumulator = AggregateAccumulator()
        accumulator.count = Int64(try reader.count(atMost: Int(Int64.max)))
        if function.sums {
            let low = try reader.littleEndian64()
            let high = try reader.littleEndian64()
            accumulator.integerSum = Int128(Int64(bitPattern: high)) << 64 | Int128(low)
            accumulator.doubleSum = Double(bitPattern: try reader.littleEndian64())
            accumulator.doubleCount = Int64(try reader.count(atMost: Int(accumulator.count)))
        }
        if function.keepsValues {
            let distinctCount = try reader.length()  // each kept value takes at least one byte
            var total: Int64 = 0
            for _ in 0..<distinctCount {
                let value = try reader.value()
                let count = Int64(try reader.count(atMost: Int(Int64.max)))
                guard accumulator.values.appendRestored(value, count: count) else {
                    throw reader.corrupt("holds a kept value of \(name) that is NULL, out of order, repeated or counted 0 times")
                }
                let (sum, overflow) = total.addingReportingOverflow(count)
                guard !overflow else { throw reader.corrupt("holds counts of \(name) that overflow") }
                total = sum
            }
            let expected = function.isDistinct ? Int64(distinctCount) : total
            guard accumulator.count == expected else {
                throw reader.corrupt("holds a count of \(accumulator.count) for \(name), but its kept values make \(expected)")
            }
        }
        return accumulator
    }
}
