import Foundation
import Testing

@testable import Orders

@Suite("orders token cache")
struct CustomerTokenCacheTests {
    @Test func remembersResolvedTokensAndStaysWithinItsCapacity() {
        let cache = CustomerTokenCache(capacity: 3)
        let ada = UUID()
        #expect(cache.customer(for: "cus_ada") == nil)
        cache.remember(ada, for: "cus_ada")
        #expect(cache.customer(for: "cus_ada") == ada)
        for index in 0..<10 {
            cache.remember(UUID(), for: "cus_\(index)")
            #expect(cache.count <= 3)
        }
        #expect(cache.customer(for: "cus_ada") == nil)
        #expect(cache.customer(for: "cus_9") != nil)
    }
}
