import Foundation
@testable import ReportService
import Testing

@Suite("Export job model: the state machine")
struct ExportJobModelTests {
    @Test("each state and event", arguments: [
        (ExportState.queued, ExportEvent.claimed, ExportState?.some(.running)),
        (.queued, .finished, nil), (.queued, .failed, .failed), (.queued, .released, nil),
        (.running, .claimed, .running), (.running, .finished, .ready), (.running, .failed, .failed),
        (.running, .released, .queued),
        (.ready, .claimed, nil), (.ready, .finished, nil), (.ready, .failed, nil), (.ready, .released, nil),
        (.failed, .claimed, nil), (.failed, .finished, nil), (.failed, .failed, nil), (.failed, .released, nil),
    ])
    func transition(_ row: (ExportState, ExportEvent, ExportState?)) {
        #expect(row.0.accepts(row.1) == (row.2 != nil))
        #expect(row.0.after(row.1) == (row.2 ?? row.0))
    }

    @Test("a claim starts the job over under the new holder; a finished job cannot be claimed")
    func claim() throws {
        let record = ExportRecord(
            id: 1, kind: .labs, ownerID: "1", ownerEmail: "", filters: ExportFilters(), notifyByEmail: false,
            state: .running, rows: 500, bytes: 90, error: nil, attempts: 1, holder: "old", leaseUntil: nil,
            createdAt: Date(timeIntervalSince1970: 0), readyAt: nil, expiresAt: nil, emailedAt: nil)
        let until = Date(timeIntervalSince1970: 60)
        let claimed = try record.claimed(by: "new", leaseUntil: until)
        #expect(claimed.state == .running && claimed.holder == "new" && claimed.leaseUntil == until)
        #expect(claimed.attempts == 2 && claimed.rows == 0 && claimed.bytes == 0)
        var ready = record
        ready.state = .ready
        #expect(throws: (any Error).self) { try ready.claimed(by: "new", leaseUntil: until) }
        #expect(ExportState.unfinished == [.queued, .running])
    }
}
