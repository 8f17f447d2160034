import EmbeddedPostgres

extension EmbeddedPostgres {
    /// Server settings `bench bus` runs with, as docs/bus.md recommends for a server that carries a busy bus.
    ///
    /// The autovacuum launcher looks at each database once per `autovacuum_naptime` (a minute by default), which
    /// is far too rarely for a queue that turns over thousands of rows a second: dead index entries pile up at the
    /// head of the claim index and every claim walks past them. Both the limit and the bus run on this setting.
    /// `bench system` does not use it: there the queues stay short, and a worker launched every second across the
    /// server's databases cost the saturated two cores more than it saved (measured: p50 1.5–2.1 s against
    /// 0.06–0.47 s at 100 orders/s).
    static let queueSettings = ["autovacuum_naptime": "1s"]
}
