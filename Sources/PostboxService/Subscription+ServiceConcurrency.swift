public import PostboxBus

extension Subscription {
    /// How many handler transactions each Postbox service's consumer runs at once.
    ///
    /// A consumer handles at most `concurrency / handler time` events a second. At 100 orders/s payments receives
    /// 200 events a second, and a charge holds its transaction over the card processor's answer: with the bus's
    /// default of 4 and handlers slowed to 20–40 ms by a busy machine, its queue grew for seconds at a time
    /// (measured: 235–456 ms behind in two 60 s runs of four). Sixteen leaves room, within the pool's 20
    /// connections.
    public static let serviceConcurrency = 16
}
