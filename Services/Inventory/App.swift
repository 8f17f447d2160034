import PostboxService

/// The `inventory` executable: products, stock and reservations.
@main
struct InventoryApp {
    static func main() async {
        await ServiceMain.run(
            name: "inventory",
            defaultPort: 8082,
            schema: InventorySchema.migrator,
            readSettings: { _ in () },
            build: { context, _ in buildInventory(context) }
        )
    }
}
