import PostboxBus
import Testing

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test func delaysGrowExponentiallyUpToTheCapWithinTheJitterBand() {
        let policy = RetryPolicy(initialDelay: .milliseconds(100), multiplier: 2, maximumDelay: .seconds(1), jitter: 0.5)
        for (attempt, base) in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)] {
            for _ in 0..<50 {
                let delay = policy.delay(afterAttempt: attempt)
                let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
                #expect(seconds >= base * 0.5 - 0.001 && seconds <= base + 0.001, "attempt \(attempt): \(seconds)")
            }
        }
    }

    @Test func withoutJitterTheDelayIsExact() {
        let policy = RetryPolicy(initialDelay: .milliseconds(50), multiplier: 3, maximumDelay: .seconds(10), jitter: 0)
        #expect(policy.delay(afterAttempt: 3) == .milliseconds(450))
    }
}
