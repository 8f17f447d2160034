import Foundation
public import Logging
public import PostgresNIO
import Synchronization

/// The acknowledgement of the events a handler is handling, as SQL its own statement calls, so that the handler's
/// write and the acknowledgement commit in one round trip; get one from ``BusTransaction/acknowledgeInStatement(_:)``.
///
/// Put the call in the statement (``call(firstParameter:)`` with ``appendBindings(to:)`` for a prepared
/// statement, or interpolate the acknowledgement into a `PostgresQuery`), select its result in the row the
/// statement returns, and hand that result back with ``recordResult(_:)``:
///
/// ```sql
/// WITH o AS (UPDATE orders.orders SET status = $1 WHERE id = $2 AND status = 'pending' RETURNING 1)
/// SELECT (SELECT count(*) FROM o)::int, bus.acknowledge_in_statement_v2($3::bigint[], …)  -- StatementAcknowledgement.call(firstParameter: 3)
/// ```
///
/// The call acknowledges the events and records them as handled, or raises (SQLSTATE ``leaseLostState`` when
/// another consumer has taken the lease over, ``alreadyHandledState`` for a duplicate), which fails the statement
/// and rolls back the handler's write with it. The statement must call it exactly once and return its result
/// (text): a statement that returns no row never acknowledges, and the bus then treats the attempt as failed.
public final class StatementAcknowledgement: Sendable {
    /// The SQLSTATE the call raises when the lease on the events was lost (the event is another consumer's now).
    public static let leaseLostState = "PB001"
    /// The SQLSTATE the call raises when the subscription had already handled the event (a duplicate).
    public static let alreadyHandledState = "PB002"
    /// How many parameters ``call(firstParameter:)`` takes, from the one it starts at.
    public static let parameterCount = DeliveryRoutines.acknowledgeInStatement.parameterTypes.count

    /// The function call for a statement's SQL, its eight parameters numbered from `firstParameter`.
    public static func call(firstParameter: Int) -> String {
        let arguments = DeliveryRoutines.acknowledgeInStatement.parameterTypes.enumerated().map {
            "$\(firstParameter + $0.offset)::\($0.element)"
        }
        return "\(DeliveryRoutines.acknowledgeInStatement.name)(\(arguments.joined(separator: ", ")))"
    }

    private let parameters: DeliveryStatements.AcknowledgeParameters
    /// Whether the statement's transaction waits for its commit to be flushed (see
    /// ``BusTransaction/commitAsynchronously()``).
    let commitsSynchronously: Bool
    private let claimed = Mutex<[ClaimedDelivery]?>(nil)

    init(parameters: DeliveryStatements.AcknowledgeParameters, commitsSynchronously: Bool) {
        self.parameters = parameters
        self.commitsSynchronously = commitsSynchronously
    }

    /// The call's eight values, in the order of its parameters.
    private var values: [any PostgresDynamicTypeEncodable & Sendable] {
        [
            parameters.deliveryIds, parameters.token, parameters.owner, parameters.subscription, parameters.limit,
            parameters.nextToken, parameters.leaseSeconds, commitsSynchronously,
        ]
    }

    /// Appends the call's eight values, in order, to a prepared statement's bindings.
    public func appendBindings(to bindings: inout PostgresBindings) {
        for value in values { bindings.append(value) }
    }

    /// Acknowledges in a statement of its own, for a handler that found nothing to write after all (a duplicate
    /// it recognised, say); records the result.
    public func acknowledge(on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query("SELECT \(self)", logger: logger)
        for try await result in rows.decode(String.self) { try recordResult(result) }
    }

    /// Hands back what the call returned in the statement's row: the events are then acknowledged, and the
    /// deliveries the call claimed next are the consumer's to handle. Throws if `result` is not the call's.
    public func recordResult(_ result: String) throws {
        let rows: [ClaimedRow]
        do {
            rows = try JSONDecoder().decode([ClaimedRow].self, from: Data(result.utf8))
        } catch {
            throw StatementAcknowledgementError.unreadableResult(result)
        }
        let next = rows.map { $0.delivery(subscription: parameters.subscription, token: parameters.nextToken) }
        claimed.withLock { $0 = next }
    }

    /// The deliveries the call claimed next, once its result was recorded; nil before.
    var claimedNext: [ClaimedDelivery]? { claimed.withLock { $0 } }

    /// A delivery the call claimed, as it encodes it.
    private struct ClaimedRow: Decodable {
        var id: Int64
        var attempts: Int
        var tookOver: Bool
        var handled: Bool
        var eventId: UUID
        var type: String
        var version: Int
        var occurredAt: Double
        var publishedAt: Double
        var correlationId: String?
        var causationId: UUID?
        var traceparent: String?
        var orderingKey: String?
        var payload: String

        func delivery(subscription: String, token: UUID) -> ClaimedDelivery {
            let envelope = EventEnvelope(
                id: eventId,
                type: type,
                version: version,
                occurredAt: Date(timeIntervalSince1970: occurredAt),
                correlationId: correlationId,
                causationId: causationId,
                traceparent: traceparent,
                orderingKey: orderingKey,
                payload: payload
            )
            return ClaimedDelivery(
                event: ReceivedEvent(
                    envelope: envelope,
                    subscription: subscription,
                    attempt: attempts,
                    publishedAt: Date(timeIntervalSince1970: publishedAt),
                    deliveryId: id
                ),
                leaseToken: token,
                tookOverLease: tookOver,
                alreadyHandled: handled
            )
        }
    }
}

extension PostgresQuery.StringInterpolation {
    /// Interpolates the acknowledgement's function call, its values bound as parameters.
    public mutating func appendInterpolation(_ acknowledgement: StatementAcknowledgement) {
        acknowledgement.interpolateCall(into: &self)
    }
}

extension StatementAcknowledgement {
    fileprivate func interpolateCall(into interpolation: inout PostgresQuery.StringInterpolation) {
        let routine = DeliveryRoutines.acknowledgeInStatement
        interpolation.appendLiteral("\(routine.name)(")
        for (index, (value, type)) in zip(values, routine.parameterTypes).enumerated() {
            interpolation.appendLiteral(index == 0 ? "" : ", ")
            interpolation.appendInterpolation(value)
            interpolation.appendLiteral("::\(type)")
        }
        interpolation.appendLiteral(")")
    }
}

/// A misuse of ``StatementAcknowledgement`` or ``BusTransaction/acknowledgeInStatement(_:)``.
public enum StatementAcknowledgementError: Error, CustomStringConvertible {
    /// Only a consumer's handler has an event to acknowledge.
    case notInHandler
    /// The handler asked for a second acknowledgement of the same events.
    case alreadyAcknowledged
    /// The handler's statement ran, but no result of the call was handed back to ``StatementAcknowledgement/recordResult(_:)``.
    case resultNotRecorded
    /// What was handed back is not the call's result.
    case unreadableResult(String)
    /// The statement acknowledged the events and committed on its own: later writes and publishes of the handler
    /// would not be atomic with it.
    case writeAfterCommittedAcknowledgement

    /// What went wrong and what to do instead.
    public var description: String {
        switch self {
        case .notInHandler:
            "only a consumer's handler can acknowledge its events in a statement"
        case .alreadyAcknowledged:
            "the events were already acknowledged in a statement; call acknowledgeInStatement once per handling"
        case .resultNotRecorded:
            "the handler's statement did not hand back the acknowledgement's result (recordResult): "
                + "call the acknowledgement in the statement, return its result in the row, and record it"
        case .unreadableResult(let result):
            "not an acknowledgement's result: \(result.prefix(80))"
        case .writeAfterCommittedAcknowledgement:
            "the events were acknowledged by a statement that committed on its own; write and publish in that "
                + "statement (bus.publish_v1) or begin the transaction (transaction.connection) before it"
        }
    }
}
