import PostboxService

/// The `payment-gateway` executable: a stand-in for a third-party card processor, with its own ledger of charges
/// and refunds and programmable faults. It does not use the bus.
@main
struct PaymentGatewayApp {
    static func main() async {
        await ServiceMain.run(
            name: "payment-gateway",
            defaultPort: 8084,
            usesBus: false,
            schema: LedgerSchema.migrator,
            readSettings: { _ in () },
            build: { context, _ in buildPaymentGateway(context) }
        )
    }
}
