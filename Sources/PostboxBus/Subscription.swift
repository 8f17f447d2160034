/// A named subscription to one or more topics, and how its consumers process them.
///
/// Every subscription receives its own copy of each event on its topics (fan-out). All consumers of the same
/// subscription, in any number of processes, share its deliveries: each event is handled by one of them at a time
/// (competing consumers). Events published before the subscription was first registered are not delivered to it.
public struct Subscription: Sendable, Hashable {
    /// The subscription's name, usually the consuming service's, for example `inventory`.
    public var name: String
    /// The event types it receives.
    public var topics: [String]
    /// How many handler transactions may run at once in one consumer.
    public var concurrency: Int
    /// How many events one claim query may take.
    public var claimBatchSize: Int
    /// How many events one handler transaction receives (1: one transaction per event).
    public var handlerBatchSize: Int
    /// How long a claim is exclusive; live consumers renew it every third of this, so after a crash or a
    /// freeze the event is visible again within `lease`.
    public var lease: Duration
    /// Attempts (claims) before the event goes to dead letters.
    public var maxAttempts: Int
    /// Backoff between attempts.
    public var retry: RetryPolicy
    /// The longest a consumer waits between looks at the queue when no notification arrives (a safety net).
    public var pollInterval: Duration
    /// How long a stopping consumer waits for handlers in flight before it cancels them.
    public var drainTimeout: Duration
    /// A handler running longer than this stops having its lease renewed, so another consumer takes the event
    /// over one lease later; a hung handler (a lost connection, a stuck call) cannot hold an event for ever.
    public var handlerTimeout: Duration

    /// Creates a subscription; every setting but the name and topics has a default suited to a service.
    public init(
        name: String,
        topics: [String],
        concurrency: Int = 4,
        claimBatchSize: Int = 16,
        handlerBatchSize: Int = 1,
        lease: Duration = .seconds(5),
        maxAttempts: Int = 5,
        retry: RetryPolicy = RetryPolicy(),
        pollInterval: Duration = .seconds(2),
        drainTimeout: Duration = .seconds(10),
        handlerTimeout: Duration = .seconds(120)
    ) {
        precondition(!name.isEmpty && !topics.isEmpty, "a subscription needs a name and at least one topic")
        self.name = name
        self.topics = topics
        self.concurrency = max(1, concurrency)
        self.claimBatchSize = max(1, claimBatchSize)
        self.handlerBatchSize = max(1, handlerBatchSize)
        self.lease = lease
        self.maxAttempts = max(1, maxAttempts)
        self.retry = retry
        self.pollInterval = pollInterval
        self.drainTimeout = drainTimeout
        self.handlerTimeout = handlerTimeout
    }
}
