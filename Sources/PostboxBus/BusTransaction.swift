public import Foundation
public import Logging
public import PostgresNIO
import Synchronization

/// A database transaction in which business writes and bus publishes commit or roll back together.
///
/// Handlers receive one; producers get one from ``MessageBus/withTransaction(_:)``. Use ``connection`` for the
/// business writes and ``publish(_:deliverAt:)`` for events. Wake-ups for consumers are sent after the commit,
/// never inside the transaction. Use it from one task at a time, as any transaction.
///
/// In a handler the transaction begins when it is first needed — the first `await transaction.connection` — so a
/// handler that writes nothing is acknowledged in one statement, without BEGIN and COMMIT, and one that calls the
/// outside world before it writes does not hold a transaction open meanwhile. A handler's publishes (those to be
/// visible at once) are written by its acknowledgement statement, and only if that acknowledges the event: a
/// handler that only publishes commits in that one statement. A handler whose write is one statement can also
/// acknowledge in it (``acknowledgeInStatement(_:)``): that statement is then the whole transaction.
public final class BusTransaction: Sendable {
    private struct State {
        var begun: Bool
        var topics: Set<String> = []
        /// A handler's publishes, held for its acknowledgement (see ``init(connection:logger:begun:defersPublishes:acknowledgement:)``).
        var deferred: [(envelopes: [EventEnvelope], deliverAt: Date?)] = []
        /// The acknowledgement a statement of the handler's made (see ``acknowledgeInStatement(_:)``).
        var statementAcknowledgement: StatementAcknowledgement?
        /// Whether that statement ran outside a transaction, and so committed on its own.
        var committedByStatement = false
        /// Whether the handler let the transaction commit without waiting for the flush (``commitAsynchronously()``).
        var commitsAsynchronously = false
    }

    private let underlying: PostgresConnection
    /// The logger to pass to your queries.
    public let logger: Logger
    private let state: Mutex<State>
    private let defersPublishes: Bool
    /// What an acknowledgement of the handler's events binds; nil outside a consumer.
    private let acknowledgement: DeliveryStatements.AcknowledgeParameters?

    /// - Parameters:
    ///   - begun: Whether the caller has begun the transaction already; if not, it begins on first use.
    ///   - defersPublishes: Whether publishes are held until the caller takes them (``takeDeferredPublishes()``)
    ///     instead of being written at once. A consumer writes them with the acknowledgement, in one statement.
    ///   - acknowledgement: In a consumer, what the acknowledgement of the handler's events binds.
    init(
        connection: PostgresConnection,
        logger: Logger,
        begun: Bool = true,
        defersPublishes: Bool = false,
        acknowledgement: DeliveryStatements.AcknowledgeParameters? = nil
    ) {
        self.underlying = connection
        self.logger = logger
        self.state = Mutex(State(begun: begun))
        self.defersPublishes = defersPublishes
        self.acknowledgement = acknowledgement
    }

    /// The transaction's connection: run your own statements on it. Asking for it begins the transaction.
    public var connection: PostgresConnection {
        get async throws {
            if try state.withLock({ state in
                if state.committedByStatement { throw StatementAcknowledgementError.writeAfterCommittedAcknowledgement }
                defer { state.begun = true }
                return !state.begun
            }) {
                try await underlying.query("BEGIN", logger: logger)
            }
            return underlying
        }
    }

    /// Whether the transaction has begun (always, for a producer's).
    var hasBegun: Bool { state.withLock { $0.begun } }

    /// Publishes events in this transaction; with `deliverAt`, they become visible to consumers only then.
    public func publish(_ envelopes: [EventEnvelope], deliverAt: Date? = nil) async throws {
        guard !defersPublishes else {
            try state.withLock { state in
                if state.committedByStatement { throw StatementAcknowledgementError.writeAfterCommittedAcknowledgement }
                state.deferred.append((envelopes, deliverAt))
                state.topics.formUnion(envelopes.map(\.type))
            }
            return
        }
        try await DeliveryStore.publish(envelopes, deliverAt: deliverAt, on: connection, logger: logger)
        state.withLock { $0.topics.formUnion(envelopes.map(\.type)) }
    }

    /// Runs `body` with the connection and the acknowledgement of the handler's events, for a handler whose write
    /// is one statement that acknowledges them too (see ``StatementAcknowledgement``): one round trip instead of
    /// BEGIN, the write, the acknowledgement and COMMIT. Returns what `body` returns.
    ///
    /// If the transaction has not begun, the statement runs on its own and commits the write with the
    /// acknowledgement; the handler may not write or publish after it (that throws). If it has begun, or the
    /// handler published before (its publishes then begin it), the statement runs inside it and the consumer
    /// commits after the handler returns. Either way the statement rolls back when the acknowledgement raises (the
    /// lease lost, or a duplicate), and the consumer then treats the attempt as it treats those.
    ///
    /// Only a consumer's handler can call it, once per handling; `body` must hand the call's result back to
    /// ``StatementAcknowledgement/recordResult(_:)`` or the attempt fails.
    public func acknowledgeInStatement<Result>(
        _ body: (PostgresConnection, StatementAcknowledgement) async throws -> Result
    ) async throws -> Result {
        guard let acknowledgement else { throw StatementAcknowledgementError.notInHandler }
        let (statementAcknowledgement, mustBegin) = try state.withLock { state in
            guard state.statementAcknowledgement == nil else { throw StatementAcknowledgementError.alreadyAcknowledged }
            let statementAcknowledgement = StatementAcknowledgement(
                parameters: acknowledgement,
                commitsSynchronously: !state.commitsAsynchronously
            )
            state.statementAcknowledgement = statementAcknowledgement
            return (statementAcknowledgement, !state.begun && !state.deferred.isEmpty)
        }
        // Publishes held so far must commit with the acknowledgement: they go into a transaction the consumer commits.
        if mustBegin { _ = try await connection }
        let result = try await body(underlying, statementAcknowledgement)
        guard statementAcknowledgement.claimedNext != nil else { throw StatementAcknowledgementError.resultNotRecorded }
        // Outside a transaction the statement has committed; inside one (begun before it), the consumer commits.
        state.withLock { $0.committedByStatement = !$0.begun }
        return result
    }

    /// Lets the handler's transaction commit without waiting for PostgreSQL to flush it to disk
    /// (`synchronous_commit = off` for this transaction only), for a handling whose effects are all redone the same
    /// way from its event. Call it before the handler's statements; it changes nothing outside a consumer's handler.
    ///
    /// A crash of a service loses nothing either way. A crash of PostgreSQL itself (or of the machine) can lose a
    /// commit made in the last fraction of a second before it: the handler's writes, its publishes and the
    /// acknowledgement go together, so the event is then delivered and handled again as if the first handling had
    /// never happened. Every later synchronous commit flushes the log up to itself, so once anything durable was
    /// written after such a commit — a checkout, another handler's commit — that commit is durable too.
    ///
    /// Use it only when nothing outside the database acts on the handling's effects before a synchronous commit
    /// of its own: never in a handler that calls the outside world (a card processor, an email), and not when an
    /// event it publishes leads a consumer to call the outside world before committing, since a redo could decide
    /// differently (another order may take the last item). docs/bus.md, "Asynchronous commits", says more.
    ///
    /// It holds for the commit the consumer makes after the handler returns and for ``acknowledgeInStatement(_:)``
    /// called after it. A handler that writes nothing and only publishes is acknowledged in one statement that
    /// commits synchronously.
    public func commitAsynchronously() {
        state.withLock { $0.commitsAsynchronously = true }
    }

    /// Whether the consumer's COMMIT must turn `synchronous_commit` off first: the handler asked for it and no
    /// statement of its own did so already.
    var needsAsynchronousCommitSetting: Bool {
        state.withLock { state in
            state.commitsAsynchronously && (state.statementAcknowledgement?.commitsSynchronously ?? true)
        }
    }

    /// The acknowledgement a statement of the handler's made, once its result was recorded.
    var acknowledgedInStatement: StatementAcknowledgement? {
        state.withLock { state in state.statementAcknowledgement.flatMap { $0.claimedNext == nil ? nil : $0 } }
    }

    /// Wakes the consumers of `topics` once this transaction commits, for events it published in SQL
    /// (`bus.publish_v1`, see docs/bus.md) rather than through ``publish(_:deliverAt:)``.
    public func wakeConsumersAfterCommit(of topics: Set<String>) {
        state.withLock { $0.topics.formUnion(topics) }
    }

    /// The publishes held so far, in order; they are no longer held.
    func takeDeferredPublishes() -> [(envelopes: [EventEnvelope], deliverAt: Date?)] {
        state.withLock { state in
            defer { state.deferred = [] }
            return state.deferred
        }
    }

    /// Publishes one event in this transaction.
    public func publish(_ envelope: EventEnvelope, deliverAt: Date? = nil) async throws {
        try await publish([envelope], deliverAt: deliverAt)
    }

    /// Publishes a typed event in this transaction.
    public func publish<Payload: EventPayload>(
        _ payload: Payload,
        correlationId: String? = nil,
        causationId: UUID? = nil,
        traceparent: String? = nil,
        orderingKey: String? = nil,
        deliverAt: Date? = nil
    ) async throws {
        try await publish(
            EventEnvelope(
                payload,
                correlationId: correlationId,
                causationId: causationId,
                traceparent: traceparent,
                orderingKey: orderingKey
            ),
            deliverAt: deliverAt
        )
    }

    var publishedTopics: Set<String> { state.withLock { $0.topics } }
}
