import Testing

@testable import PostboxBus

/// The bus's migrations are history: a database that applied one never sees it again.
@Suite("Schema history")
struct SchemaHistoryTests {
    /// What each migration runs, fingerprinted. Migration 3's function bodies are built from the SQL in
    /// `DeliveryStatements`, so editing that SQL would change them for new databases only, and databases migrated
    /// before would keep the old bodies under the same names. If this fails, restore the old text and put the new
    /// one in a new migration, under new function names; then add its fingerprint here.
    @Test func appliedMigrationsNeverChange() {
        let fingerprints = BusSchema.migrations.map { "\($0.version): \(fnv1a($0.statements.joined(separator: "\u{0}")))" }
        #expect(
            fingerprints == [
                "1: 0880938dc3aa348b",
                "2: 3502e798cee8e97b",
                "3: 4f4af212bc36f286",
                "4: 833d9d43c323283a",
                "5: f21eb70f6ee6569b",
                "6: e90527015f88e309",
                "7: e2e492eeb324b831",
                "8: 561601b756852546",
                "9: 5af7ed5ef86633ff",
            ]
        )
    }

    /// 64-bit FNV-1a of the UTF-8 bytes, as 16 hex digits: stable across runs and platforms, unlike `Hasher`.
    private func fnv1a(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
