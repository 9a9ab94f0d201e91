// swift-tools-version: 6.1
import PackageDescription

// Micro benchmarks of receivablesd's in-process parts (money, envelope decoding, allocation,
// reconciliation, bank formats), each beside a baseline measured in the same run.
// A package of its own so that the main build and `make test` never compile ordo-one/benchmark.
// Run: `swift package --package-path Benchmarks benchmark` (or `make bench-micro`).
let package = Package(
    name: "receivablesd-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "receivablesd", path: ".."),
        // The trait list replaces the package's defaults: MallocInterposer (malloc counts without
        // jemalloc) and not RuntimeInterposer, whose package is not among the ones this machine serves.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "MicroBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ARDomain", package: "receivablesd"),
                .product(name: "ARContract", package: "receivablesd"),
                .product(name: "BankFormats", package: "receivablesd"),
            ],
            path: "Benchmarks/MicroBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
