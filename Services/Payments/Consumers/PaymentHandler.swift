import Foundation
import Logging
import PostboxBus
import PostboxContracts
import PostboxService

/// How payments reacts to the flow: charge the card processor on `stock.reserved`, for the total and with the
/// payment token that event carries from `order.placed` (order id as idempotency key); refund on
/// `order.cancellation-requested`.
///
/// Payments does not subscribe to `order.placed`: `stock.reserved` says what to charge, which spares a delivery per
/// order. A `stock.reserved` published before it carried the amount is charged with what an `order.placed`
/// delivered earlier recorded (an intent); such deliveries, queued before the subscription changed, are still
/// handled.
///
/// A charge reads what was paid, calls the processor, then stores the payment, publishes its event and
/// acknowledges `stock.reserved` in one statement. If the process dies after the processor answered but before
/// that statement, the event is handled again and the same idempotency key returns the same charge, so the
/// customer is charged once. While the processor is unavailable the event goes back to the bus, which retries
/// with backoff; on the last attempt payments gives up and publishes `payment.failed`.
struct PaymentHandler: Sendable {
    static let subscription = Subscription(
        name: "payments",
        topics: [StockReserved.eventType, OrderCancellationRequested.eventType],
        concurrency: Subscription.serviceConcurrency,
        maxAttempts: 5,
        drainTimeout: .seconds(5)
    )

    let repository: PaymentsRepository
    let gateway: GatewayClient
    let maxAttempts: Int
    let logger: Logger

    func handle(_ event: ReceivedEvent, in transaction: BusTransaction) async throws {
        var logger = event.logger(from: logger)
        switch event.type {
        case OrderPlaced.eventType:
            let order = try event.decode(OrderPlaced.self)
            logger[metadataKey: "order.id"] = "\(order.orderId)"
            try await repository.recordIntent(
                orderId: order.orderId,
                amountCents: order.totalCents,
                token: order.paymentToken,
                on: transaction.connection,
                logger: logger
            )
        case StockReserved.eventType:
            let reserved = try event.decode(StockReserved.self)
            logger[metadataKey: "order.id"] = "\(reserved.orderId)"
            try await charge(reserved, event: event, in: transaction, logger: logger)
        case OrderCancellationRequested.eventType:
            let request = try event.decode(OrderCancellationRequested.self)
            logger[metadataKey: "order.id"] = "\(request.orderId)"
            try await refund(orderId: request.orderId, event: event, in: transaction, logger: logger)
        default:
            throw EventDecodingError(eventId: event.id, reason: "payments does not handle \(event.type)")
        }
    }

    /// Reads what was paid, charges the processor, then stores the payment, publishes its event and acknowledges
    /// `stock.reserved` in one statement that commits on its own.
    private func charge(_ reserved: StockReserved, event: ReceivedEvent, in transaction: BusTransaction, logger: Logger) async throws {
        let orderId = reserved.orderId
        try await transaction.acknowledgeInStatement { connection, acknowledgement in
            let state = try await repository.chargeState(orderId: orderId, on: connection, logger: logger)
            if state.paid { return try await acknowledgement.acknowledge(on: connection, logger: logger) }
            let carried = reserved.totalCents.flatMap { amount in reserved.paymentToken.map { (amountCents: amount, token: $0) } }
            guard let intent = carried ?? state.intent else {
                throw RetryablePaymentError(description: "stock.reserved for order \(orderId) carries no amount, and no order.placed was seen")
            }
            let outcome = await gateway.charge(
                reference: orderId.uuidString,
                amountCents: intent.amountCents,
                token: intent.token,
                trace: event.envelope.trace,
                logger: logger
            )
            var payment = PaymentRecord(id: UUID(), orderId: orderId, amountCents: intent.amountCents, status: "failed")
            let published: any EventPayload
            switch outcome {
            case .captured(let chargeId):
                CrashPoint.reached("payments.after-charge-before-commit", logger: logger)
                payment.status = "captured"
                payment.chargeId = chargeId
                published = PaymentCaptured(orderId: orderId, paymentId: payment.id, amountCents: intent.amountCents, chargeId: chargeId)
            case .declined(let chargeId):
                payment.status = "declined"
                payment.chargeId = chargeId
                payment.reason = "declined"
                published = PaymentFailed(orderId: orderId, reason: "declined")
            case .rejected(let reason):
                payment.reason = "processor rejected the charge: \(reason)"
                published = PaymentFailed(orderId: orderId, reason: "processor-rejected")
            case .unavailable(let reason):
                guard event.attempt >= maxAttempts else {
                    throw RetryablePaymentError(description: "card processor unavailable: \(reason)")
                }
                payment.reason = "card processor unavailable after \(event.attempt) attempts: \(reason)"
                published = PaymentFailed(orderId: orderId, reason: "processor-unavailable")
            case .refunded:
                throw PermanentPaymentError(description: "the processor answered a charge with a refund")
            }
            let envelope = try event.envelope.causing(published, orderingKey: orderId.uuidString)
            try await repository.insert(payment, publishing: envelope, acknowledging: acknowledgement, on: connection, logger: logger)
            transaction.wakeConsumersAfterCommit(of: [envelope.type])
            logger.info(
                "payment \(payment.status)",
                metadata: ["payment.id": "\(payment.id)", "payment.amount_cents": "\(payment.amountCents)", "reason": "\(payment.reason ?? "")"]
            )
        }
    }

    private func refund(orderId: UUID, event: ReceivedEvent, in transaction: BusTransaction, logger: Logger) async throws {
        let connection = try await transaction.connection
        guard let payment = try await repository.payment(orderId: orderId, forUpdate: true, on: connection, logger: logger) else {
            throw PermanentPaymentError(description: "order \(orderId) has no payment to refund")
        }
        if payment.status == "refunded" { return }
        guard payment.status == "captured", let chargeId = payment.chargeId else {
            throw PermanentPaymentError(description: "order \(orderId)'s payment is \(payment.status), not captured; nothing to refund")
        }
        switch await gateway.refund(reference: orderId.uuidString, chargeId: chargeId, trace: event.envelope.trace, logger: logger) {
        case .refunded(let refundId):
            CrashPoint.reached("payments.after-refund-before-commit", logger: logger)
            try await repository.markRefunded(orderId: orderId, on: connection, logger: logger)
            try await transaction.publish(
                event.envelope.causing(
                    PaymentRefunded(orderId: orderId, paymentId: payment.id, amountCents: payment.amountCents),
                    orderingKey: orderId.uuidString
                )
            )
            logger.info("payment refunded", metadata: ["payment.id": "\(payment.id)", "refund.id": "\(refundId)"])
        case .unavailable(let reason):
            throw RetryablePaymentError(description: "card processor unavailable for the refund: \(reason)")
        case .rejected(let reason):
            throw PermanentPaymentError(description: "the processor refused the refund: \(reason)")
        case .captured, .declined:
            throw PermanentPaymentError(description: "the processor answered a refund with a charge")
        }
    }
}

/// A payment step that may succeed later (the processor is unavailable); the bus retries it with backoff.
struct RetryablePaymentError: Error, CustomStringConvertible {
    let description: String
}

/// A payment step that cannot succeed by retrying; the bus dead-letters it at once with this reason.
struct PermanentPaymentError: PermanentHandlerError, CustomStringConvertible {
    let description: String
}
