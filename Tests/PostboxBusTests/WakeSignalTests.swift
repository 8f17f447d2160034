import Testing

@testable import PostboxBus

/// The wake-up flag consumers and the notifier sleep on: signals coalesce, a wait ends on a signal, its timeout or
/// its task's cancellation, and none of these leaves a stray signal behind for the next wait.
@Suite("Wake signal", .timeLimit(.minutes(1)))
struct WakeSignalTests {
    @Test func aSignalBeforeTheWaitEndsItAtOnceAndSignalsCoalesce() async {
        let signal = WakeSignal()
        signal.signal()
        signal.signal()
        signal.signal()
        await signal.wait(timeout: .seconds(600))
        // The three signals were one: the next wait runs to its timeout.
        let elapsed = await ContinuousClock().measure { await signal.wait(timeout: .milliseconds(20)) }
        #expect(elapsed >= .milliseconds(20))
    }

    @Test func aWaitEndsWhenSignalledFromAnotherTask() async {
        let signal = WakeSignal()
        async let waited: Void = signal.wait(timeout: .seconds(600))
        signal.signal()
        await waited
    }

    @Test func aWaitEndsWhenItsTimeoutPasses() async {
        let signal = WakeSignal()
        let elapsed = await ContinuousClock().measure { await signal.wait(timeout: .milliseconds(30)) }
        #expect(elapsed >= .milliseconds(30))
    }

    @Test func aCancelledWaitEndsAndLeavesNoSignalBehind() async {
        let signal = WakeSignal()
        let waiter = Task { await signal.wait(timeout: .seconds(600)) }
        waiter.cancel()
        await waiter.value
        let elapsed = await ContinuousClock().measure { await signal.wait(timeout: .milliseconds(20)) }
        #expect(elapsed >= .milliseconds(20))
    }

    @Test func manyShortWaitsAndSignalsNeverLoseAWakeUp() async {
        let signal = WakeSignal()
        for round in 0..<500 {
            async let waited: Void = signal.wait(timeout: .seconds(600))
            if round.isMultiple(of: 2) { await Task.yield() }
            signal.signal()
            await waited
            // A wait that times out in between: its timer races the next wait and its signal.
            await signal.wait(timeout: .microseconds(50))
        }
    }
}
