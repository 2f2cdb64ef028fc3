/// Background jobs by key: one at a time per key, at most `limit` at once; up to `queueLimit` more wait their turn
/// (what does not fit is found again by the next pass).
actor Work {
    let limit: Int
    let queueLimit: Int
    private var running: [String: Task<Void, Never>] = [:]
    private var queue: [(key: String, body: @Sendable () async -> Void)] = []
    private var queued: Set<String> = []
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int, queueLimit: Int = 4096) {
        self.limit = max(1, limit)
        self.queueLimit = queueLimit
    }

    func start(_ key: String, _ body: @escaping @Sendable () async -> Void) {
        guard running[key] == nil, !queued.contains(key) else { return }
        if running.count < limit {
            launch(key, body)
        } else if queue.count < queueLimit {
            queue.append((key, body))
            queued.insert(key)
        }
    }

    private func launch(_ key: String, _ body: @escaping @Sendable () async -> Void) {
        running[key] = Task {
            await body()
            self.finish(key)
        }
    }

    private func finish(_ key: String) {
        running[key] = nil
        while running.count < limit, !queue.isEmpty {
            let next = queue.removeFirst()
            queued.remove(next.key)
            launch(next.key, next.body)
        }
        if running.isEmpty && queue.isEmpty {
            let waiters = idleWaiters
            idleWaiters = []
            for waiter in waiters { waiter.resume() }
        }
    }

    func waitForIdle() async {
        if running.isEmpty && queue.isEmpty { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }
}
