import Foundation
import Testing

@testable import PostboxHarness

@Suite("Process CPU time")
struct ProcessCPUTimeTests {
    @Test func aStatLineIsReadFromTheLastParenthesisOfTheCommandName() {
        let line = "4242 (post gres) (x)) S 17 4242 4242 0 -1 4194560 120 0 0 0 250 75 10 5 20 0 1 0 100 0 0"
        #expect(ProcessCPUTime.parse(line) == .init(parent: 17, ownTicks: 325, waitedChildrenTicks: 15))
        #expect(ProcessCPUTime.parse("4242 (truncated) S 17") == nil)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/stat")))
    func theCPUTimeOfThisProcessGrowsWhileItWorks() throws {
        let pid = getpid()
        let before = try #require(ProcessCPUTime.of(pid))
        // Work until the kernel has counted some of it (ticks are 10 ms), however slowly this process is scheduled.
        let deadline = ContinuousClock.now + .seconds(60)
        var sum = 0.0
        var after = before
        while after <= before && ContinuousClock.now < deadline {
            for _ in 0..<100_000 { sum += sin(sum + 1) }
            after = try #require(ProcessCPUTime.of(pid))
        }
        #expect(after > before, "worked until \(after) (\(sum))")
        #expect(try #require(ProcessCPUTime.ofFamily(pid)) >= after)
        #expect(ProcessCPUTime.of(Int32.max) == nil)
    }
}
