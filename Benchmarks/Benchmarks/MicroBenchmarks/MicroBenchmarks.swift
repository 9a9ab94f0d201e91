import Benchmark

/// receivablesd's in-process parts, each beside a baseline from the same run (names say which):
/// read the figures as ratios to their baselines, not as absolute numbers (a shared machine).
let benchmarks: @Sendable () -> Void = {
    registerMoneyBenchmarks()
    registerEnvelopeBenchmarks()
    registerAllocationBenchmarks()
    registerReconciliationBenchmarks()
    registerBankFormatBenchmarks()
}

/// For per-item work done 1,000 times an iteration (`scaledIterations`): figures are per item.
/// (A function: `Benchmark.Configuration` is not `Sendable`, so it cannot be a global constant.)
func perItemConfiguration() -> Benchmark.Configuration {
    Benchmark.Configuration(metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 3, scalingFactor: .kilo,
                            maxDuration: .seconds(1), maxIterations: 2_000)
}
