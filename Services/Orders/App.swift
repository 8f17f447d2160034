import PostboxService

/// The `orders` executable: customers, carts, orders, and a read model of the product catalogue.
@main
struct OrdersApp {
    static func main() async {
        await ServiceMain.run(
            name: "orders",
            defaultPort: 8081,
            schema: OrdersSchema.migrator,
            readSettings: { _ in () },
            build: { context, _ in buildOrders(context) }
        )
    }
}
