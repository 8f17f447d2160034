import Foundation
import Logging
import Metrics
import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// Handles the deliveries of one subscription; run it as a `Service` beside its ``MessageBus``.
///
/// It claims visible deliveries in batches under a lease, runs the handler in a transaction that also acknowledges
/// them, and renews the leases of handlers still running. It sleeps until a notification, a finished handler, the
/// next delayed or retried delivery, or the poll interval, whichever comes first. On graceful shutdown it stops
/// claiming, lets handlers in flight finish (up to ``Subscription/drainTimeout``) and returns.
public final class Consumer: Service, Sendable {
    /// The handler's type: the events of one transaction (one, unless ``Subscription/handlerBatchSize`` > 1) and
    /// the transaction to write in.
    public typealias BatchHandler = @Sendable ([ReceivedEvent], BusTransaction) async throws -> Void

    /// The subscription this consumer serves.
    public let subscription: Subscription
    private let bus: MessageBus
    private let handler: BatchHandler
    private let store: DeliveryStore
    private let logger: Logger
    /// Woken by notifications, finished handler tasks and shutdown: there may be new work to claim.
    private let wake = WakeSignal()
    /// Woken by finished handler tasks and shutdown: capacity may be free. Notifications do not wake a consumer
    /// whose capacity is all in use: it claims the next work when a handler finishes, or, if that handler's
    /// acknowledgement has just found nothing to claim, once a wake-up says there is some.
    private let slotFreed = WakeSignal()
    /// Whether the handler that last freed a slot ended because its acknowledgement found nothing more to claim.
    private let freedOnEmptyQueue = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let inFlight = Mutex<[Int64: Lease]>([:])
    /// Claims of the claim loop that found nothing to take; exposed for tests and diagnostics.
    let emptyClaims = Atomic<Int>(0)
    /// Whether the claim loop is idle, waiting for a wake-up; for tests and diagnostics.
    var isWaitingForWork: Bool { wake.isWaiting }
    private let metrics: ConsumerMetrics

    init(bus: MessageBus, subscription: Subscription, handler: @escaping BatchHandler) {
        self.bus = bus
        self.subscription = subscription
        self.handler = handler
        self.logger = {
            var logger = bus.logger
            logger[metadataKey: "bus.subscription"] = "\(subscription.name)"
            return logger
        }()
        self.store = DeliveryStore(client: bus.client, logger: logger)
        self.metrics = ConsumerMetrics(subscription: subscription.name)
    }

    /// Registers the subscription, then claims and handles until graceful shutdown; see the type's discussion.
    public func run() async throws {
        try await store.register(subscription)
        bus.listener.register(wake, topics: subscription.topics, group: subscription.name)
        defer { bus.listener.unregister(wake) }
        logger.debug("consumer started", metadata: ["bus.topics": "\(subscription.topics.joined(separator: ","))"])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.renewLeases() }
                await self.claimLoop(group: &group)
                await self.drain()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private func stop() {
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        slotFreed.signal()
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) || Task.isCancelled }

    private func claimLoop(group: inout DiscardingTaskGroup) async {
        let capacity = subscription.concurrency * subscription.handlerBatchSize
        var failures = 0
        while !isStopping {
            let free = capacity - inFlight.withLock { $0.count }
            guard free > 0 else {
                freedOnEmptyQueue.store(false, ordering: .relaxed)
                await slotFreed.wait(timeout: subscription.pollInterval)
                if freedOnEmptyQueue.load(ordering: .relaxed) && !isStopping {
                    // Its acknowledgement has just looked and found nothing: a claim now would too. Wait for news
                    // (or the next due delivery) as after an empty claim; a publish meanwhile has left a wake-up.
                    await waitForWork()
                }
                continue
            }
            let limit = min(free, subscription.claimBatchSize)
            let claimed: [ClaimedDelivery]
            do {
                claimed = try await store.claim(
                    subscription: subscription.name,
                    limit: limit,
                    lease: subscription.lease,
                    owner: bus.instanceName
                )
                failures = 0
            } catch {
                failures += 1
                logger.warning("claim failed", metadata: ["error": "\(DatabaseErrorText.describe(error))"])
                await wake.wait(timeout: .milliseconds(min(2000, 50 << min(failures, 6))))
                continue
            }
            if claimed.isEmpty {
                emptyClaims.add(1, ordering: .relaxed)
                await waitForWork()
                continue
            }
            if claimed.count == limit {
                // There may be more: let an idle consumer of the same subscription in this process look too.
                bus.listener.wakeAnother(in: subscription.name, except: wake)
            }
            let claimedAt = ContinuousClock.now
            inFlight.withLock { inFlight in
                for delivery in claimed { inFlight[delivery.deliveryId] = Lease(token: delivery.leaseToken, claimedAt: claimedAt) }
            }
            for batch in batches(of: claimed) {
                group.addTask { await self.processUntilIdle(batch) }
            }
            if claimed.count < limit && inFlight.withLock({ $0.count }) > 0 {
                // The queue had less than we asked for: wait for a handler to finish or new work to arrive.
                await wake.wait(timeout: subscription.pollInterval)
            }
        }
    }

    /// Sleeps until a wake-up or until the next delayed, retried or lease-expiring delivery is due.
    private func waitForWork() async {
        var timeout = subscription.pollInterval
        if let next = try? await store.nextVisibleAt(subscription: subscription.name) {
            let untilNext = Duration.milliseconds(Int64(max(0, next.timeIntervalSinceNow) * 1000) + 5)
            timeout = min(timeout, untilNext)
        }
        await wake.wait(timeout: timeout)
    }

    private func batches(of claimed: [ClaimedDelivery]) -> [[ClaimedDelivery]] {
        stride(from: 0, to: claimed.count, by: subscription.handlerBatchSize).map {
            Array(claimed[$0..<min($0 + subscription.handlerBatchSize, claimed.count)])
        }
    }

    private func drain() async {
        let deadline = ContinuousClock.now + subscription.drainTimeout
        while inFlight.withLock({ !$0.isEmpty }) && ContinuousClock.now < deadline {
            await slotFreed.wait(timeout: .milliseconds(100))
        }
    }

    private func renewLeases() async {
        let interval = subscription.lease / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            let oldest = ContinuousClock.now - subscription.handlerTimeout
            let byToken = inFlight.withLock { inFlight in
                Dictionary(grouping: inFlight.filter { $0.value.claimedAt > oldest }, by: \.value.token)
                    .mapValues { $0.map(\.key) }
            }
            for (token, ids) in byToken {
                do {
                    try await store.renew(token: token, deliveryIds: ids, lease: subscription.lease)
                } catch {
                    logger.warning("lease renewal failed", metadata: ["error": "\(DatabaseErrorText.describe(error))"])
                }
            }
        }
    }

    // MARK: Handling

    /// Processes `batch`, then the deliveries its acknowledgement claimed, until one claims none.
    ///
    /// When the last acknowledgement claimed nothing, the queue had nothing claimable at that moment, and whatever
    /// comes later brings its own wake-up: the claim loop is not woken to look again, and one that was waiting for
    /// this slot waits for a wake-up or the next due delivery before it claims. After a failure (a retry is now
    /// scheduled) or without an acknowledgement that tried to claim, it looks at once.
    private func processUntilIdle(_ batch: [ClaimedDelivery]) async {
        var batch = batch
        var queueWasEmpty = false
        while !batch.isEmpty {
            let processed = await process(batch)
            let claimedAt = ContinuousClock.now
            inFlight.withLock { inFlight in
                for delivery in batch { inFlight[delivery.deliveryId] = nil }
                for delivery in processed.next {
                    inFlight[delivery.deliveryId] = Lease(token: delivery.leaseToken, claimedAt: claimedAt)
                }
            }
            batch = processed.next
            queueWasEmpty = processed.claimedNothing
        }
        freedOnEmptyQueue.store(queueWasEmpty, ordering: .relaxed)
        slotFreed.signal()
        if !queueWasEmpty { wake.signal() }
    }

    /// Handles one claimed batch; returns the deliveries its acknowledgement claimed next, and whether it tried to
    /// claim and found nothing.
    private func process(_ batch: [ClaimedDelivery]) async -> (next: [ClaimedDelivery], claimedNothing: Bool) {
        var runnable: [ClaimedDelivery] = []
        for delivery in batch {
            if delivery.tookOverLease { metrics.leaseTakeovers.increment() }
            if delivery.alreadyHandled {
                metrics.duplicates.increment()
                await ignoringFailure("drop duplicate") {
                    try await store.dropDuplicates(deliveryIds: [delivery.deliveryId], token: delivery.leaseToken)
                }
            } else if delivery.event.attempt > subscription.maxAttempts {
                await deadLetter(
                    delivery,
                    reason: "gave up after \(subscription.maxAttempts) attempts",
                    error: "attempt \(delivery.event.attempt - 1): lease expired without an acknowledgement "
                        + "(the consumer crashed or stalled)"
                )
            } else {
                runnable.append(delivery)
            }
        }
        guard !runnable.isEmpty else { return ([], false) }
        let claimNext = isStopping ? 0 : subscription.handlerBatchSize
        let failure: any Error
        switch await handle(runnable, claimNext: claimNext) {
        case .success(let next): return (next, claimNext > 0 && next.isEmpty)
        case .failure(let error): failure = error
        }
        guard runnable.count > 1 else {
            await fail(runnable[0], failure)
            return ([], false)
        }
        logger.debug("batch failed; handling its events one by one", metadata: ["error": "\(DatabaseErrorText.describe(failure))"])
        for delivery in runnable {
            if case .failure(let failure) = await handle([delivery], claimNext: 0) { await fail(delivery, failure) }
        }
        return ([], false)
    }

    /// Commits the handler's transaction, without waiting for the flush if the handler allowed it and no
    /// statement of its own has set that already (``BusTransaction/commitAsynchronously()``).
    private func commit(_ transaction: BusTransaction, on connection: PostgresConnection) async throws {
        if transaction.needsAsynchronousCommitSetting {
            try await connection.query("SET LOCAL synchronous_commit = off", logger: logger)
        }
        try await connection.query("COMMIT", logger: logger)
    }

    /// Runs the handler and the acknowledgement in one transaction, which also claims up to `claimNext` further
    /// deliveries; returns those, or the failure. The transaction begins only if the handler uses it; otherwise
    /// the acknowledgement is a statement of its own.
    private func handle(_ batch: [ClaimedDelivery], claimNext: Int) async -> Result<[ClaimedDelivery], any Error> {
        let events = batch.map(\.event)
        let start = ContinuousClock.now
        let acknowledgement = DeliveryStatements.AcknowledgeParameters(
            deliveryIds: batch.map(\.deliveryId),
            token: batch[0].leaseToken,
            owner: bus.instanceName,
            subscription: subscription.name,
            limit: claimNext,
            nextToken: UUID(),
            leaseSeconds: subscription.lease.seconds
        )
        let committed = CommittedHandling()
        do {
            let next: [ClaimedDelivery]
            do {
                next = try await bus.client.withOpenConnection { [self] connection in
                    let (topics, next) = try await handleAndCommit(events, acknowledgement: acknowledgement, on: connection)
                    committed.record(topics: topics, next: next)
                    // Still holding the connection that committed: the wake-up goes out on it without a hop.
                    await bus.notifier.committed(topics: topics, on: connection)
                    return next
                }
            } catch let error as ClosedConnectionError {
                // The connection closed after the commit, while the wake-up was being sent: the handling stands, and
                // the notifier's loop sends the wake-up on another connection.
                guard let recorded = committed.recorded else { throw error }
                bus.notifier.committed(topics: recorded.topics)
                next = recorded.next
            }
            metrics.handled.increment(by: batch.count)
            metrics.duration.record(duration: ContinuousClock.now - start)
            return .success(next)
        } catch {
            let error = (error as? PostgresTransactionError)?.closureError ?? error
            return .failure(HandlingOutcome(raisedBy: error) ?? error)
        }
    }

    /// Runs the handler and the acknowledgement on `connection` and commits them; returns the topics published and
    /// the deliveries claimed next.
    private func handleAndCommit(
        _ events: [ReceivedEvent],
        acknowledgement: DeliveryStatements.AcknowledgeParameters,
        on connection: PostgresConnection
    ) async throws -> (Set<String>, [ClaimedDelivery]) {
        let transaction = BusTransaction(
            connection: connection,
            logger: logger,
            begun: false,
            defersPublishes: true,
            acknowledgement: acknowledgement
        )
        do {
            try await handler(events, transaction)
            if let acknowledged = transaction.acknowledgedInStatement {
                // A statement of the handler's acknowledged the events. Outside a transaction it committed
                // them on its own; inside one, the handler's publishes join it and it commits now.
                if transaction.hasBegun {
                    for publish in transaction.takeDeferredPublishes() {
                        try await DeliveryStore.publish(
                            publish.envelopes,
                            deliverAt: publish.deliverAt,
                            on: connection,
                            logger: logger
                        )
                    }
                    try await commit(transaction, on: connection)
                }
                return (transaction.publishedTopics, acknowledged.claimedNext ?? [])
            }
            // Events to be visible at once go with the acknowledgement; delayed ones are written first.
            var published: [EventEnvelope] = []
            for publish in transaction.takeDeferredPublishes() {
                guard let deliverAt = publish.deliverAt else {
                    published += publish.envelopes
                    continue
                }
                try await DeliveryStore.publish(
                    publish.envelopes,
                    deliverAt: deliverAt,
                    on: try await transaction.connection,
                    logger: logger
                )
            }
            let acknowledged: DeliveryStore.Acknowledgement
            do {
                acknowledged = try await DeliveryStore.acknowledge(
                    acknowledgement,
                    publishing: published,
                    on: connection,
                    logger: logger
                )
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "25P02" {
                throw HandlingOutcome.unreadStatementFailure
            }
            guard transaction.hasBegun else {
                // Nothing was written before: the acknowledgement, with any events the handler published,
                // committed on its own. What it could not acknowledge (a lease taken over, a duplicate) is
                // another delivery's to handle, and then it published nothing.
                if acknowledged.deleted < events.count {
                    logger.warning("lease lost before acknowledgement; the new owner handles the event")
                }
                return (transaction.publishedTopics, acknowledged.next)
            }
            if acknowledged.deleted < events.count { throw HandlingOutcome.leaseLost }
            if acknowledged.recorded < acknowledged.deleted { throw HandlingOutcome.duplicate }
            try await commit(transaction, on: connection)
            return (transaction.publishedTopics, acknowledged.next)
        } catch {
            if transaction.hasBegun { _ = try? await connection.query("ROLLBACK", logger: logger) }
            throw error
        }
    }

    private func fail(_ delivery: ClaimedDelivery, _ error: any Error) async {
        let event = delivery.event
        let metadata: Logger.Metadata = [
            "bus.event.id": "\(event.id)", "bus.event.type": "\(event.type)", "bus.attempt": "\(event.attempt)",
            "error": "\(DatabaseErrorText.describe(error))",
        ]
        switch error {
        case HandlingOutcome.leaseLost:
            logger.warning("lease lost before acknowledgement; the new owner handles the event", metadata: metadata)
            return
        case HandlingOutcome.duplicate:
            metrics.duplicates.increment()
            await ignoringFailure("drop duplicate") {
                try await store.dropDuplicates(deliveryIds: [delivery.deliveryId], token: delivery.leaseToken)
            }
            return
        default:
            break
        }
        metrics.failures.increment()
        let message = "attempt \(event.attempt): \(DatabaseErrorText.describe(error))"
        if let permanent = error as? any PermanentHandlerError {
            await deadLetter(delivery, reason: "permanent failure: \(permanent)", error: message)
        } else if event.attempt >= subscription.maxAttempts {
            await deadLetter(delivery, reason: "gave up after \(event.attempt) attempts", error: message)
        } else {
            let delay = subscription.retry.delay(afterAttempt: event.attempt)
            logger.info("handler failed; will retry", metadata: metadata.merging(["bus.retry.in": "\(delay)"]) { $1 })
            await ignoringFailure("schedule retry") {
                try await store.retryLater(
                    deliveryId: delivery.deliveryId,
                    token: delivery.leaseToken,
                    after: delay,
                    error: message
                )
            }
        }
    }

    private func deadLetter(_ delivery: ClaimedDelivery, reason: String, error: String) async {
        logger.error(
            "event moved to dead letters",
            metadata: [
                "bus.event.id": "\(delivery.event.id)", "bus.event.type": "\(delivery.event.type)",
                "bus.attempt": "\(delivery.event.attempt)", "bus.dead_letter.reason": "\(reason)",
            ]
        )
        await ignoringFailure("dead-letter") {
            if try await store.deadLetter(
                deliveryId: delivery.deliveryId,
                token: delivery.leaseToken,
                reason: reason,
                error: error
            ) {
                metrics.deadLettered.increment()
            }
        }
    }

    /// Bookkeeping that fails (database gone) is safe to drop: the lease expires and the event is claimed again.
    private func ignoringFailure(_ what: String, _ body: () async throws -> Void) async {
        do { try await body() } catch {
            logger.warning("\(what) failed; the lease will expire", metadata: ["error": "\(DatabaseErrorText.describe(error))"])
        }
    }
}

/// A lease this consumer holds, and since when.
private struct Lease: Sendable {
    var token: UUID
    var claimedAt: ContinuousClock.Instant
}

/// Why an acknowledgement did not go through.
enum HandlingOutcome: Error, CustomStringConvertible {
    /// Another consumer took the lease over; this transaction must not commit.
    case leaseLost
    /// The event was handled by another delivery of the same id meanwhile.
    case duplicate
    /// A statement of the handler failed, but the handler returned as if it had not: PostgresNIO reports an error
    /// that comes while a statement runs only to whoever reads its rows.
    case unreadStatementFailure

    /// The outcome a handler's statement reported by raising it from its acknowledgement
    /// (``StatementAcknowledgement``), if `error` is that.
    init?(raisedBy error: any Error) {
        switch (error as? PSQLError)?.serverInfo?[.sqlState] {
        case StatementAcknowledgement.leaseLostState: self = .leaseLost
        case StatementAcknowledgement.alreadyHandledState: self = .duplicate
        default: return nil
        }
    }

    var description: String {
        switch self {
        case .leaseLost: "lease lost before acknowledgement"
        case .duplicate: "the event was handled meanwhile"
        case .unreadStatementFailure:
            "a statement of the handler failed and the handler did not read its error, so the transaction was "
                + "aborted (SQLSTATE 25P02); read every query's rows (`for try await row in rows`) to get the error"
        }
    }
}

/// What a handling committed, kept in case its connection closes before the handling is done with it.
private final class CommittedHandling: Sendable {
    private let state = Mutex<(topics: Set<String>, next: [ClaimedDelivery])?>(nil)

    func record(topics: Set<String>, next: [ClaimedDelivery]) { state.withLock { $0 = (topics, next) } }

    var recorded: (topics: Set<String>, next: [ClaimedDelivery])? { state.withLock { $0 } }
}
