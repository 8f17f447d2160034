import Foundation
import PostboxBus
import PostgresNIO
import ServiceLifecycle
import Testing

/// The README's example, compiled and run: keep the two in step.
@Suite("README example", .timeLimit(.minutes(2)))
struct ReadmeExampleTests {
    struct OrderPlaced: EventPayload {
        static let eventType = "order.placed"
        static let eventVersion = 1
        var orderId: UUID
    }

    struct StockReserved: EventPayload {
        static let eventType = "stock.reserved"
        static let eventVersion = 1
        var orderId: UUID
    }

    @Test func anOrderPlacedInATransactionIsReservedByTheConsumer() async throws {
        try await withBus { harness in
            let bus = harness.bus
            let orderId = UUID()
            try await harness.execute("CREATE TABLE app.orders (id uuid PRIMARY KEY)")
            try await harness.execute("CREATE TABLE app.reservations (order_id uuid PRIMARY KEY)")
            try await bus.register(Subscription(name: "inventory", topics: [OrderPlaced.eventType]))
            try await bus.register(Subscription(name: "orders", topics: [StockReserved.eventType]))

            // Producer: the business write and the event commit together, or neither does.
            try await bus.withTransaction { transaction in
                try await transaction.connection.query("INSERT INTO app.orders VALUES (\(orderId))", logger: transaction.logger)
                try await transaction.publish(OrderPlaced(orderId: orderId), correlationId: "checkout-1")
            }

            // Consumer: the handler's writes and the acknowledgement commit in one transaction.
            let consumer = bus.consumer(Subscription(name: "inventory", topics: [OrderPlaced.eventType])) { event, transaction in
                let order = try event.decode(OrderPlaced.self)  // undecodable → dead letters with the reason
                try await transaction.connection.query("INSERT INTO app.reservations VALUES (\(order.orderId))", logger: transaction.logger)
                try await transaction.publish(try event.envelope.causing(StockReserved(orderId: order.orderId)))
            }

            try await harness.running([consumer]) {
                try await eventually("the reservation and its event exist") {
                    try await harness.scalar("SELECT count(*)::int FROM bus.events WHERE type = 'stock.reserved'", as: Int.self) == 1
                }
            }
            #expect(try await harness.scalar("SELECT order_id FROM app.reservations", as: UUID.self) == orderId)
            let reserved = try await harness.client.query(
                "SELECT correlation_id, causation_id FROM bus.events WHERE type = 'stock.reserved'",
                logger: testLogger
            )
            for try await (correlation, causation) in reserved.decode((String?, UUID?).self) {
                #expect(correlation == "checkout-1", "the correlation id travels to the caused event")
                #expect(causation != nil)
            }
        }
    }
}
