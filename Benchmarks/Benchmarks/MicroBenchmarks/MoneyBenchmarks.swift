import ARDomain
import Benchmark

/// Benchmark 1: the contract's decimal amount strings ("1250.00") to integer minor units and back,
/// against the standard library doing the same with the bare digits ("125000").
/// Scaled by 1,000: the figures are per amount.
func registerMoneyBenchmarks() {
    var random = SeededGenerator(seed: 0x4D4F_4E45_5901)
    let amounts: [Int64] = (0..<1_000).map { _ in invoiceAmountMinorUnits(&random) }
    let decimalStrings = amounts.map { Money.format(minorUnits: $0, digits: euro.minorUnitDigits) }
    let digitStrings = amounts.map { String($0) }
    let moneyValues = amounts.map { Money(minorUnits: $0, currency: euro) }
    let configuration = perItemConfiguration()

    Benchmark("money: Money.parse of a JSON amount (EUR)", configuration: configuration) { benchmark in
        for index in benchmark.scaledIterations {
            do { blackHole(try Money.parse(decimalStrings[index], currency: euro)) } catch {
                benchmark.error("\(decimalStrings[index]) does not parse: \(error)")
            }
        }
    }
    Benchmark("money baseline: Int64(String) of the same digits", configuration: configuration) { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(Int64(digitStrings[index]))
        }
    }
    Benchmark("money: Money.decimalString (EUR)", configuration: configuration) { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(moneyValues[index].decimalString)
        }
    }
    Benchmark("money baseline: String(Int64) of the same amounts", configuration: configuration) { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(String(amounts[index]))
        }
    }
}
