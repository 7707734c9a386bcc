// Allocation call sites in a library loaded with dlopen after the program started, and closed
// before it ended (in neither the first nor the last module snapshot), are named, in traces
// written in full and folded.

import Foundation
import XCTest

final class AllocationSiteModuleTests: XCTestCase {
    func testSitesInADlopenedLibraryAreNamed() throws {
        let library = try TracedProgram.buildLibrary("plugin")
        let program = try TracedProgram.build("dlopen_user")
        for events in ["all", "folded"] {
            let run = try TracedProgram.trace(program, arguments: [library], environment: ["LEAKTRACE_EVENTS": events])
            XCTAssertEqual(run.stdout, "1\n", events)
            let trace = try XCTUnwrap(run.traces.first, run.stderr)
            let report = try LeakReportRunner.json([trace])
            let sites = report.objects("allocationSites")
            // plugin.c: plugin_make allocates the 6060 bytes main leaks; the constructor 48 bytes.
            let make = sites.first { $0.object("callsite").string("function") == "plugin_make" }
            XCTAssertEqual(make?.int("calls"), 1, "\(events): \(sites.map { $0.string("name") ?? "?" })")
            XCTAssertEqual(make?.int("bytes"), 6060, events)
            XCTAssertEqual(make?.object("callsite").string("module"), library, events)
            let constructor = sites.first { $0.object("callsite").string("function") == "plugin_init" }
            XCTAssertEqual(constructor?.int("calls"), 1, events)
            XCTAssertEqual(constructor?.int("bytes"), 48, events)
        }
    }
}
