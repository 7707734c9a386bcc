// swift-tools-version:5.9
//
// The Swift half of leaktrace: the trace reader and the `leakreport` analyzer.
// The preload library (CShim/) is built by Scripts/build.sh with the C compiler, not by SwiftPM:
// a SwiftPM dynamic product would drag the Swift runtime into every traced process.
import PackageDescription

// Release builds leave out the runtime's exclusive-access checks: the replay's hot loops spent 9%
// of their instructions in swift_beginAccess. Debug builds (the tests) keep them.
let releaseSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "leaktrace",
    products: [
        .executable(name: "leakreport", targets: ["leakreport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CLibDW", path: "Sources/CLibDW", pkgConfig: "libdw",
                       providers: [.apt(["libdw-dev"])]),

        // The live table's prefetch and mremap (neither is callable from Swift).
        .target(name: "CLiveTable"),

        // Stage 1: the trace format and its reader.
        .target(name: "TraceFormat", dependencies: ["CZstd"], swiftSettings: releaseSettings),
        // Stage 2: replay into a live set.
        .target(name: "LiveSet", dependencies: ["TraceFormat", "CLiveTable"], swiftSettings: releaseSettings),
        // Debug files' compressed sections decompressed ahead of libdw (libdeflate, zstd).
        // DWARF 4: valgrind 3.19 (Debian 12), used to profile leakreport, cannot read clang's DWARF 5.
        .target(name: "CDebugImage", cSettings: [.unsafeFlags(["-gdwarf-4"])], linkerSettings: [.linkedLibrary("deflate"), .linkedLibrary("zstd")]),
        // The Swift runtime's, libstdc++'s and libiberty's (Rust v0) demanglers, called by name.
        .target(name: "CDemangle", linkerSettings: [.linkedLibrary("stdc++"), .linkedLibrary("iberty")]),
        // Stage 3: symbolization of stack frames (libdw).
        .target(name: "Symbolization", dependencies: ["CLibDW", "CDebugImage", "CDemangle", "TraceFormat"],
                swiftSettings: releaseSettings),
        // Stage 4: grouping, paths, heap hole, thresholds, growth.
        .target(name: "LeakAnalysis", dependencies: ["TraceFormat", "LiveSet", "Symbolization"], swiftSettings: releaseSettings),
        // Stage 5: text, JSON, mtrace, folded output.
        .target(name: "Reports", dependencies: ["TraceFormat", "LiveSet", "Symbolization", "LeakAnalysis"], swiftSettings: releaseSettings),
        // Stage 6: the command line.
        .target(name: "LeakReportCommands", dependencies: [
            "TraceFormat", "LiveSet", "Symbolization", "LeakAnalysis", "Reports",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: releaseSettings),
        .executableTarget(name: "leakreport", dependencies: ["LeakReportCommands"]),

        .testTarget(name: "LeakTraceTests", dependencies: [
            "TraceFormat", "LiveSet", "Symbolization", "LeakAnalysis", "Reports", "LeakReportCommands",
        ], exclude: ["Programs", "Fixtures"]),
    ]
)
