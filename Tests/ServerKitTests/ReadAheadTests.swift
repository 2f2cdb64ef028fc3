import ServerKit
import Synchronization
import Testing

@Suite("ReadAhead: the pages after the one answered are made in the background")
struct ReadAheadTests {
    /// Pages 0…9 of a read where each page's successor is its number plus one; counts the reads of each page.
    final class Source: Sendable {
        let reads = Mutex<[Int: Int]>([:])
        let failing = Mutex<Set<Int>>([])
        let last = 9

        func read(_ page: Int) async throws -> Int {
            try await Task.sleep(for: .milliseconds(5))
            reads.withLock { $0[page, default: 0] += 1 }
            if failing.withLock({ $0.contains(page) }) { throw CancellationError() }
            return page
        }

        func next(_ page: Int) -> Int? { page < last ? page + 1 : nil }

        func count(_ page: Int) -> Int { reads.withLock { $0[page] ?? 0 } }
    }

    /// Waits (up to 10 s) until the background reads reach `condition`.
    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test("a reader going page by page has every page read exactly once, made ahead, and never more than depth ahead")
    func sequential() async throws {
        let source = Source()
        let ahead = ReadAhead<Int, Int>(depth: 2, capacity: 8)
        #expect(try await ahead.page(0, read: source.read, next: source.next) == 0)
        try await eventually { source.count(1) == 1 && source.count(2) == 1 }
        #expect(source.count(1) == 1 && source.count(2) == 1, "two pages made ahead")
        #expect(source.count(3) == 0, "not more than depth ahead")
        for page in 1...9 {
            #expect(try await ahead.page(page, read: source.read, next: source.next) == page)
        }
        #expect((0...9).allSatisfy { source.count($0) == 1 }, "\(source.reads.withLock { $0 })")
        #expect(source.count(10) == 0, "nothing after the last page")
    }

    @Test("a page whose read ahead failed is read again when asked for; a reader that jumps gets what it asks for")
    func failuresAndJumps() async throws {
        let source = Source()
        source.failing.withLock { $0 = [1] }
        let ahead = ReadAhead<Int, Int>(depth: 1)
        _ = try await ahead.page(0, read: source.read, next: source.next)
        try await eventually { source.count(1) == 1 }
        source.failing.withLock { $0 = [] }
        #expect(try await ahead.page(1, read: source.read, next: source.next) == 1)
        #expect(source.count(1) == 2)
        #expect(try await ahead.page(7, read: source.read, next: source.next) == 7)
        try await eventually { source.count(8) == 1 }
        #expect(source.count(8) == 1)
    }

    @Test("at most capacity pages are kept: many readers at once do not grow it")
    func capacity() async throws {
        let source = Source()
        let ahead = ReadAhead<Int, Int>(depth: 1, capacity: 2)
        for page in [0, 2, 4, 6] { _ = try await ahead.page(page, read: source.read, next: source.next) }
        try await eventually { [1, 3, 5, 7].allSatisfy { source.count($0) == 1 } }
        // Pages 1, 3, 5 and 7 were made ahead; only the last two are still kept, so 1 is read again.
        _ = try await ahead.page(1, read: source.read, next: source.next)
        #expect(source.count(1) == 2)
        _ = try await ahead.page(7, read: source.read, next: source.next)
        #expect(source.count(7) == 1)
    }
}
