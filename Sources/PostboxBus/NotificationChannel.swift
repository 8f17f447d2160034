/// The LISTEN/NOTIFY channel that carries one topic's wake-ups.
///
/// One channel per topic, so a notification reaches only the processes that consume the topic. The name is the
/// bus's channel prefix, a dot and the topic when that is a plain name that fits PostgreSQL's 63-byte identifiers;
/// otherwise the topic's FNV-1a hash in hex (PostgresNIO quotes the name in `LISTEN "…"` without escaping it).
enum NotificationChannel {
    static func name(prefix: String, topic: String) -> String {
        let plain = topic.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
        let name = "\(prefix).\(topic)"
        if plain && !topic.isEmpty && name.utf8.count <= 63 { return name }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in topic.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return "\(prefix).#\(String(repeating: "0", count: 16 - hex.count))\(hex)"
    }
}
