import Foundation
public import PostgresNIO

extension MessageBus {
    /// Settings shared by every consumer and publisher of one ``MessageBus``.
    public struct Configuration: Sendable {
        /// The LISTEN/NOTIFY channel for wake-ups; the same for every process on one database.
        public var notificationChannel: String
        /// The shortest time between two wake-up notifications this process sends. Topics committed meanwhile go
        /// together in the next one, so a busy publisher spends one statement (and every listening process one
        /// wake-up) per interval rather than per commit; a publisher quieter than this is never delayed, and
        /// consumers in the same process are always woken at once.
        public var notificationInterval: Duration
        /// Names this process in leases and in the handled history (`nil`: host name and pid).
        public var instanceName: String
        /// How long handled deliveries and their events are kept (deduplication window and history).
        public var retention: Duration
        /// How often retention runs, and how often queue gauges are refreshed.
        public var maintenanceInterval: Duration
        /// Where the LISTEN connection goes. Set it (to the same server and database as the client) so the
        /// listener keeps a connection of its own: with `nil` it borrows one from the pool, and PostgresNIO 1.33.2
        /// can hand a connection the server has closed back out of the pool, where a query never returns.
        public var listenerConnection: PostgresConnection.Configuration?

        /// Creates the settings; every one has a default.
        public init(
            notificationChannel: String = "postbox_bus",
            notificationInterval: Duration = .milliseconds(3),
            instanceName: String? = nil,
            retention: Duration = .seconds(24 * 3600),
            maintenanceInterval: Duration = .seconds(5),
            listenerConnection: PostgresConnection.Configuration? = nil
        ) {
            self.notificationChannel = notificationChannel
            self.notificationInterval = notificationInterval
            self.instanceName =
                instanceName ?? "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
            self.retention = retention
            self.maintenanceInterval = maintenanceInterval
            self.listenerConnection = listenerConnection
        }
    }
}
