import Foundation
import Logging
import PostboxBus
import PostboxContracts
import PostboxService

/// How orders reacts to the flow: keep the catalogue from `product.upserted`; `stock.rejected` → rejected;
/// `payment.captured` → confirmed; `payment.failed` → cancelled; `payment.refunded` → cancelled.
///
/// Each is a guarded status change (only from the state it expects), so a duplicate changes nothing.
struct OrderEventsHandler: Sendable {
    static let subscription = Subscription(
        name: "orders",
        topics: [
            ProductUpserted.eventType, StockRejected.eventType, PaymentCaptured.eventType, PaymentFailed.eventType,
            PaymentRefunded.eventType,
        ],
        concurrency: Subscription.serviceConcurrency,
        drainTimeout: .seconds(5)
    )

    let repository: OrdersRepository
    let logger: Logger

    func handle(_ event: ReceivedEvent, in transaction: BusTransaction) async throws {
        var logger = event.logger(from: logger)
        switch event.type {
        case ProductUpserted.eventType:
            let product = try event.decode(ProductUpserted.self)
            try await repository.upsertCatalogue(product, on: transaction.connection, logger: logger)
        case StockRejected.eventType:
            let rejection = try event.decode(StockRejected.self)
            logger[metadataKey: "order.id"] = "\(rejection.orderId)"
            if try await transition(rejection.orderId, from: "pending", to: "rejected", reason: rejection.reason, in: transaction, logger: logger) {
                logger.info("order rejected", metadata: ["reason": "\(rejection.reason)"])
            }
        case PaymentCaptured.eventType:
            let payment = try event.decode(PaymentCaptured.self)
            logger[metadataKey: "order.id"] = "\(payment.orderId)"
            if try await transition(payment.orderId, from: "pending", to: "confirmed", reason: nil, in: transaction, logger: logger) {
                logger.info("order confirmed")
            }
        case PaymentFailed.eventType:
            let failure = try event.decode(PaymentFailed.self)
            logger[metadataKey: "order.id"] = "\(failure.orderId)"
            if try await transition(
                failure.orderId,
                from: "pending",
                to: "cancelled",
                reason: "payment failed: \(failure.reason)",
                in: transaction,
                logger: logger
            ) {
                logger.info("order cancelled: payment failed", metadata: ["reason": "\(failure.reason)"])
            }
        case PaymentRefunded.eventType:
            let refund = try event.decode(PaymentRefunded.self)
            logger[metadataKey: "order.id"] = "\(refund.orderId)"
            if try await transition(
                refund.orderId,
                from: "confirmed",
                to: "cancelled",
                reason: "cancelled by the customer; refunded",
                in: transaction,
                logger: logger
            ) {
                logger.info("order cancelled and refunded")
            }
        default:
            throw EventDecodingError(eventId: event.id, reason: "orders does not handle \(event.type)")
        }
    }

    /// Moves the order from `from` to `to` in one statement that also acknowledges the event: one round trip,
    /// committed on its own. False when the order was not in `from` (a duplicate or late event).
    ///
    /// The commit does not wait for the flush to disk: a status change is redone the same from its event if a
    /// crash of PostgreSQL loses it, and nothing outside the database acts on it (docs/bus.md, "Asynchronous
    /// commits").
    private func transition(
        _ orderId: UUID,
        from: String,
        to: String,
        reason: String?,
        in transaction: BusTransaction,
        logger: Logger
    ) async throws -> Bool {
        transaction.commitAsynchronously()
        return try await transaction.acknowledgeInStatement { connection, acknowledgement in
            try await repository.transition(
                orderId: orderId,
                from: [from],
                to: to,
                reason: reason,
                acknowledging: acknowledgement,
                on: connection,
                logger: logger
            )
        }
    }
}
