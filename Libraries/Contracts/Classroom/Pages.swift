import Foundation

/// The filters of the Classrooms bulk reads: the same strings as the matching REST list (`query`, `created_at`,
/// `last_deployed`, `sort`). `labs.page` also takes `class_id` (nil for every class's labs). Pages follow `sort` (then
/// id); the cursor carries the last row's sort key.
public struct ListFilters: Sendable, Hashable, Codable {
    public var query: String?
    public var createdAt: String?
    public var lastDeployed: String?
    public var sort: String?
    public var classID: String?

    public init(
        query: String? = nil, createdAt: String? = nil, lastDeployed: String? = nil, sort: String? = nil,
        classID: String? = nil
    ) {
        self.query = query
        self.createdAt = createdAt
        self.lastDeployed = lastDeployed
        self.sort = sort
        self.classID = classID
    }

    enum CodingKeys: String, CodingKey {
        case query, sort
        case createdAt = "created_at"
        case lastDeployed = "last_deployed"
        case classID = "class_id"
    }
}

/// A VM's access in a course.
public struct CourseVMAccessItem: Sendable, Equatable, Codable {
    public var vmRef: String
    public var name: String
    public var access: String

    public init(vmRef: String, name: String, access: String) {
        self.vmRef = vmRef
        self.name = name
        self.access = access
    }
}

/// A course as `courses.page` answers it (the fields of the REST representation; times as instants).
public struct CourseItem: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var description: String
    public var templateIDs: [String]
    public var templateMissing: Bool
    public var maxLabs: Int
    public var vmAccess: [CourseVMAccessItem]
    public var anonymousSmartRDP: Bool
    public var ssoRequired: Bool
    public var customContentEnabled: Bool
    public var customTitle: String?
    public var customContent: String?
    public var customContentIsDefault: Bool
    public var classCount: Int
    public var createdAt: Date
    public var lastDeployed: Date?
    public var ownerID: String
    public var ownerName: String
    public var ownerURL: String
    public var lastUpdatedByID: String
    public var lastUpdatedByName: String
    public var storage: Int

    public init(
        id: String, name: String, description: String, templateIDs: [String], templateMissing: Bool, maxLabs: Int,
        vmAccess: [CourseVMAccessItem], anonymousSmartRDP: Bool, ssoRequired: Bool, customContentEnabled: Bool,
        customTitle: String?, customContent: String?, customContentIsDefault: Bool, classCount: Int, createdAt: Date,
        lastDeployed: Date?, ownerID: String, ownerName: String, ownerURL: String, lastUpdatedByID: String,
        lastUpdatedByName: String, storage: Int
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.templateIDs = templateIDs
        self.templateMissing = templateMissing
        self.maxLabs = maxLabs
        self.vmAccess = vmAccess
        self.anonymousSmartRDP = anonymousSmartRDP
        self.ssoRequired = ssoRequired
        self.customContentEnabled = customContentEnabled
        self.customTitle = customTitle
        self.customContent = customContent
        self.customContentIsDefault = customContentIsDefault
        self.classCount = classCount
        self.createdAt = createdAt
        self.lastDeployed = lastDeployed
        self.ownerID = ownerID
        self.ownerName = ownerName
        self.ownerURL = ownerURL
        self.lastUpdatedByID = lastUpdatedByID
        self.lastUpdatedByName = lastUpdatedByName
        self.storage = storage
    }
}

/// A class as `classes.page` answers it. Times are instants; `timeZone` is the zone the REST API writes them in.
public struct ClassItem: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var description: String
    public var courseID: String
    public var startAt: Date
    public var endAt: Date?
    public var timeZone: String
    public var provisionHours: Int
    public var runHours: Int
    public var cleanupHours: Int?
    public var shutdownHours: Int?
    public var deleteAtEnd: Bool
    public var dailyStartupTime: String?
    public var dailyShutdownTime: String?
    public var startTime: String?
    public var endTime: String?
    public var runtimeLimit: Int?
    public var expirationDate: Date?
    public var accessCode: String
    public var state: String
    public var createdAt: Date
    public var ownerID: String
    public var ownerName: String
    public var ownerURL: String
    public var labCount: Int
    public var labsCreatedAt: Date?
    public var labsRunAt: Date?
    public var labsDeletedAt: Date?
    public var labsShutdownAt: Date?
    public var errorMessage: String?
    public var regions: [String]

    public init(
        id: String, name: String, description: String, courseID: String, startAt: Date, endAt: Date?,
        timeZone: String, provisionHours: Int, runHours: Int, cleanupHours: Int?, shutdownHours: Int?,
        deleteAtEnd: Bool, dailyStartupTime: String?, dailyShutdownTime: String?, startTime: String?,
        endTime: String?, runtimeLimit: Int?, expirationDate: Date?, accessCode: String, state: String,
        createdAt: Date, ownerID: String, ownerName: String, ownerURL: String, labCount: Int, labsCreatedAt: Date?,
        labsRunAt: Date?, labsDeletedAt: Date?, labsShutdownAt: Date?, errorMessage: String?, regions: [String]
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.courseID = courseID
        self.startAt = startAt
        self.endAt = endAt
        self.timeZone = timeZone
        self.provisionHours = provisionHours
        self.runHours = runHours
        self.cleanupHours = cleanupHours
        self.shutdownHours = shutdownHours
        self.deleteAtEnd = deleteAtEnd
        self.dailyStartupTime = dailyStartupTime
        self.dailyShutdownTime = dailyShutdownTime
        self.startTime = startTime
        self.endTime = endTime
        self.runtimeLimit = runtimeLimit
        self.expirationDate = expirationDate
        self.accessCode = accessCode
        self.state = state
        self.createdAt = createdAt
        self.ownerID = ownerID
        self.ownerName = ownerName
        self.ownerURL = ownerURL
        self.labCount = labCount
        self.labsCreatedAt = labsCreatedAt
        self.labsRunAt = labsRunAt
        self.labsDeletedAt = labsDeletedAt
        self.labsShutdownAt = labsShutdownAt
        self.errorMessage = errorMessage
        self.regions = regions
    }
}

/// A lab as `labs.page` answers it.
public struct LabItem: Sendable, Equatable, Codable {
    public var id: String
    public var classID: String
    public var name: String
    public var templateName: String
    public var templateID: String
    public var region: String
    public var configurationID: String?
    public var desktopsURL: String?
    public var state: String

    public init(
        id: String, classID: String, name: String, templateName: String, templateID: String, region: String,
        configurationID: String?, desktopsURL: String?, state: String
    ) {
        self.id = id
        self.classID = classID
        self.name = name
        self.templateName = templateName
        self.templateID = templateID
        self.region = region
        self.configurationID = configurationID
        self.desktopsURL = desktopsURL
        self.state = state
    }
}

/// A Classrooms audit activity as `audit.page` answers it.
public struct AuditItem: Sendable, Equatable, Codable {
    public var id: String
    public var activity: String
    public var userID: String
    public var userName: String
    public var targetType: String
    public var targetID: String
    public var targetName: String
    public var details: String
    public var createdAt: Date

    public init(
        id: String, activity: String, userID: String, userName: String, targetType: String, targetID: String,
        targetName: String, details: String, createdAt: Date
    ) {
        self.id = id
        self.activity = activity
        self.userID = userID
        self.userName = userName
        self.targetType = targetType
        self.targetID = targetID
        self.targetName = targetName
        self.details = details
        self.createdAt = createdAt
    }
}

/// The bulk reads classroom-service offers report-service.
public enum ClassroomPages {
    /// Who may call them.
    public static let access = WireAccess.only([.report, .admin])
    /// The most rows one `labs.rows` call may ask for (compact rows: 10,000 are about 2 MB of JSON).
    public static let labRowsMaximumLimit = 10_000
}

extension LabItem: RowConvertible {
    public static let rowColumns = [
        "id", "classID", "name", "templateName", "templateID", "region", "configurationID", "desktopsURL", "state",
    ]

    public var rowCells: [String?] {
        [id, classID, name, templateName, templateID, region, configurationID, desktopsURL, state]
    }

    public init(rowCells cells: [String?]) throws {
        guard cells.count == Self.rowColumns.count else {
            throw RowPageError("a lab row has \(cells.count) cells for \(Self.rowColumns.count) columns")
        }
        func required(_ index: Int) throws -> String {
            guard let value = cells[index] else { throw RowPageError("a lab row has no \(Self.rowColumns[index])") }
            return value
        }
        self.init(
            id: try required(0), classID: try required(1), name: try required(2), templateName: try required(3),
            templateID: try required(4), region: try required(5), configurationID: cells[6], desktopsURL: cells[7],
            state: try required(8))
    }
}
