import Foundation
import PostboxBus
import PostgresNIO
import Testing

@Suite("Time-ordered event ids", .timeLimit(.minutes(2)))
struct TimeOrderedIdTests {
    @Test func isAVersionSevenUUIDCarryingItsMillisecond() throws {
        let date = Date(timeIntervalSince1970: 1_764_180_000.123)
        let id = UUID.timeOrdered(at: date)
        let bytes = withUnsafeBytes(of: id.uuid) { Array($0) }
        #expect(bytes[6] >> 4 == 7)
        #expect(bytes[8] >> 6 == 0b10)
        let milliseconds = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(milliseconds == 1_764_180_000_123)
        #expect(UUID.timeOrdered(at: date) != id)
    }

    @Test func envelopesGetTimeOrderedIdsByDefault() throws {
        let envelope = try EventEnvelope(TestEvent(sequence: 1))
        #expect(envelope.id.uuidString.dropFirst(14).first == "7")
    }

    @Test func postgresSortsLaterIdsAfterEarlierOnes() async throws {
        try await withBus { harness in
            try await harness.bus.register(fastSubscription("orders"))
            let start = Date(timeIntervalSince1970: 1_764_180_000)
            let envelopes = try (0..<20).reversed().map { step in
                try EventEnvelope(
                    TestEvent(sequence: step),
                    id: .timeOrdered(at: start.addingTimeInterval(Double(step) * 0.001))
                )
            }
            try await harness.bus.publish(envelopes)
            let sorted = try await harness.scalar(
                "SELECT array_agg((payload->>'sequence')::int ORDER BY id) FROM bus.events",
                as: [Int].self
            )
            #expect(sorted == Array(0..<20))
        }
    }
}
