// The seeded mutation fuzzer over the trace reader. Inputs start as the committed corpus of real
// traces; each execution mutates one (splicing from another), reads it, and checks the reader's
// promises (FuzzKit.execute). An input whose outcome has not been seen before joins the pool,
// so the fuzzer keeps exploring new ways of failing rather than repeating one.
//
//   LEAKTRACE_FUZZ_EXECUTIONS  executions (default 50,000; Scripts/hazards.sh runs more)
//   LEAKTRACE_FUZZ_SEED        the seed (default fixed: a failure replays exactly)
//   LEAKTRACE_FUZZ_FINDINGS    a directory: each finding is saved there, and the input being
//                              read is kept in current.lt, so a crash leaves its input behind

import Foundation
import XCTest
import TraceFormat

final class FuzzMutationTests: XCTestCase {
    /// State shared with the watchdog thread.
    private final class Campaign: @unchecked Sendable {
        var pool: [[UInt8]] = []
        var signatures = Set<String>()
        var findings: [String] = []
        var executions = 0
        var slowest: TimeInterval = 0
        var refused = 0, cut = 0, complete = 0
    }

    func testSeededMutationsOfTheCorpusNeverCrashHangOrMisreport() throws {
        let executions = FuzzKit.environmentNumber("LEAKTRACE_FUZZ_EXECUTIONS", 50_000)
        let seed = UInt64(FuzzKit.environmentNumber("LEAKTRACE_FUZZ_SEED", 0x1EAC_7ACE))
        let findingsDirectory = ProcessInfo.processInfo.environment["LEAKTRACE_FUZZ_FINDINGS"]
        if let findingsDirectory {
            try FileManager.default.createDirectory(atPath: findingsDirectory, withIntermediateDirectories: true)
        }
        let corpus = try FuzzKit.corpus().map(\.bytes)
        XCTAssertGreaterThanOrEqual(corpus.count, 10)

        // The input about to be read is kept in current.lt (rewritten in place, cheaply), so a
        // crash of the whole test process leaves it behind.
        let current: Int32 = findingsDirectory.map { open($0 + "/current.lt", O_WRONLY | O_CREAT | O_TRUNC, 0o644) } ?? -1
        defer { if current >= 0 { close(current) } }
        let campaign = Campaign()
        campaign.pool = corpus
        for input in corpus {
            let outcome = FuzzKit.execute(input)
            XCTAssertEqual(outcome.violations, [], "a corpus trace")
            campaign.signatures.insert(outcome.signature)
        }
        let corpusSignatures = campaign.signatures.count
        let started = Date()
        // Generous: about 10,000 executions a second in a release build, a few thousand in debug.
        let budget = max(600.0, Double(executions) / 200)
        withWatchdog(seconds: budget, "\(executions) fuzz executions") {
            var mutator = FuzzMutator(seed: seed)
            for execution in 0..<executions {
                let parent = campaign.pool[mutator.below(campaign.pool.count)]
                let other = campaign.pool[mutator.below(campaign.pool.count)]
                let input = mutator.mutate(parent, splicingFrom: other)
                if current >= 0 {
                    _ = ftruncate(current, 0)
                    _ = input.withUnsafeBytes { pwrite(current, $0.baseAddress, $0.count, 0) }
                }
                let begun = Date()
                let outcome = FuzzKit.execute(input)
                let took = Date().timeIntervalSince(begun)
                campaign.slowest = max(campaign.slowest, took)
                campaign.executions = execution + 1
                switch outcome.endState {
                case .complete?: campaign.complete += 1
                case .cut?: campaign.cut += 1
                case nil: campaign.refused += 1
                }
                // A read's cost is checked by count (FuzzKit.execute: records against declared
                // bytes), not by the clock; the slowest read is printed for the figures.
                let problems = outcome.violations
                if !problems.isEmpty {
                    let text = "execution \(execution) (seed \(seed)): \(problems.joined(separator: "; "))"
                    campaign.findings.append(text)
                    if let findingsDirectory {
                        let name = "\(findingsDirectory)/finding-\(campaign.findings.count)"
                        try? Data(input).write(to: URL(fileURLWithPath: name + ".lt"))
                        try? text.write(toFile: name + ".txt", atomically: true, encoding: .utf8)
                    }
                }
                // A new outcome joins the pool if it got past the header (a refusal teaches only
                // its kind, which the signature keeps).
                if campaign.signatures.insert(outcome.signature).inserted, outcome.refusal == nil,
                   campaign.pool.count < 4000 {
                    campaign.pool.append(input)
                }
            }
        }
        let seconds = Date().timeIntervalSince(started)
        print("fuzz: \(campaign.executions) executions in \(String(format: "%.1f", seconds)) s, seed \(seed), "
              + "\(campaign.signatures.count) distinct outcomes (\(corpusSignatures) from the corpus), "
              + "pool \(campaign.pool.count), slowest read \(String(format: "%.3f", campaign.slowest)) s, "
              + "\(campaign.findings.count) findings; \(campaign.refused) refused at open, \(campaign.cut) read to a cut, "
              + "\(campaign.complete) complete")
        FuzzKit.reportFigures(["executions": campaign.executions, "findings": campaign.findings.count,
                               "outcomes": campaign.signatures.count])
        XCTAssertEqual(campaign.executions, executions)
        XCTAssertEqual(campaign.findings, [])
        // The mutator must reach well past what the corpus shows (cut chunks, bad sizes, codecs,
        // undefined stacks, refusals of several kinds), and most inputs must get past the header.
        XCTAssertGreaterThan(campaign.signatures.count, corpusSignatures + 20)
        XCTAssertGreaterThan(campaign.cut + campaign.complete, campaign.executions / 2)
        if let findingsDirectory { try? FileManager.default.removeItem(atPath: findingsDirectory + "/current.lt") }
    }

    /// The mutator is a pure function of its seed: a finding replays from the seed alone.
    func testTheSameSeedMutatesTheSameWay() throws {
        let input = try FuzzKit.corpusFile("every-record-zstd.lt")
        var first = FuzzMutator(seed: 99), second = FuzzMutator(seed: 99), third = FuzzMutator(seed: 100)
        let a = (0..<50).map { _ in first.mutate(input, splicingFrom: input) }
        let b = (0..<50).map { _ in second.mutate(input, splicingFrom: input) }
        let c = (0..<50).map { _ in third.mutate(input, splicingFrom: input) }
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertGreaterThan(Set(a).count, 40, "mutations repeat")
    }
}
