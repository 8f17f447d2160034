@testable import PostboxBus
import Testing

@Suite("Notification channels")
struct NotificationChannelTests {
    @Test func aPlainTopicKeepsItsNameAfterThePrefix() {
        #expect(NotificationChannel.name(prefix: "postbox_bus", topic: "order.placed") == "postbox_bus.order.placed")
    }

    @Test func aTopicThatCannotBeAPlainChannelNameIsHashedToAStableFittingName() {
        let odd = #"order "placed"; DROP"#
        let long = String(repeating: "inventory.", count: 10)
        for topic in [odd, long, ""] {
            let name = NotificationChannel.name(prefix: "postbox_bus", topic: topic)
            #expect(name.utf8.count <= 63, "\(name)")
            #expect(!name.contains("\""), "\(name)")
            #expect(name == NotificationChannel.name(prefix: "postbox_bus", topic: topic), "stable")
        }
        #expect(NotificationChannel.name(prefix: "p", topic: odd) != NotificationChannel.name(prefix: "p", topic: long))
    }
}
