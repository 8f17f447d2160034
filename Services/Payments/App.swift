import PostboxService

/// The `payments` executable: charges and refunds orders through the card processor.
@main
struct PaymentsApp {
    static func main() async {
        await ServiceMain.run(
            name: "payments",
            defaultPort: 8083,
            schema: PaymentsSchema.migrator,
            readSettings: { try GatewaySettings(reader: $0) },
            build: { context, gateway in buildPayments(context, gateway: gateway) }
        )
    }
}
