// swift-tools-version: 6.1
import PackageDescription

// MARK: - Dependencies

let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioTLS: Target.Dependency = .product(name: "NIOTLS", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let nioConcurrency: Target.Dependency = .product(name: "NIOConcurrencyHelpers", package: "swift-nio")
let nioFoundation: Target.Dependency = .product(name: "NIOFoundationCompat", package: "swift-nio")
let nioSSL: Target.Dependency = .product(name: "NIOSSL", package: "swift-nio-ssl")
let nioExtras: Target.Dependency = .product(name: "NIOExtras", package: "swift-nio-extras")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")
let hummingbird: Target.Dependency = .product(name: "Hummingbird", package: "hummingbird")
let hummingbirdTesting: Target.Dependency = .product(name: "HummingbirdTesting", package: "hummingbird")
let configuration: Target.Dependency = .product(name: "Configuration", package: "swift-configuration")
let sqlKit: Target.Dependency = .product(name: "SQLKit", package: "sql-kit")
let sqliteKit: Target.Dependency = .product(name: "SQLiteKit", package: "sqlite-kit")
let postgresKit: Target.Dependency = .product(name: "PostgresKit", package: "postgres-kit")
let postgresNIO: Target.Dependency = .product(name: "PostgresNIO", package: "postgres-nio")
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")
let httpTypes: Target.Dependency = .product(name: "HTTPTypes", package: "swift-http-types")
let sqliteNIO: Target.Dependency = .product(name: "SQLiteNIO", package: "sqlite-nio")
let systemPackage: Target.Dependency = .product(name: "SystemPackage", package: "swift-system")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")

let serviceLibraryDependencies: [Target.Dependency] = [
    "Contracts", "Wire", "ServerKit", "Storage", hummingbird, httpTypes, logging, metrics, lifecycle, configuration,
    nioCore, sqlKit,
]

/// What every service's test target uses besides its service.
let serviceTestDependencies: [Target.Dependency] = [
    "TestSupport", "Contracts", "ServerKit", "Storage", hummingbird, hummingbirdTesting, httpTypes, nioCore, logging,
]

// MARK: - Package

let package = Package(
    name: "labportal",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "catalog-service", targets: ["catalog-service"]),
        .executable(name: "session-service", targets: ["session-service"]),
        .executable(name: "classroom-service", targets: ["classroom-service"]),
        .executable(name: "report-service", targets: ["report-service"]),
        .executable(name: "wire-benchmark", targets: ["wire-benchmark"]),
        .executable(name: "classroom-scheduler", targets: ["classroom-scheduler"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(
            url: "https://github.com/apple/swift-configuration", from: "1.4.0",
            traits: [.defaults, "YAML", "CommandLineArguments"]),
        .package(url: "https://github.com/vapor/sql-kit", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // MARK: Libraries

        .target(name: "Contracts", path: "Libraries/Contracts"),
        .target(
            name: "Wire",
            dependencies: [
                nioCore, nioTLS, nioPosix, nioConcurrency, nioFoundation, nioSSL, nioExtras, lifecycle, logging, metrics,
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            path: "Libraries/Wire"),
        .target(
            name: "Storage",
            dependencies: [
                sqlKit, sqliteKit, sqliteNIO, postgresKit, postgresNIO, nioCore, nioPosix, nioConcurrency, logging, lifecycle,
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            path: "Libraries/Storage"),
        .target(
            name: "ServerKit",
            dependencies: [
                "Contracts", "Wire", "Storage", hummingbird, httpTypes, configuration, logging, metrics, prometheus,
                lifecycle, systemPackage, nioConcurrency,
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "_CryptoExtras", package: "swift-crypto"),
                nioCore, nioPosix, nioSSL,
            ],
            path: "Libraries/ServerKit"),
        .target(
            name: "TestSupport",
            dependencies: [
                "Contracts", "Wire", "ServerKit", "Storage", nioCore, nioPosix, nioSSL, nioExtras, logging,
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Libraries/TestSupport"),

        // MARK: Services

        .target(
            name: "CatalogService",
            dependencies: serviceLibraryDependencies + [
                yams, .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Services/Catalog/CatalogService"),
        .executableTarget(name: "catalog-service", dependencies: ["CatalogService", "ServerKit"], path: "Services/Catalog/catalog-service"),
        .target(
            name: "SessionService",
            dependencies: serviceLibraryDependencies + [
                crypto,
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Services/Session/SessionService"),
        .executableTarget(name: "session-service", dependencies: ["SessionService", "ServerKit"], path: "Services/Session/session-service"),
        .target(
            name: "ClassroomService", dependencies: serviceLibraryDependencies + [crypto],
            path: "Services/Classroom/ClassroomService"),
        .executableTarget(
            name: "classroom-service", dependencies: ["ClassroomService", "ServerKit"], path: "Services/Classroom/classroom-service"),
        .target(
            name: "ReportService",
            dependencies: serviceLibraryDependencies + [
                nioPosix, nioConcurrency, nioExtras, .product(name: "CompressNIO", package: "compress-nio"),
            ],
            path: "Services/Report/ReportService"),
        .executableTarget(name: "report-service", dependencies: ["ReportService", "ServerKit"], path: "Services/Report/report-service"),

        // MARK: Benchmarks

        .executableTarget(
            name: "wire-benchmark",
            dependencies: ["Wire", nioCore, nioPosix, nioConcurrency, nioSSL, nioExtras, logging],
            path: "Benchmarks/wire-benchmark"),
        .executableTarget(
            name: "classroom-scheduler",
            dependencies: ["ClassroomService", "Contracts", "ServerKit", "Storage", logging],
            path: "Benchmarks/classroom-scheduler"),

        // MARK: Tests

        .testTarget(name: "ContractsTests", dependencies: ["Contracts", "Wire"], path: "Tests/ContractsTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(
            name: "WireTests",
            dependencies: ["Wire", "TestSupport", nioCore, nioPosix, nioConcurrency, nioSSL, nioExtras, logging, lifecycle],
            path: "Tests/WireTests"),
        .testTarget(
            name: "StorageTests", dependencies: ["Storage", "TestSupport", sqlKit, nioConcurrency], path: "Tests/StorageTests"),
        .testTarget(
            name: "ServerKitTests",
            dependencies: [
                "ServerKit", "Contracts", "Wire", "Storage", "TestSupport", hummingbird, hummingbirdTesting, httpTypes,
                configuration, sqlKit,
            ],
            path: "Tests/ServerKitTests"),
        .testTarget(name: "LayeringTests", path: "Tests/LayeringTests"),
        .testTarget(name: "DeployTests", dependencies: ["TestSupport", yams], path: "Tests/DeployTests"),
        .testTarget(
            name: "CatalogServiceTests",
            dependencies: ["CatalogService"] + serviceTestDependencies,
            path: "Tests/CatalogServiceTests"),
        .testTarget(
            name: "SessionServiceTests",
            dependencies: ["SessionService", lifecycle] + serviceTestDependencies,
            path: "Tests/SessionServiceTests"),
        .testTarget(
            name: "ReportServiceTests",
            dependencies: ["ReportService", "Wire"] + serviceTestDependencies,
            path: "Tests/ReportServiceTests"),
        .testTarget(
            name: "ClassroomServiceTests",
            dependencies: ["ClassroomService", "Wire", sqlKit] + serviceTestDependencies,
            path: "Tests/ClassroomServiceTests"),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TestSupport", "Wire", "Contracts", "Storage", sqlKit, nioCore, nioPosix, nioSSL, logging,
            ],
            path: "Tests/IntegrationTests"),
    ],
    swiftLanguageModes: [.v6]
)
