import Contracts
import Foundation
import Logging
import Metrics
import NIOCore
import ServerKit
import ServiceLifecycle
import Storage
import NIOConcurrencyHelpers
import Wire

/// Runs export jobs: claims one (a lease, so no job runs twice), streams its rows page → CSV → gzip → blob store with
/// bounded memory, and marks it ready (or failed, with a message a person can act on). Also deletes reports past
/// their retention and sends the "report ready" emails. Up to `workers` jobs run at once in each replica.
public final class ExportRunner: Service, Sendable {
    public struct Configuration: Sendable {
        public var interval: Duration = .seconds(1)
        public var lease: TimeInterval = 30
        public var workers = 2
        public var pageSize = 1000
        /// Rows per call of the compact row form (lab reports, `labs.rows`): larger pages, fewer round trips.
        public var rowPageSize = 5000
        /// CSV bytes per gzip member.
        public var blockSize = 1 << 20
        public var gzipLevel: Int32 = 6
        /// Blocks compressed at once.
        public var compressors = 2
        public var retention: TimeInterval = 15 * 60
        public var emailRetention: TimeInterval = 7 * 86_400
        /// Tries of one page before the job fails, with waits of `retryBase` × 1, 2, 4, … between them (about 30 s
        /// in all by default).
        public var pageAttempts = 6
        public var retryBase: Duration = .seconds(1)
        public var holder = LeasedLoop.processHolder()

        public init() {}
    }

    let repository: ExportRepository
    let blobs: any BlobStore
    let data: DataPeer
    let mailer: Mailer?
    let publicURL: String
    let configuration: Configuration
    let now: @Sendable () -> Date
    let logger: Logger
    /// One per worker (a WakeSignal has one waiter at a time).
    private let wakeups: [WakeSignal]
    /// A peer refused the larger pages of the row form (it is older than this replica).
    private let rowPagesRefused = NIOLockedValueBox(false)
    /// Purging expired reports and sending report emails: one replica at a time (`report-housekeeping`), so that an
    /// email is never sent twice by two replicas.
    private let housekeepingLoop: LeasedLoop

    public init(
        repository: ExportRepository, blobs: any BlobStore, data: DataPeer, mailer: Mailer?, publicURL: String,
        configuration: Configuration = .init(), now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.repository = repository
        self.blobs = blobs
        self.data = data
        self.mailer = mailer
        self.publicURL = publicURL
        self.configuration = configuration
        self.now = now
        self.logger = logger
        wakeups = (0..<max(1, configuration.workers)).map { _ in WakeSignal() }
        housekeepingLoop = LeasedLoop(
            lease: "report-housekeeping", leases: Leases(repository.database), interval: .seconds(5),
            holder: configuration.holder, failure: "export housekeeping failed", now: now, logger: logger)
    }

    static func blobKey(_ id: Int64) -> String { "export-\(id)" }

    func url(_ record: ExportRecord) -> String { "\(publicURL)\(record.kind.path)/\(record.id)" }

    /// A new job is queued: look now.
    public func wake() {
        for signal in wakeups { signal.signal() }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<max(1, configuration.workers) {
                    group.addTask { await self.work(worker) }
                }
                group.addTask { await self.housekeeping() }
            }
        } onGracefulShutdown: { [wakeups] in
            for signal in wakeups { signal.signal() }
        }
    }

    private var stopping: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    private func work(_ worker: Int) async {
        while !stopping {
            do {
                if try await runNext() { continue }
            } catch {
                logger.error("export worker failed", metadata: ["worker": "\(worker)", "error": "\(error)"])
            }
            await wakeups[worker].wait(for: configuration.interval)
        }
    }

    private func housekeeping() async {
        await housekeepingLoop.run { [self] in
            try await purge()
            try await sendEmails()
        }
    }

    /// One pass for tests: runs every job that can be claimed, then housekeeping.
    public func pass() async throws {
        while try await runNext() {}
        try await sendEmails()
        try await purge()
    }

    /// Claims and runs one job; false when there is none.
    @discardableResult
    public func runNext() async throws -> Bool {
        guard let record = try await repository.claim(holder: configuration.holder, lease: configuration.lease, now: now())
        else { return false }
        logger.info(
            "export started",
            metadata: ["export": "\(record.id)", "kind": "\(record.kind.rawValue)", "attempt": "\(record.attempts)"])
        await run(record)
        return true
    }

    // MARK: One job

    enum Outcome {
        case done(rows: Int, bytes: Int, waits: Waits)
        case lostLease
    }

    /// Where a job's time went while it was not writing: waiting for the peer's pages, and for compression.
    struct Waits {
        var peer: Duration = .zero
        var compression: Duration = .zero
    }

    func run(_ record: ExportRecord) async {
        let started = ContinuousClock.now
        let kind = record.kind.rawValue
        Self.running.increment()
        defer { Self.running.decrement() }
        var outcome = "failed"
        defer {
            Counter(label: "labportal_report_exports_total", dimensions: [("kind", kind), ("outcome", outcome)]).increment()
            Metrics.Timer(label: "labportal_report_export_duration_seconds", dimensions: [("kind", kind), ("outcome", outcome)])
                .record(ContinuousClock.now - started)
        }
        do {
            switch try await stream(record) {
            case .done(let rows, let bytes, let waits):
                let retention = record.notifyByEmail ? configuration.emailRetention : configuration.retention
                let expires = now().addingTimeInterval(retention)
                if try await repository.finish(
                    record.id, holder: configuration.holder, rows: rows, bytes: bytes, expiresAt: expires, now: now())
                {
                    logger.info(
                        "export ready",
                        metadata: [
                            "export": "\(record.id)", "rows": "\(rows)", "bytes": "\(bytes)",
                            "seconds": "\(ContinuousClock.now - started)",
                            "waiting_for_peer": "\(waits.peer)", "waiting_for_compression": "\(waits.compression)",
                        ])
                    outcome = "ready"
                    if record.notifyByEmail { try? await sendEmails() }
                } else {
                    outcome = "lost_lease"
                }
            case .lostLease:
                outcome = "lost_lease"
                logger.warning("export lease lost; another runner has it", metadata: ["export": "\(record.id)"])
            }
        } catch is CancellationError {
            // Shutting down: give the job back so that the next runner starts it at once.
            outcome = "handed_back"
            try? await repository.release(record.id, holder: configuration.holder, retryAt: now(), message: nil, now: now())
            logger.info("export handed back at shutdown", metadata: ["export": "\(record.id)"])
        } catch let failure as ExportFailure {
            logger.error("export failed", metadata: ["export": "\(record.id)", "error": "\(failure.message)"])
            try? await repository.fail(
                record.id, holder: configuration.holder, message: failure.message,
                expiresAt: now().addingTimeInterval(configuration.retention), now: now())
        } catch {
            logger.error("export failed", metadata: ["export": "\(record.id)", "error": "\(error)"])
            try? await repository.fail(
                record.id, holder: configuration.holder, message: "the export failed: \(error)",
                expiresAt: now().addingTimeInterval(configuration.retention), now: now())
        }
    }

    /// Export jobs this replica runs now.
    static let running = Meter(label: "labportal_report_exports_running")

    /// The rows written so far, for the page being fetched meanwhile.
    typealias RowCount = NIOLockedValueBox<Int>

    struct ExportFailure: Error {
        var message: String
    }

    /// Pages → CSV → gzip members (compressed `compressors` at a time, written in order) → the blob.
    func stream(_ record: ExportRecord) async throws -> Outcome {
        let key = Self.blobKey(record.id)
        let writer: any BlobWriter
        do {
            writer = try await blobs.create(key)
        } catch {
            throw ExportFailure(message: "\(error)")
        }
        // Whatever ends the job early (a failure, a lost lease, a shutdown), the partial file goes before it returns.
        do {
            let outcome = try await write(record, to: writer)
            if case .lostLease = outcome { await writer.abort() }
            return outcome
        } catch {
            await writer.abort()
            throw error
        }
    }

    private func write(_ record: ExportRecord, to writer: any BlobWriter) async throws -> Outcome {
        let level = configuration.gzipLevel
        var csv = CSVWriter(capacity: configuration.blockSize + 64 * 1024)
        csv.write(record.kind.columns)
        var pending: [Task<ByteBuffer, any Error>] = []
        var bytes = 0
        var rows = 0
        var cursor: String?
        // The first page's progress shows at once; then every 2 s.
        var lastBeat = ContinuousClock.now - .seconds(10)
        var waits = Waits()

        func drain(keeping: Int) async throws {
            while pending.count > keeping {
                let waited = ContinuousClock.now
                let member = try await pending.removeFirst().value
                waits.compression += ContinuousClock.now - waited
                bytes += member.readableBytes
                do {
                    try await writer.write(member)
                } catch {
                    throw ExportFailure(message: "\(error)")
                }
            }
        }
        func submit() async throws {
            let block = csv.buffer
            csv.buffer.clear()
            pending.append(Task { try Gzip.member(block, level: level) })
            try await drain(keeping: configuration.compressors)
        }

        let written = RowCount(0)
        // The next page is asked for as soon as a page arrives, so that the peer makes it while this one is written.
        var next: Task<ExportPage, any Error>? = Task { [self] in
            try await fetch(record, cursor: nil, written: written)
        }
        defer { next?.cancel() }
        while let pending = next {
            // A shutdown hands the job back at once (the next runner starts it again) rather than finishing it.
            if Task.isCancelled || Task.isShuttingDownGracefully { throw CancellationError() }
            let waited = ContinuousClock.now
            let page = try await pending.value
            waits.peer += ContinuousClock.now - waited
            cursor = page.next
            next = cursor.map { cursor in Task { [self] in try await fetch(record, cursor: cursor, written: written) } }
            switch page.rows {
            case .cells(let cells):
                for row in cells {
                    csv.write(row)
                    if csv.buffer.readableBytes >= configuration.blockSize { try await submit() }
                }
                rows += cells.count
            case .rowPage(let json, let columns):
                do {
                    rows += try RowPage.scan(json: json.readableBytesView, columns: columns) { row in csv.write(row) }.rows
                } catch {
                    throw ExportFailure(
                        message: "\(record.kind.peer) answered a page that cannot be read (\(error)); the export stopped after \(rows) rows")
                }
                if csv.buffer.readableBytes >= configuration.blockSize { try await submit() }
            }
            written.withLockedValue { $0 = rows }
            if ContinuousClock.now - lastBeat > .seconds(2) {
                lastBeat = ContinuousClock.now
                guard try await repository.heartbeat(
                    record.id, holder: configuration.holder, rows: rows, lease: configuration.lease, now: now())
                else { return .lostLease }
            }
        }
        if csv.buffer.readableBytes > 0 { try await submit() }
        try await drain(keeping: 0)
        do {
            try await writer.finish()
        } catch {
            throw ExportFailure(message: "\(error)")
        }
        return .done(rows: rows, bytes: bytes, waits: waits)
    }

    /// Peer errors worth waiting out: the peer is down, busy or slow, or failed on its side.
    static let transientKinds: Set<ErrorKind> = [.unavailable, .locked, .rateLimited, .deadlineExceeded, .internal]

    /// One page, retried while the peer is unavailable (waits of 1, 2, 4, … s); a refusal fails the job at once.
    func fetch(_ record: ExportRecord, cursor: String?, written: RowCount) async throws -> ExportPage {
        let peer = record.kind.peer
        var attempt = 0
        while true {
            let limit = record.kind.readsRowPages && !rowPagesRefused.withLockedValue({ $0 })
                ? configuration.rowPageSize : configuration.pageSize
            do {
                return try await data.fetch(record.kind, record.filters, cursor, limit)
            } catch let error as WireError
                where [.badRequest, .invalidParams].contains(error.kind) && error.field == "limit"
                && limit > configuration.pageSize
            {
                // A peer of an older version (a rolling upgrade) takes only object-sized pages: ask it for those,
                // from now on in this process.
                rowPagesRefused.withLockedValue { $0 = true }
                logger.warning(
                    "\(peer) refused \(limit) rows a page; asking for \(configuration.pageSize)",
                    metadata: ["export": "\(record.id)", "error": "\(error.message)"])
            } catch let error as WireError {
                let transient = ExportRunner.transientKinds.contains(error.kind)
                guard transient else {
                    throw ExportFailure(message: "\(peer) refused the export: \(error.message)")
                }
                attempt += 1
                let rowsSoFar = written.withLockedValue { $0 }
                guard attempt < configuration.pageAttempts else {
                    throw ExportFailure(
                        message: "\(peer) could not be reached (\(error.message)); the export stopped after \(rowsSoFar) rows. Ask for the report again once \(peer) is back.")
                }
                let wait = configuration.retryBase * (1 << min(attempt - 1, 5))
                logger.warning(
                    "export page failed; retrying",
                    metadata: ["export": "\(record.id)", "peer": "\(peer)", "error": "\(error.message)", "retry_in_s": "\(wait)"])
                _ = try? await repository.heartbeat(
                    record.id, holder: configuration.holder, rows: rowsSoFar,
                    lease: configuration.lease + Double(wait.components.seconds), now: now())
                try await Task.sleep(for: wait)
            } catch let failure as ServiceFailure {
                throw ExportFailure(message: "\(peer) refused the export: \(failure.publicMessage)")
            }
        }
    }

    // MARK: Housekeeping

    /// Deletes reports past their retention: the file first, then the row (a poll then answers 404).
    public func purge() async throws {
        for record in try await repository.expired(now: now(), limit: 500) {
            try await blobs.delete(Self.blobKey(record.id))
            try await repository.delete(record.id)
            logger.info("export deleted after its retention", metadata: ["export": "\(record.id)"])
        }
    }

    /// Sends the emails of ready reports that asked for one.
    public func sendEmails() async throws {
        guard let mailer else { return }
        for record in try await repository.unsentEmails(limit: 50) {
            do {
                try await mailer.send(record, url: url(record))
                try await repository.markEmailed(record.id, now: now())
                logger.info("export email sent", metadata: ["export": "\(record.id)", "to": "\(record.ownerEmail)"])
            } catch {
                logger.warning("export email not sent; will retry", metadata: ["export": "\(record.id)", "error": "\(error)"])
                return
            }
        }
    }
}

/// The "your report is ready" email.
public struct Mailer: Sendable {
    public var client: SMTPClient

    public init(client: SMTPClient) { self.client = client }

    func send(_ record: ExportRecord, url: String) async throws {
        let expires = record.expiresAt.map { SkytapTime.string($0) } ?? "—"
        let body = """
            Your \(record.kind.rawValue) report \(record.id) is ready (\(record.rows) rows).

            Download it: \(url).csv

            It is kept until \(expires).
            """
        try await client.send(
            to: record.ownerEmail,
            message: SMTPClient.message(
                from: client.settings.from, to: record.ownerEmail, subject: "Your \(record.kind.rawValue) report is ready",
                body: body))
    }
}
