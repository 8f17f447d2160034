/// The executables of the Postbox system, as the lab starts them.
public enum SystemService: String, Sendable, CaseIterable, Codable {
    case orders
    case inventory
    case payments
    case paymentGateway = "payment-gateway"

    /// The executable's name.
    public var executable: String { rawValue }
    /// The database role it connects as.
    public var role: String { self == .paymentGateway ? "payment_gateway" : rawValue }
    /// The label of instance `index` in logs and reports: `orders`, `orders-2`.
    public func label(_ index: Int) -> String { index == 1 ? rawValue : "\(rawValue)-\(index)" }
}
