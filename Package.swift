// swift-tools-version: 6.1
import PackageDescription

// Every target: Swift 6 language mode with the upcoming features STYLE.md asks for.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "receivablesd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "receivablesd", targets: ["receivablesd"]),
        .executable(name: "receivablesd-portal", targets: ["receivablesd-portal"]),
        // The in-process parts as libraries, for the separate micro-benchmark package in Benchmarks/.
        .library(name: "ARDomain", targets: ["ARDomain"]),
        .library(name: "ARContract", targets: ["ARContract"]),
        .library(name: "BankFormats", targets: ["BankFormats"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // C libraries, found with pkg-config, installed by `make deps` (apt).
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .target(name: "CAmqpShim", dependencies: ["CRabbitMQ"], linkerSettings: [.linkedLibrary("crypto")]),
        .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),

        // Pure domain: money, invoices, allocation, journal. Standard library only.
        .target(name: "ARDomain", swiftSettings: strict),
        // CloudEvents envelope, JSON, JSON Schema validation, typed commands and events.
        .target(name: "ARContract", dependencies: ["ARDomain"], swiftSettings: strict),
        // Partitioned intake: partition keys, layout, balanced assignment, the order guard. Pure.
        .target(name: "Partitioning", dependencies: ["ARDomain", "ARContract"], swiftSettings: strict),
        // camt.053/054, BAI2, MT940 → normalised bank entries.
        .target(name: "BankFormats", dependencies: ["ARDomain", "CLibXML2"], swiftSettings: strict),

        // Statements and reports as HTML (templates/, embedded), CSV, JSON, text tables.
        .target(name: "Documents", dependencies: ["ARDomain", "ARContract", .product(name: "Mustache", package: "swift-mustache")],
                swiftSettings: strict),

        // I/O edges.
        .target(name: "AMQPClient", dependencies: ["CRabbitMQ", "CAmqpShim"], swiftSettings: strict),
        .target(name: "PostgresClient", dependencies: ["CLibpq"], swiftSettings: strict),
        .target(name: "Store", dependencies: ["PostgresClient", "ARDomain"], swiftSettings: strict),
        .target(
            name: "Daemon",
            dependencies: [
                "ARDomain", "ARContract", "BankFormats", "AMQPClient", "PostgresClient", "Store", "CSystemd", "Documents", "Partitioning",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "receivablesd",
            dependencies: [
                "Daemon", "BankFormats", "Store", "ARContract", "AMQPClient", "PostgresClient", "Documents", "Partitioning",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The reference portal page: HTTP on loopback, the daemon only through AMQP request/reply.
        .executableTarget(
            name: "receivablesd-portal",
            dependencies: [
                "AMQPClient", "ARContract", "ARDomain", "Documents",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        .testTarget(
            name: "ARDomainTests",
            dependencies: ["ARDomain", "TestSupport", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ARContractTests",
            dependencies: ["ARContract", "ARDomain", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(name: "DocumentsTests", dependencies: ["Documents", "ARDomain", "ARContract"], swiftSettings: strict),
        .testTarget(
            name: "PartitioningTests",
            dependencies: ["Partitioning", "ARContract", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BankFormatsTests",
            dependencies: ["BankFormats", "ARDomain", .product(name: "PropertyBased", package: "swift-property-based")],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        // Process and service helpers shared by the test targets that start the daemon.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "OperationsTests", dependencies: ["TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Daemon", "Store", "ARContract", "ARDomain", "AMQPClient", "PostgresClient", "Partitioning", "TestSupport"],
            exclude: ["blackbox"],  // python scenario scripts run by the tests
            swiftSettings: strict
        ),
    ]
)
