import Foundation
import XCTest

/// The leakreport users run is the release build (Scripts/build.sh: optimised, the Swift runtime
/// linked statically); the rest of the suite runs the debug build, linked to the toolchain's
/// libswiftCore.so. What only the shipped build can get wrong is checked here: the static link
/// once left swift_demangle out (it was looked up with dlsym), and Swift frames came out mangled.
final class ReleaseBuildTests: XCTestCase {
    static var releaseLeakreport: String {
        TracedProgram.repositoryRoot.appendingPathComponent(".build/release/leakreport").path
    }

    /// Programs/swift_leak.swift and Programs/analysis_cxx.cpp, traced, read by the release
    /// build: every frame's function is demangled (the program's own, the Swift runtime's and
    /// libstdc++'s), with file:line where the program has debug information.
    func testTheShippedLeakreportDemanglesSwiftAndCxxFrames() throws {
        let leakreport = Self.releaseLeakreport
        guard FileManager.default.isExecutableFile(atPath: leakreport) else {
            throw TestFailure("\(leakreport) is missing: Scripts/test.sh builds it (Scripts/build.sh)")
        }
        let linked = try TracedProgram.run(executable: "/usr/bin/readelf", arguments: ["-d", leakreport], environment: [:],
                                           timeout: 60)
        XCTAssertFalse(linked.stdout.contains("libswiftCore"), "the release build links the Swift runtime statically")

        let directory = try TracedProgram.makeTraceDirectory()
        let program = directory.appendingPathComponent("swift_leak").path
        let source = TracedProgram.programsDirectory.appendingPathComponent("swift_leak.swift").path
        let compiled = try TracedProgram.run(executable: "/usr/bin/env", arguments: ["swiftc", "-g", "-Onone", "-o", program, source],
                                             environment: [:], timeout: 300)
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        let run = try TracedProgram.trace(program)
        XCTAssertEqual(run.status, 0, run.stderr)
        let trace = try XCTUnwrap(run.traces.first, run.stderr)
        let root = try LeakReportRunner.json(["--show-reachable", trace], using: leakreport)
        func stack(_ group: [String: Any]) -> [[String: Any]] { group.object("biggest").objects("stack") }
        let functions = root.objects("groups").flatMap(stack).compactMap { $0.string("function") }
        XCTAssertFalse(functions.isEmpty, "\(root)")
        XCTAssertEqual(functions.filter { $0.hasPrefix("$s") || $0.hasPrefix("_$s") || $0.hasPrefix("_Z") }, [])
        // The holder's array: allocated in Holder.init, called from keepForever() on line 8.
        let holder = try XCTUnwrap(root.objects("groups").first { group in
            stack(group).contains { $0.string("function") == "swift_leak.keepForever() -> ()" }
        }, "\(functions)")
        let keep = try XCTUnwrap(stack(holder).first { $0.string("function") == "swift_leak.keepForever() -> ()" })
        XCTAssertEqual(keep.int("line"), 8)
        XCTAssertTrue(stack(holder).contains { $0.string("function") == "swift_leak.Holder.init() -> swift_leak.Holder" },
                      "\(stack(holder).compactMap { $0.string("function") })")

        // C++: operator new and the function template by their written names.
        let cxx = try TracedProgram.build("analysis_cxx")
        let cxxRun = try TracedProgram.trace(cxx)
        let cxxTrace = try XCTUnwrap(cxxRun.traces.first, cxxRun.stderr)
        let cxxRoot = try LeakReportRunner.json([cxxTrace], using: leakreport)
        let cxxFunctions = Set(cxxRoot.objects("groups").flatMap(stack).compactMap { $0.string("function") })
        XCTAssertTrue(cxxFunctions.isSuperset(of: ["operator new(unsigned long)", "shapes::make_widget()",
                                                   "long* shapes::make_array<long>(unsigned long)"]), "\(cxxFunctions)")
    }
}
