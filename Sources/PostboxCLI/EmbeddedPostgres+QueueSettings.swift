import EmbeddedPostgres

extension EmbeddedPostgres {
    /// Server settings the benchmarks run with, as docs/bus.md recommends for a server that carries the bus.
    ///
    /// The autovacuum launcher looks at each database once per `autovacuum_naptime` (a minute by default), which
    /// is far too rarely for a queue that turns over thousands of rows a second: dead index entries pile up at the
    /// head of the claim index and every claim walks past them. Both the limit and the bus run on this setting.
    static let queueSettings = ["autovacuum_naptime": "1s"]
}
