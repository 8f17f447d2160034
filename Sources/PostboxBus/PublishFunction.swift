public import PostgresNIO

/// `bus.publish_v1`, the SQL function that publishes one event from inside any statement or transaction.
///
/// ``MessageBus/publish(_:deliverAt:)`` and ``BusTransaction/publish(_:deliverAt:)`` bind an event built in Swift.
/// This function lets a statement of your own publish what it computed, in the same round trip: for example an
/// order whose lines and prices the statement has just read, with its event's body built by `jsonb_build_object`.
/// It inserts the event (an id that exists is skipped) and one delivery, visible at once, for each subscription of
/// its type, and returns whether the event was new.
///
/// ```sql
/// SELECT bus.publish_v1(id, type, version, occurred_at, correlation_id, causation_id, traceparent,
///                       ordering_key, payload)   -- uuid, text, int, timestamptz, text, uuid, text, text, jsonb
/// ```
///
/// The wake-up is the caller's: after the commit, call ``MessageBus/wakeConsumers(of:on:)`` while still holding the
/// connection, or ``MessageBus/wakeConsumers(of:)`` (or, inside ``MessageBus/withTransaction(_:)``,
/// ``BusTransaction/wakeConsumersAfterCommit(of:)``); without it, consumers find the event at their next poll.
///
/// For a prepared statement, ``call(firstParameter:)`` gives the call with numbered parameters and
/// ``appendBindings(of:to:)`` binds an envelope's fields to them.
public enum PublishFunction {
    static let name = "bus.publish_v1"

    /// The parameters' types, in order.
    static let parameterTypes = ["uuid", "text", "int", "timestamptz", "text", "uuid", "text", "text", "jsonb"]

    /// How many parameters ``call(firstParameter:)`` takes, from the one it starts at.
    public static let parameterCount = parameterTypes.count

    /// The function call for a statement's SQL, its nine parameters numbered from `firstParameter`.
    public static func call(firstParameter: Int) -> String {
        let arguments = parameterTypes.enumerated().map { "$\(firstParameter + $0.offset)::\($0.element)" }
        return "\(name)(\(arguments.joined(separator: ", ")))"
    }

    /// Appends `envelope`'s fields, in the call's order, to a prepared statement's bindings.
    public static func appendBindings(of envelope: EventEnvelope, to bindings: inout PostgresBindings) {
        bindings.append(envelope.id)
        bindings.append(envelope.type)
        bindings.append(envelope.version)
        bindings.append(envelope.occurredAt)
        bindings.append(envelope.correlationId)
        bindings.append(envelope.causationId)
        bindings.append(envelope.traceparent)
        bindings.append(envelope.orderingKey)
        bindings.append(envelope.payload)
    }

    /// Installed by migration 5.
    static let definition = """
        CREATE FUNCTION \(name)(
            id uuid, type text, version int, occurred_at timestamptz, correlation_id text, causation_id uuid,
            traceparent text, ordering_key text, payload jsonb)
        RETURNS boolean
        LANGUAGE plpgsql
        AS $publish$
        #variable_conflict use_column
        DECLARE
            published boolean;
        BEGIN
            WITH e AS (
                INSERT INTO bus.events (id, type, version, occurred_at, correlation_id, causation_id, traceparent,
                    ordering_key, payload)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT DO NOTHING
                RETURNING 1),
            d AS (
                INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
                SELECT s.subscription, $1, $8, now()
                FROM bus.subscriptions s
                WHERE s.topic = $2 AND EXISTS (SELECT 1 FROM e)
                ORDER BY s.subscription)
            SELECT EXISTS (SELECT 1 FROM e) INTO published;
            RETURN published;
        END
        $publish$
        """
}
