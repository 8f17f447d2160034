import Foundation

/// How long a failed delivery waits before its next attempt: exponential backoff, capped, with jitter.
///
/// The delay before attempt `n + 1` is `min(maximumDelay, initialDelay × multiplier^(n−1))`, of which a random
/// `jitter` fraction is replaced by a uniform draw, so retries of many events spread out instead of colliding.
public struct RetryPolicy: Sendable, Hashable {
    /// The delay after the first failure.
    public var initialDelay: Duration
    /// The growth factor per attempt.
    public var multiplier: Double
    /// The longest delay.
    public var maximumDelay: Duration
    /// The randomised fraction of each delay, from 0 (none) to 1 (full jitter).
    public var jitter: Double

    /// Creates a policy; the defaults are 200 ms doubling to at most 60 s, half of each delay random.
    public init(
        initialDelay: Duration = .milliseconds(200),
        multiplier: Double = 2,
        maximumDelay: Duration = .seconds(60),
        jitter: Double = 0.5
    ) {
        self.initialDelay = initialDelay
        self.multiplier = multiplier
        self.maximumDelay = maximumDelay
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The delay after the failure of attempt `attempt` (1-based).
    public func delay<Generator: RandomNumberGenerator>(afterAttempt attempt: Int, using generator: inout Generator) -> Duration {
        let base = initialDelay.seconds * pow(multiplier, Double(max(attempt - 1, 0)))
        let capped = min(base, maximumDelay.seconds)
        let fixed = capped * (1 - jitter)
        let random = capped * jitter * Double.random(in: 0...1, using: &generator)
        return .milliseconds(Int64(((fixed + random) * 1000).rounded()))
    }

    /// The delay after the failure of attempt `attempt`, with the system's random numbers.
    public func delay(afterAttempt attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, using: &generator)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
