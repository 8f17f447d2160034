import Foundation
import PostboxBus
import PostboxContracts
import PostboxHarness
import PostgresNIO

/// The bus misbehaves on purpose: duplicates, poison and future-version events, delayed events.
enum BusScenarios {
    static let all: [Scenario] = [duplicateDelivery, poisonEvent, newerProducerVersion, delayedDelivery]

    static let duplicateDelivery = Scenario(
        "duplicate-delivery",
        story: """
            After an order is confirmed, every event of its flow is delivered once more to every subscriber, as after \
            a lost acknowledgement. Each subscription's inbox recognises the event ids: nothing is reserved, charged, \
            taken or confirmed twice.
            """,
        faults: ["a second delivery of order.placed, stock.reserved and payment.captured to each subscriber"],
        checks: ["each subscription handled each event once", "stock, payments and ledger unchanged"]
    ) { context in
        try await context.standardSystem()
        let (id, _) = try await context.order(quantity: 2, expecting: "confirmed")
        let system = context.system
        var added = 0
        for (type, subscriptions) in [
            ("order.placed", ["inventory"]), ("stock.reserved", ["payments"]), ("payment.captured", ["orders", "inventory"]),
        ] {
            for subscription in subscriptions { added += try await system.duplicateDeliveries(ofType: type, to: subscription) }
        }
        try context.expect(added == 4, "added \(added) duplicate deliveries")
        try await system.quiesce()
        for (subscription, type) in [("inventory", "order.placed"), ("payments", "stock.reserved"), ("inventory", "payment.captured")] {
            try context.expect(try await system.handledCount(subscription, type: type) == 1, "\(subscription) handled \(type) once")
        }
        try await context.expectStock((8, 0), "stock taken once")
        try context.expect(try await context.charges(for: id) == 1, "one charge")
    }

    static let poisonEvent = Scenario(
        "poison-event",
        story: """
            A producer bug publishes a product.upserted whose price is a string. Orders cannot decode it: the event \
            goes to dead letters with the reason, at once, instead of blocking the consumer — other orders flow on. \
            An operator corrects the stored event and replays the dead letter; orders then handles it.
            """,
        faults: ["publish an undecodable product.upserted", "correct it and replay from dead letters"],
        checks: [
            "dead-lettered by orders with a decoding reason", "an order confirmed meanwhile", "after replay: in orders' catalogue, no dead letters",
        ]
    ) { context in
        try await context.standardSystem()
        let poison = EventEnvelope(
            type: ProductUpserted.eventType,
            version: 1,
            orderingKey: "lamp",
            payload: #"{"sku":"lamp","name":"Lamp","priceCents":"forty","revision":1}"#
        )
        try await context.system.publish([poison])
        var dead: [DeadLetter] = []
        try await eventually("the poison event in dead letters") {
            dead = try await context.system.deadLetters()
            return dead.count == 1
        }
        try context.expect(dead.first?.subscription == "orders", "dead-lettered by \(dead.first?.subscription ?? "?")")
        try context.expect(dead.first?.reason.contains("cannot decode") == true, "reason: \(dead.first?.reason ?? "")")
        try context.expect((dead.first?.attempts ?? 0) == 1, "dead-lettered at the first attempt")
        try await context.order(expecting: "confirmed")
        _ = try await context.system.withDatabase { db in
            try await db.query(
                """
                UPDATE bus.events SET payload = '{"sku":"lamp","name":"Lamp","priceCents":4000,"revision":1}'::jsonb
                WHERE id = \(poison.id)
                """,
                logger: PostboxSystem.logger
            )
        }
        context.system.record("harness", "corrected the poison event's payload")
        try context.expect(try await context.system.replayDeadLetters() == 1, "replayed one")
        try await eventually("lamp in orders' catalogue") {
            try await context.system.scalar("SELECT price_cents::int FROM orders.catalogue WHERE sku = 'lamp'", as: Int.self) == 4000
        }
    }

    static let newerProducerVersion = Scenario(
        "newer-producer-version",
        story: """
            A newer inventory publishes product.upserted with fields orders does not know: orders ignores them and \
            updates its catalogue. Another producer publishes version 2 of the event, which orders declares it cannot \
            read: that event is dead-lettered with the reason, and nothing else is affected.
            """,
        faults: ["product.upserted v1 with unknown extra fields", "product.upserted v2"],
        checks: ["the v1 event handled, extra fields ignored", "the v2 event dead-lettered: unsupported version"],
        expectedDeadLetters: 1
    ) { context in
        try await context.standardSystem()
        let extra = EventEnvelope(
            type: ProductUpserted.eventType,
            version: 1,
            orderingKey: "lamp",
            payload: #"{"sku":"lamp","name":"Lamp","priceCents":4000,"revision":1,"colour":"red","dimensions":{"h":30}}"#
        )
        let future = EventEnvelope(
            type: ProductUpserted.eventType,
            version: 2,
            orderingKey: "vase",
            payload: #"{"sku":"vase","title":"Vase","price":{"cents":900}}"#
        )
        try await context.system.publish([extra, future])
        try await eventually("lamp in orders' catalogue") {
            try await context.system.scalar("SELECT price_cents::int FROM orders.catalogue WHERE sku = 'lamp'", as: Int.self) == 4000
        }
        var dead: [DeadLetter] = []
        try await eventually("the v2 event in dead letters") {
            dead = try await context.system.deadLetters()
            return dead.count == 1
        }
        try context.expect(dead.first?.envelope.id == future.id, "the v2 event is the dead letter")
        try context.expect(dead.first?.reason.contains("version 2") == true, "reason: \(dead.first?.reason ?? "")")
        try await context.order(expecting: "confirmed")
    }

    static let delayedDelivery = Scenario(
        "delayed-event",
        story: """
            A product.upserted is published to become visible 1.5 s later. Orders does not see it before then, and \
            handles it once it is due — without polling in between (the consumer sleeps until the next due time).
            """,
        faults: ["a product.upserted delivered 1.5 s after publishing"],
        checks: ["not in the catalogue before it is due", "in the catalogue after"]
    ) { context in
        try await context.standardSystem()
        let event = try EventEnvelope(ProductUpserted(sku: "clock", name: "Clock", priceCents: 3000, revision: 1), orderingKey: "clock")
        let publishedAt = Date()
        try await context.system.publish([event], deliverAt: publishedAt.addingTimeInterval(1.5))
        try await eventually("clock in orders' catalogue") {
            try await context.system.scalar("SELECT count(*)::int FROM orders.catalogue WHERE sku = 'clock'", as: Int.self) == 1
        }
        let handledAt = try await context.system.scalar(
            "SELECT h.handled_at FROM bus.handled h WHERE h.event_id = \(event.id) AND h.subscription = 'orders'",
            as: Date.self
        )
        try context.expect(
            (handledAt ?? .distantPast).timeIntervalSince(publishedAt) >= 1.4,
            "handled \(handledAt.map { $0.timeIntervalSince(publishedAt) } ?? -1) s after publishing"
        )
    }
}
