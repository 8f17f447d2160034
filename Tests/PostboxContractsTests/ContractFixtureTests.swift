import Foundation
import PostboxBus
import PostboxContracts
import Testing

/// Each event type's versioned JSON fixture (`Fixtures/<type>.v<version>.json`) is what producers emit and what
/// consumers accept: the contract types encode exactly the fixture's fields, decode the fixture, and decode it
/// with fields they do not know. A change that breaks a consumer of the current version fails here.
@Suite("event contracts")
struct ContractFixtureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Every contract with its fixture, its round trip and its decoding through an envelope.
    struct Contract: Sendable, CustomTestStringConvertible {
        var type: String
        var version: Int
        var roundTrip: @Sendable (Data) throws -> Data
        var decodeEnvelope: @Sendable (EventEnvelope) throws -> Void
        var testDescription: String { "\(type) v\(version)" }

        init<Payload: EventPayload>(_ payload: Payload.Type) {
            type = Payload.eventType
            version = Payload.eventVersion
            roundTrip = { try JSONEncoder().encode(try JSONDecoder().decode(Payload.self, from: $0)) }
            decodeEnvelope = { _ = try $0.decode(Payload.self) }
        }
    }

    static let contracts: [Contract] = [
        Contract(ProductUpserted.self), Contract(OrderPlaced.self), Contract(StockReserved.self),
        Contract(StockRejected.self), Contract(PaymentCaptured.self), Contract(PaymentFailed.self),
        Contract(OrderCancellationRequested.self), Contract(PaymentRefunded.self),
    ]

    func fixture(_ contract: Contract) throws -> Data {
        try Data(contentsOf: Self.fixtures.appendingPathComponent("\(contract.type).v\(contract.version).json"))
    }

    func object(_ data: Data) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: data) as? NSDictionary)
    }

    @Test(arguments: contracts)
    func producersEmitTheFixture(_ contract: Contract) throws {
        let fixture = try fixture(contract)
        let emitted = try contract.roundTrip(fixture)
        #expect(try object(emitted) == object(fixture), "\(contract.type) encodes the fields of its fixture, no more, no less")
    }

    @Test(arguments: contracts)
    func consumersAcceptTheFixtureAndUnknownFields(_ contract: Contract) throws {
        let fixture = try fixture(contract)
        let plain = EventEnvelope(type: contract.type, version: contract.version, payload: String(decoding: fixture, as: UTF8.self))
        try contract.decodeEnvelope(plain)
        let extended = try object(fixture).mutableCopy() as! NSMutableDictionary
        extended["addedByANewerProducer"] = ["nested": true]
        let extra = try JSONSerialization.data(withJSONObject: extended)
        try contract.decodeEnvelope(EventEnvelope(type: contract.type, version: contract.version, payload: String(decoding: extra, as: UTF8.self)))
    }

    @Test(arguments: contracts)
    func anUnknownNewerVersionIsRefusedWithAReason(_ contract: Contract) throws {
        let fixture = try fixture(contract)
        let newer = EventEnvelope(type: contract.type, version: contract.version + 1, payload: String(decoding: fixture, as: UTF8.self))
        #expect(throws: EventDecodingError.self) { try contract.decodeEnvelope(newer) }
    }

    /// `stock.reserved` gained what to charge after it was first published; a body from before still decodes.
    @Test func aStockReservedFromBeforeItCarriedTheChargeStillDecodes() throws {
        let old = EventEnvelope(
            type: StockReserved.eventType,
            version: 1,
            payload: #"{"orderId": "6F1C2E0A-8B1D-4E37-9D0B-2B7C4D9E1A11"}"#
        )
        let reserved = try old.decode(StockReserved.self)
        #expect(reserved == StockReserved(orderId: UUID(uuidString: "6F1C2E0A-8B1D-4E37-9D0B-2B7C4D9E1A11")!))
        #expect(reserved.totalCents == nil && reserved.paymentToken == nil)
    }

    @Test func everyFixtureBelongsToAContract() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).filter { $0.hasSuffix(".json") }.sorted()
        let expected = Self.contracts.map { "\($0.type).v\($0.version).json" }.sorted()
        #expect(files == expected)
    }
}
