import NIOCore
import NIOPosix
import Synchronization

/// A one-waiter wake-up flag: `signal()` wakes the waiter, or the next `wait` if nobody waits yet.
///
/// Signals coalesce: ten signals before a wait wake it once. Used to wake a consumer loop on a notification,
/// on a finished handler, or on shutdown, without polling.
///
/// A wait is one continuation and one timer on an event loop. (Racing a `Task.sleep` against the signal in a task
/// group, as it first did, cost two child tasks and a Dispatch timer per wait, and a busy consumer waits after
/// almost every claim.)
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var timer: Scheduled<Void>?
        /// Counts waits, so that a timer firing late cannot end a later wait.
        var wait: UInt64 = 0
    }

    private let state = Mutex(State())
    private let timers: any EventLoop

    /// - Parameter timers: Where wait timeouts are scheduled.
    init(timers: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()) {
        self.timers = timers
    }

    func signal() {
        endWait(nil, pendingIfNobodyWaits: true)
    }

    /// Whether a wait is in progress (its waiter is idle until signalled or timed out).
    var isWaiting: Bool { state.withLock { $0.waiter != nil } }

    /// Returns when signalled (at once if a signal is pending), when `timeout` passes, or when cancelled.
    func wait(timeout: Duration) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let wait = state.withLock { state -> UInt64? in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return nil
                    }
                    state.wait &+= 1
                    state.waiter = continuation
                    return state.wait
                }
                guard let wait else { return continuation.resume() }
                let timer = timers.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { self.endWait(wait) }
                let stillWaiting = state.withLock { state -> Bool in
                    guard state.wait == wait, state.waiter != nil else { return false }
                    state.timer = timer
                    return true
                }
                if !stillWaiting { timer.cancel() }
            }
        } onCancel: {
            endWait(nil)
        }
    }

    /// Ends the current wait (only wait number `wait`, if given); with nobody waiting, leaves a signal for the next
    /// wait if asked to.
    private func endWait(_ wait: UInt64?, pendingIfNobodyWaits: Bool = false) {
        let (waiter, timer) = state.withLock { state -> (CheckedContinuation<Void, Never>?, Scheduled<Void>?) in
            guard wait == nil || state.wait == wait, let waiter = state.waiter else {
                if pendingIfNobodyWaits { state.pending = true }
                return (nil, nil)
            }
            defer {
                state.waiter = nil
                state.timer = nil
            }
            return (waiter, state.timer)
        }
        timer?.cancel()
        waiter?.resume()
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : whole &+ attoseconds / 1_000_000_000
    }
}
