/// What `postbox bench bus` measured around a PostgreSQL restart under load.
struct RestartRecovery: Codable, Sendable {
    /// Events handled per second before the restart: the median of eight one-second rates, after four seconds of
    /// warm-up.
    var rateBefore: Double
    /// How long `pg_ctl restart` (fast shutdown, then start) took.
    var serverRestartSeconds: Double
    /// From the restart command to the start of the first one-second window back at full throughput.
    var recoveredSeconds: Double
    /// False if throughput was not back within 60 s.
    var recovered: Bool
}
