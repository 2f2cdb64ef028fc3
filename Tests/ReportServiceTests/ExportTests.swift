import Contracts
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import ReportService
import ServerKit
import Storage
import TestSupport
import Testing
import Wire

@Suite("Exports: create, poll, download")
struct ExportTests {
    static let creates: [(ExportKind, String, String)] = [
        (.courses, "/v2/courses/exports.json", "alice"),
        (.classes, "/v2/classes/exports.json", "alice"),
        (.labs, "/v2/classes/12/labs/exports.json", "alice"),
        (.audit, "/auditing/exports.json", "admin"),
        (.sessions, "/workshops/sessions/exports/", "robot"),
    ]

    @Test("every kind: the seed's answer, 423 before it is ready, then the CSV (gzip as stored, or inflated)", arguments: TestBackends.all)
    func everyKind(backend: DatabaseBackend) async throws {
        try await ReportHarness.with(backend) { harness in
            for kind in ExportKind.allCases {
                harness.data.state.withLock { $0.rows[kind] = StubData.rows(40, kind: kind) }
            }
            try await harness.application().test(.router) { client in
                for (kind, path, user) in Self.creates {
                    let created = try await client.send(.post, path, as: user)
                    #expect(created.status == .ok, "\(kind): \(created.text)")
                    let id = try #require(created.object["id"] as? String)
                    #expect(created.object["ready"] as? Bool == false)
                    #expect(created.object["url"] as? String == "https://labs.example.com\(kind.path)/\(id)")
                    #expect(created.object["notify_by_email"] as? Bool == false)
                    #expect(created.object["email"] as? String == ReportUsers.users[user]!.email)
                    #expect(Set(created.object.keys) == ["id", "ready", "url", "notify_by_email", "email"], "exactly the seed's members")

                    let early = try await client.send(.get, "\(kind.path)/\(id).csv", as: user)
                    #expect(early.status.code == 423)
                    #expect(early.header("Retry-After") == "5")

                    try await harness.dependencies.runner.pass()
                    let polled = try await client.send(.get, "\(kind.path)/\(id).json", as: user)
                    #expect(polled.object["ready"] as? Bool == true, "\(polled.text)")
                    #expect(polled.object["rows"] as? Int == 40)
                    #expect(try await client.send(.get, "\(kind.path)/\(id)", as: user).object["ready"] as? Bool == true)

                    // As stored, when the client takes gzip.
                    let zipped = try await client.send(
                        .get, "\(kind.path)/\(id).csv", as: user, headers: [.acceptEncoding: "gzip, deflate"])
                    #expect(zipped.status == .ok)
                    #expect(zipped.header("Content-Encoding") == "gzip")
                    #expect(zipped.header("Content-Type") == "text/csv; charset=utf-8")
                    let inflated = String(decoding: try gunzip(zipped.body), as: UTF8.self)
                    // Inflated by the server otherwise.
                    let plain = try await client.send(.get, "\(kind.path)/\(id).csv", as: user)
                    #expect(plain.header("Content-Encoding") == nil)
                    #expect(plain.text == inflated)
                    let refused = try await client.send(
                        .get, "\(kind.path)/\(id).csv", as: user, headers: [.acceptEncoding: "gzip;q=0, identity"])
                    #expect(refused.header("Content-Encoding") == nil)
                    // .csv.gz is always the compressed file.
                    let file = try await client.send(.get, "\(kind.path)/\(id).csv.gz", as: user)
                    #expect(file.header("Content-Type") == "application/gzip")
                    #expect(file.body == zipped.body)

                    let table = CSVTable.parse(plain.text)
                    #expect(table.first == kind.columns)
                    let expected = StubData.rows(40, kind: kind).map { $0.map { $0 ?? "" } }
                    #expect(Array(table.dropFirst()) == expected, "\(kind) cells")
                    // Several gzip members (256-byte blocks), still one valid gzip file.
                    if backend == .sqlite {
                        #expect(try gzipTest("\(harness.directory)/export-\(id).csv.gz") == 0)
                    }
                }
            }
        }
    }

    @Test("404 for an unknown id, another user's report, another kind's path; admins see all")
    func access() async throws {
        try await ReportHarness.with { harness in
            harness.data.state.withLock { $0.rows[.classes] = StubData.rows(3, kind: .classes) }
            try await harness.application().test(.router) { client in
                let id = try #require(try await client.send(.post, "/v2/classes/exports.json").object["id"] as? String)
                try await harness.dependencies.runner.pass()
                #expect(try await client.send(.get, "/v2/classes/exports/\(id).json", as: "bob").status == .notFound)
                #expect(try await client.send(.get, "/v2/classes/exports/\(id).csv", as: "bob").status == .notFound)
                #expect(try await client.send(.get, "/v2/courses/exports/\(id).json").status == .notFound)
                #expect(try await client.send(.get, "/v2/classes/exports/99999.json").status == .notFound)
                #expect(try await client.send(.get, "/v2/classes/exports/\(id).json", as: "admin").status == .ok)
                // Who may ask for what.
                #expect(try await client.send(.post, "/auditing/exports.json").status == .forbidden)
                #expect(try await client.send(.post, "/workshops/sessions/exports/").status == .forbidden)
                #expect(try await client.send(.post, "/v2/classes/exports.json", as: "robot").status == .forbidden)
                // Email without an address on the account.
                let noEmail = try await client.send(.post, "/v2/classes/exports.json?notify_by_email=1", as: "bob")
                #expect(noEmail.status == .unprocessableContent)
            }
        }
    }

    @Test("filters are checked when the report is asked for, and applied")
    func filters() async throws {
        try await ReportHarness.with { harness in
            harness.data.state.withLock { $0.rows[.classes] = StubData.rows(30, kind: .classes) }
            try await harness.application().test(.router) { client in
                let bad = try await client.send(.post, "/v2/classes/exports.json?query=bad:1")
                #expect(bad.status == .badRequest)
                #expect(bad.object["field"] as? String == "query")
                #expect(try await client.send(.post, "/v2/classes/999/labs/exports.json").status == .notFound)
                let id = try #require(
                    try await client.send(.post, "/v2/classes/exports.json?query=name:comma&created_at=now-1d%2Bto%2Bnow")
                        .object["id"] as? String)
                try await harness.dependencies.runner.pass()
                let table = CSVTable.parse(try await client.send(.get, "/v2/classes/exports/\(id).csv").text)
                let expectedRows = StubData.rows(30, kind: .classes).filter { ($0[1] ?? "").contains("comma") }.count
                #expect(table.count == 1 + expectedRows)
                let names: [String] = table.dropFirst().map { $0[1] }
                #expect(names.allSatisfy { $0 == "with, comma" })
                let record = try #require(try await harness.dependencies.repository.export(Int64(id)!))
                #expect(record.filters.query == "name:comma")
                #expect(record.filters.createdAt == "now-1d+to+now")
            }
        }
    }

    @Test("kept for the retention time, then gone (404) with its file")
    func retention() async throws {
        try await ReportHarness.with { harness in
            harness.data.state.withLock { $0.rows[.courses] = StubData.rows(3, kind: .courses) }
            try await harness.application().test(.router) { client in
                let id = try #require(try await client.send(.post, "/v2/courses/exports.json").object["id"] as? String)
                try await harness.dependencies.runner.pass()
                harness.clock.advance(seconds: 14 * 60)
                #expect(try await client.send(.get, "/v2/courses/exports/\(id).csv").status == .ok)
                harness.clock.advance(seconds: 61)
                #expect(try await client.send(.get, "/v2/courses/exports/\(id).json").status == .notFound)
                try await harness.dependencies.runner.purge()
                #expect(try await harness.dependencies.repository.export(Int64(id)!) == nil)
                #expect(!FileManager.default.fileExists(atPath: "\(harness.directory)/export-\(id).csv.gz"))
            }
        }
    }

    @Test("at most N unfinished exports per user: the next is 429 with a clear message")
    func limit() async throws {
        try await ReportHarness.with(maximumUnfinished: 3) { harness in
            try await harness.application().test(.router) { client in
                for _ in 0..<3 { #expect(try await client.send(.post, "/v2/classes/exports.json").status == .ok) }
                let refused = try await client.send(.post, "/v2/classes/exports.json")
                #expect(refused.status == .tooManyRequests)
                #expect(refused.header("Retry-After") != nil)
                #expect((refused.object["error"] as? String)?.contains("3 reports") == true)
                // Another user is not affected; once they finish, more may be asked.
                #expect(try await client.send(.post, "/v2/classes/exports.json", as: "admin").status == .ok)
                try await harness.dependencies.runner.pass()
                #expect(try await client.send(.post, "/v2/classes/exports.json").status == .ok)
            }
        }
    }

    @Test("a peer down beyond the retries fails the job with a message a person can act on; a short outage does not")
    func failures() async throws {
        try await ReportHarness.with { harness in
            harness.data.state.withLock { $0.rows[.labs] = StubData.rows(20, kind: .labs) }
            try await harness.application().test(.router) { client in
                let first = try #require(try await client.send(.post, "/v2/classes/5/labs/exports.json").object["id"] as? String)
                harness.data.state.withLock {
                    $0.failures = [WireError(.unavailable, "classroom is not reachable"), WireError(.unavailable, "classroom is not reachable")]
                }
                try await harness.dependencies.runner.pass()
                #expect(try await client.send(.get, "/v2/labs/exports/\(first).json").object["ready"] as? Bool == true)

                let second = try #require(try await client.send(.post, "/v2/classes/5/labs/exports.json").object["id"] as? String)
                harness.data.state.withLock {
                    $0.failures = Array(repeating: WireError(.unavailable, "classroom is not reachable"), count: 5)
                }
                try await harness.dependencies.runner.pass()
                let polled = try await client.send(.get, "/v2/labs/exports/\(second).json")
                #expect(polled.object["ready"] as? Bool == false)
                #expect(polled.object["state"] as? String == "failed")
                let message = try #require(polled.object["error"] as? String)
                #expect(message.contains("classroom-service could not be reached"))
                #expect(message.contains("Ask for the report again"))
                let download = try await client.send(.get, "/v2/labs/exports/\(second).csv")
                #expect(download.status == .conflict)
                #expect(!FileManager.default.fileExists(atPath: "\(harness.directory)/export-\(second).csv.gz"))
                #expect(!FileManager.default.fileExists(atPath: "\(harness.directory)/export-\(second).csv.gz.partial"))
            }
        }
    }

    @Test("a peer that refuses the row form's larger pages (an older version) is asked for object-sized ones")
    func olderPeer() async throws {
        try await ReportHarness.with(configure: { $0.rowPageSize = 50 }) { harness in
            harness.data.state.withLock {
                $0.rows[.labs] = StubData.rows(40, kind: .labs)
                $0.maximumLimit = 10
            }
            try await harness.application().test(.router) { client in
                for _ in 0..<2 {
                    let id = try #require(try await client.send(.post, "/v2/classes/5/labs/exports.json").object["id"] as? String)
                    try await harness.dependencies.runner.pass()
                    let polled = try await client.send(.get, "/v2/labs/exports/\(id).json")
                    #expect(polled.object["ready"] as? Bool == true, "\(polled.text)")
                    #expect(polled.object["rows"] as? Int == 40)
                }
                // Each create checks its filters with one call. The refusal is learnt once: the first export asked for
                // 50 rows once, then 7 a page (6 pages); the second asked for 7 from the start.
                let calls = harness.data.state.withLock { $0.calls }
                let expected = 8 + 7
                #expect(calls.count == expected, "\(calls)")
            }
        }
    }

    @Test("the database blob store serves the same file", arguments: TestBackends.all)
    func databaseBlobs(backend: DatabaseBackend) async throws {
        try await ReportHarness.with(backend, blobStore: .database) { harness in
            harness.data.state.withLock { $0.rows[.audit] = StubData.rows(50, kind: .audit) }
            try await harness.application().test(.router) { client in
                let id = try #require(try await client.send(.post, "/auditing/exports.json", as: "admin").object["id"] as? String)
                try await harness.dependencies.runner.pass()
                let plain = try await client.send(.get, "/auditing/exports/\(id).csv", as: "admin")
                #expect(CSVTable.parse(plain.text).count == 51)
                let zipped = try await client.send(.get, "/auditing/exports/\(id).csv.gz", as: "admin")
                #expect(String(decoding: try gunzip(zipped.body), as: UTF8.self) == plain.text)
            }
        }
    }
}

@Suite("Export jobs: claims, leases, restarts")
struct ExportJobTests {
    static func owner() -> AuthenticatedUser { ReportUsers.users["alice"]! }

    @Test("two runners racing over many jobs run each once", arguments: TestBackends.all)
    func racingRunners(backend: DatabaseBackend) async throws {
        try await ReportHarness.with(backend) { harness in
            harness.data.state.withLock { $0.rows[.classes] = StubData.rows(5, kind: .classes) }
            var ids: [Int64] = []
            for _ in 0..<30 {
                guard case .created(let record) = try await harness.dependencies.repository.create(
                    kind: .classes, owner: Self.owner(), filters: .init(), notifyByEmail: false, maximumUnfinished: 100,
                    now: harness.clock.now)
                else { Issue.record("not created"); return }
                ids.append(record.id)
            }
            var other = ExportRunner.Configuration()
            other.holder = "other-replica"
            other.pageSize = 7
            other.rowPageSize = 7
            let second = ExportRunner(
                repository: harness.dependencies.repository, blobs: harness.dependencies.blobs, data: harness.data.peer,
                mailer: nil, publicURL: "https://labs.example.com", configuration: other, now: harness.clock.source,
                logger: quietLogger)
            async let a: Void = harness.dependencies.runner.pass()
            async let b: Void = second.pass()
            _ = try await (a, b)
            let firstPages = harness.data.state.withLock { $0.calls.filter { $0 == "classes:-" }.count }
            #expect(firstPages == 30)
            for id in ids {
                let record = try #require(try await harness.dependencies.repository.export(id))
                #expect(record.state == .ready)
                #expect(record.attempts == 1)
            }
        }
    }

    @Test("a job whose runner died is claimed again once its lease lapses, and completes")
    func leaseLapse() async throws {
        try await ReportHarness.with { harness in
            harness.data.state.withLock { $0.rows[.classes] = StubData.rows(12, kind: .classes) }
            let repository = harness.dependencies.repository
            guard case .created(let record) = try await repository.create(
                kind: .classes, owner: Self.owner(), filters: .init(), notifyByEmail: false, maximumUnfinished: 100,
                now: harness.clock.now)
            else { Issue.record("not created"); return }
            // A runner that claims it and dies.
            let claimed = try await repository.claim(holder: "dead-replica", lease: 30, now: harness.clock.now)
            #expect(claimed?.id == record.id)
            try await harness.dependencies.runner.pass()
            #expect(try await repository.export(record.id)?.state == .running)
            harness.clock.advance(seconds: 31)
            try await harness.dependencies.runner.pass()
            let done = try #require(try await repository.export(record.id))
            #expect(done.state == .ready)
            #expect(done.attempts == 2)
            #expect(done.rows == 12)
            // The dead runner cannot finish it now.
            #expect(try await repository.finish(record.id, holder: "dead-replica", rows: 1, bytes: 1, expiresAt: harness.clock.now, now: harness.clock.now) == false)
        }
    }
}

@Suite("CSV and gzip")
struct CSVGzipTests {
    @Test("RFC 4180 quoting")
    func quoting() {
        var writer = CSVWriter(capacity: 128)
        writer.write(["a", "b,c", "say \"hi\"", "two\nlines", nil, " lead", "Grüße", "cr\rx", ""])
        let text = String(buffer: writer.buffer)
        #expect(text == "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\",,\" lead\",Grüße,\"cr\rx\",\r\n")
    }

    @Test("many gzip members inflate as one stream, fed in any chunking")
    func members() async throws {
        var original = ByteBuffer()
        var stored = ByteBuffer()
        for index in 0..<50 {
            let block = ByteBuffer(string: String(repeating: "row \(index),Grüße\r\n", count: index * 13 + 1))
            original.writeImmutableBuffer(block)
            stored.writeImmutableBuffer(try Gzip.member(block, level: 6))
        }
        #expect(try gunzip(Data(buffer: stored)) == Data(buffer: original))
        for chunkSize in [1, 7, 300, 100_000] {
            let inflater = try GzipInflater()
            var output = ByteBuffer()
            var input = stored
            while input.readableBytes > 0 {
                let chunk = input.readSlice(length: min(chunkSize, input.readableBytes))!
                try await inflater.inflate(chunk) { output.writeImmutableBuffer($0) }
            }
            #expect(output == original, "chunks of \(chunkSize)")
        }
    }
}

@Suite("Report emails through a real SMTP server")
struct ReportEmailTests {
    @Test("notify_by_email: the requester gets the link once the report is ready, kept 7 days")
    func email() async throws {
        guard let python = SMTPSink.python else {
            #expect(!SMTPSink.required, "python3-aiosmtpd is required in this run but is missing")
            return
        }
        let sink = try await SMTPSink(python: python)
        defer { sink.stop() }
        let mailer = Mailer(client: SMTPClient(settings: .init(host: "127.0.0.1", port: sink.port, from: "reports@labs.example.com")))
        try await ReportHarness.with(mailer: mailer) { harness in
            harness.data.state.withLock { $0.rows[.classes] = StubData.rows(9, kind: .classes) }
            try await harness.application().test(.router) { client in
                let created = try await client.send(.post, "/v2/classes/exports.json?notify_by_email=1")
                #expect(created.object["notify_by_email"] as? Bool == true)
                #expect(created.object["email"] as? String == "alice@example.com")
                let id = try #require(created.object["id"] as? String)
                try await harness.dependencies.runner.pass()
                let messages = sink.messages()
                #expect(messages.count == 1)
                let message = try #require(messages.first)
                #expect(message.contains("X-Envelope-To: alice@example.com"))
                #expect(message.contains("Subject: Your classes report is ready"))
                #expect(message.contains("https://labs.example.com/v2/classes/exports/\(id).csv"))
                // Sent once.
                try await harness.dependencies.runner.pass()
                #expect(sink.messages().count == 1)
                // Kept for a week.
                harness.clock.advance(seconds: 6 * 86_400)
                #expect(try await client.send(.get, "/v2/classes/exports/\(id).json").status == .ok)
                harness.clock.advance(seconds: 86_401)
                #expect(try await client.send(.get, "/v2/classes/exports/\(id).json").status == .notFound)
            }
        }
    }

    @Test("a mail server that is down does not lose the email: it is sent once the server answers")
    func retry() async throws {
        guard let python = SMTPSink.python else {
            #expect(!SMTPSink.required, "python3-aiosmtpd is required in this run but is missing")
            return
        }
        let port = try await freeLoopbackPort()
        let mailer = Mailer(client: SMTPClient(settings: .init(host: "127.0.0.1", port: port, from: "r@labs.example.com")))
        try await ReportHarness.with(mailer: mailer) { harness in
            try await harness.application().test(.router) { client in
                let id = try #require(try await client.send(.post, "/v2/classes/exports.json?notify_by_email=1").object["id"] as? String)
                try await harness.dependencies.runner.pass()
                #expect(try await client.send(.get, "/v2/classes/exports/\(id).json").object["ready"] as? Bool == true)
                #expect(try await harness.dependencies.repository.export(Int64(id)!)?.emailedAt == nil)
                let sink = try await SMTPSink(python: python, port: port)
                defer { sink.stop() }
                try await harness.dependencies.runner.sendEmails()
                #expect(sink.messages().count == 1)
                #expect(try await harness.dependencies.repository.export(Int64(id)!)?.emailedAt != nil)
            }
        }
    }
}

/// A store whose files fail part-way, as a full disk does.
struct FullDiskStore: BlobStore {
    let inner: any BlobStore
    let failAfter: Int

    func create(_ key: String) async throws -> any BlobWriter {
        FullDiskWriter(inner: try await inner.create(key), failAfter: failAfter)
    }

    func read(_ key: String) async throws -> AsyncThrowingStream<ByteBuffer, any Error>? { try await inner.read(key) }
    func size(_ key: String) async throws -> Int? { try await inner.size(key) }
    func delete(_ key: String) async throws { try await inner.delete(key) }
}

final class FullDiskWriter: BlobWriter, @unchecked Sendable {
    let inner: any BlobWriter
    let failAfter: Int
    var written = 0

    init(inner: any BlobWriter, failAfter: Int) {
        self.inner = inner
        self.failAfter = failAfter
    }

    func write(_ bytes: ByteBuffer) async throws {
        written += bytes.readableBytes
        guard written <= failAfter else {
            throw BlobError(description: "cannot write the export file export.csv.gz.partial: no space left on the device")
        }
        try await inner.write(bytes)
    }

    func finish() async throws { try await inner.finish() }
    func abort() async { await inner.abort() }
}

@Suite("Export failures of the store")
struct ExportStoreFailureTests {
    @Test("a full disk fails the job with the reason, leaves no partial file, and the report answers 409 with it")
    func fullDisk() async throws {
        try await ReportHarness.with { harness in
            harness.data.state.withLock { $0.rows[.labs] = StubData.rows(200, kind: .labs) }
            let runner = ExportRunner(
                repository: harness.dependencies.repository,
                blobs: FullDiskStore(inner: harness.dependencies.blobs, failAfter: 600), data: harness.data.peer,
                mailer: nil, publicURL: "https://labs.example.com",
                configuration: {
                    var configuration = ExportRunner.Configuration()
                    configuration.pageSize = 7
                    configuration.rowPageSize = 7
                    configuration.blockSize = 256
                    return configuration
                }(), now: harness.clock.source, logger: quietLogger)
            try await harness.application().test(.router) { client in
                let id = try #require(try await client.send(.post, "/v2/classes/3/labs/exports.json").object["id"] as? String)
                try await runner.pass()
                let polled = try await client.send(.get, "/v2/labs/exports/\(id).json")
                #expect(polled.object["state"] as? String == "failed")
                #expect((polled.object["error"] as? String)?.contains("no space left on the device") == true)
                let download = try await client.send(.get, "/v2/labs/exports/\(id).csv")
                #expect(download.status == .conflict)
                #expect(download.text.contains("no space left"))
                let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: harness.directory)) ?? []
                #expect(leftovers.isEmpty, "\(leftovers)")
            }
        }
    }
}
