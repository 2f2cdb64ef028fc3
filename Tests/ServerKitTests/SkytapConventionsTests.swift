import Foundation
import ServerKit
import Testing

@Suite("Skytap conventions: times, parameters, paging")
struct SkytapConventionsTests {
    /// The format written by hand, checked against Foundation's calendar over many instants and zones.
    @Test("time format matches the calendar in every zone, DST and before 1970 included")
    func format() throws {
        let zones = ["UTC", "America/Los_Angeles", "Asia/Kolkata", "Australia/Adelaide", "Pacific/Chatham", "Europe/Berlin"]
        var generator = SystemRandomNumberGenerator()
        for name in zones {
            let zone = try #require(TimeZone(identifier: name))
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            for _ in 0..<500 {
                let date = Date(timeIntervalSince1970: Double(Int64.random(in: -2_000_000_000...4_000_000_000, using: &generator)))
                let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
                let offset = zone.secondsFromGMT(for: date) / 60
                let expected = String(
                    format: "%04d/%02d/%02d %02d:%02d:%02d %@%02d%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!,
                    c.second!, offset < 0 ? "-" : "+", abs(offset) / 60, abs(offset) % 60)
                #expect(SkytapTime.string(date, in: zone) == expected)
                // And it reads back.
                #expect(SkytapTime.parse(SkytapTime.string(date, in: zone)) == date)
            }
        }
    }

    @Test("input: zoned, offset, date only, ISO 8601; nonsense refused")
    func parse() throws {
        let pacific = try #require(TimeZone(identifier: "America/Los_Angeles"))
        let expected = Date(timeIntervalSince1970: 1_448_736_300)  // 2015-11-28T18:45:00Z
        #expect(SkytapTime.parse("2015/11/28 10:45:00", in: pacific) == expected)
        #expect(SkytapTime.parse("2015/11/28 10:45:00 -0800") == expected)
        #expect(SkytapTime.parse("2015-11-28T18:45:00Z") == expected)
        #expect(SkytapTime.parse("2015-11-28T18:45:00.000Z") == expected)
        #expect(SkytapTime.parse("2015/11/28 10:45", in: pacific) == expected)
        #expect(SkytapTime.parse("2015/11/28") == Date(timeIntervalSince1970: 1_448_668_800))
        for bad in ["", "tomorrow", "2015/13/01 00:00:00", "2015/02/30 00:00:00", "2015/11/28 25:00:00", "2015/11/28 10:45:00 PST"] {
            #expect(SkytapTime.parse(bad) == nil, "\(bad)")
        }
    }
}
