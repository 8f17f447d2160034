public import Foundation

extension UUID {
    /// A version 7 UUID (RFC 9562): the Unix time to the nearest millisecond in its first 48 bits, random bits after.
    ///
    /// Ids made later sort later, so a B-tree on them grows at its right edge, where PostgreSQL appends without
    /// descending the tree, instead of touching a random leaf per insert. Ids made in the same millisecond are
    /// not ordered among themselves.
    public static func timeOrdered(at date: Date = Date()) -> UUID {
        var generator = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, (date.timeIntervalSince1970 * 1000).rounded()))
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        func byte(_ value: UInt64, _ shift: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: value >> shift) }
        return UUID(
            uuid: (
                byte(milliseconds, 40), byte(milliseconds, 32), byte(milliseconds, 24), byte(milliseconds, 16),
                byte(milliseconds, 8), byte(milliseconds, 0),
                0x70 | (byte(high, 0) & 0x0F), byte(high, 8),
                0x80 | (byte(high, 16) & 0x3F), byte(high, 24), byte(high, 32), byte(high, 40), byte(high, 48),
                byte(high, 56), byte(low, 0), byte(low, 8)
            )
        )
    }
}
