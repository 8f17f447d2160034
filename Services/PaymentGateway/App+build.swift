import Hummingbird
import PostboxService

/// The card-processor stand-in's routes: charges, refunds, the ledger and the fault program.
func buildPaymentGateway(_ context: ServiceContext, faults: FaultProgram = FaultProgram()) -> ServiceParts {
    let routes = RouteCollection(context: ServiceRequestContext.self)
    LedgerController(client: context.client, ledger: LedgerRepository(), faults: faults).add(to: routes)
    FaultsController(faults: faults).add(to: routes)
    return ServiceParts(routes: routes)
}
