import Foundation
import Logging
import PostboxBus
import PostboxContracts
import PostboxService

/// How inventory reacts to the order flow: reserve all lines or none on `order.placed` (`stock.reserved` carries the
/// order's total and payment token on to payments); take the stock on `payment.captured`; release it on
/// `payment.failed`; put it back on `payment.refunded`.
///
/// Every reaction is a guarded state change of the order's reservation, so a duplicate or a reordered event
/// changes nothing twice.
struct StockHandler: Sendable {
    static let subscription = Subscription(
        name: "inventory",
        topics: [OrderPlaced.eventType, PaymentCaptured.eventType, PaymentFailed.eventType, PaymentRefunded.eventType],
        concurrency: Subscription.serviceConcurrency,
        drainTimeout: .seconds(5)
    )

    let products: ProductRepository
    let logger: Logger

    func handle(_ event: ReceivedEvent, in transaction: BusTransaction) async throws {
        var logger = event.logger(from: logger)
        switch event.type {
        case OrderPlaced.eventType:
            let order = try event.decode(OrderPlaced.self)
            logger[metadataKey: "order.id"] = "\(order.orderId)"
            try await reserve(order, event: event, in: transaction, logger: logger)
        case PaymentCaptured.eventType:
            let payment = try event.decode(PaymentCaptured.self)
            logger[metadataKey: "order.id"] = "\(payment.orderId)"
            try await settle(payment.orderId, from: "reserved", to: "committed", reserved: -1, onHand: -1, in: transaction, logger: logger)
        case PaymentFailed.eventType:
            let payment = try event.decode(PaymentFailed.self)
            logger[metadataKey: "order.id"] = "\(payment.orderId)"
            try await settle(payment.orderId, from: "reserved", to: "released", reserved: -1, onHand: 0, in: transaction, logger: logger)
        case PaymentRefunded.eventType:
            let refund = try event.decode(PaymentRefunded.self)
            logger[metadataKey: "order.id"] = "\(refund.orderId)"
            try await settle(refund.orderId, from: "committed", to: "restocked", reserved: 0, onHand: 1, in: transaction, logger: logger)
        default:
            throw EventDecodingError(eventId: event.id, reason: "inventory does not handle \(event.type)")
        }
    }

    /// Moves the order's reservation from `from` to `to` and applies its quantities, times the signs given, to
    /// the reserved and on-hand counts; does nothing if the reservation is not in `from` (a duplicate or late event).
    private func settle(
        _ orderId: UUID,
        from: String,
        to: String,
        reserved: Int,
        onHand: Int,
        in transaction: BusTransaction,
        logger: Logger
    ) async throws {
        // One statement settles and acknowledges the event: one round trip, committed on its own. The commit does
        // not wait for the flush to disk: a settlement is redone the same from its event if a crash of PostgreSQL
        // loses it, and nothing outside the database acts on it (docs/bus.md, "Asynchronous commits"). A
        // reservation does wait: payments charges the card on its outcome, which a redo could change.
        transaction.commitAsynchronously()
        let settled = try await transaction.acknowledgeInStatement { connection, acknowledgement in
            try await products.settle(
                orderId: orderId,
                from: from,
                to: to,
                reserved: reserved,
                onHand: onHand,
                acknowledging: acknowledgement,
                on: connection,
                logger: logger
            )
        }
        guard settled else { return }
        logger.info("reservation \(to)")
    }

    /// Reserves the order's lines, publishes what came of it and acknowledges `order.placed` in one statement that
    /// commits on its own, and synchronously: payments charges the card on `stock.reserved`, and a reservation lost
    /// in a crash and redone could come out the other way (docs/bus.md, "Asynchronous commits").
    private func reserve(_ order: OrderPlaced, event: ReceivedEvent, in transaction: BusTransaction, logger: Logger) async throws {
        let reserved = try event.envelope.causing(
            StockReserved(orderId: order.orderId, totalCents: order.totalCents, paymentToken: order.paymentToken),
            orderingKey: order.orderId.uuidString
        )
        let outcome = try await transaction.acknowledgeInStatement { connection, acknowledgement in
            try await products.reserve(
                orderId: order.orderId,
                lines: order.lines,
                wanted: order.lines.quantitiesBySKU,
                publishing: reserved,
                acknowledging: acknowledgement,
                on: connection,
                logger: logger
            )
        }
        switch outcome {
        case nil:
            return
        case .reserved:
            transaction.wakeConsumersAfterCommit(of: [StockReserved.eventType])
            logger.info("stock reserved")
            CrashPoint.reached("inventory.after-reserve-commit", logger: logger)
        case .rejected(let reason):
            transaction.wakeConsumersAfterCommit(of: [StockRejected.eventType])
            logger.info("stock rejected", metadata: ["reason": "\(reason)"])
        }
    }
}
