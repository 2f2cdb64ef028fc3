import Contracts
import Foundation

/// One sample of every wire message (each method's params and result), as Swift values. The golden files in
/// `Fixtures/wire/` are these samples as the wire writes them; the tests check both directions.
enum WireMessageSamples {
    static let t0 = Date(timeIntervalSince1970: 1_780_000_000.25)
    static let t1 = Date(timeIntervalSince1970: 1_780_003_600.5)

    static let user = AuthenticatedUser(
        id: "12", username: "jo", email: "jo@example.com", firstName: "Jo", lastName: "Doe", role: .robot,
        classroomsAccess: true, userManager: false)

    static let summary = SessionSummary(
        name: "portal-w01-s001", state: .running, namespace: "portal-w01-s001", user: "jo", started: t0, expires: t1,
        countdown: 3599, extendable: false)

    static let environment = LabEnvironment(
        name: "lab7-s001", lab: "7", workshop: "hello-http", target: .running, phase: .stopped, error: "port busy",
        url: "http://lab.test/", updatedAt: t0)

    static let workshop = WorkshopDefinition(
        name: "hello-http", title: "Hello HTTP", description: "A web server", vendor: "labportal", authors: ["Ann"],
        difficulty: "beginner", duration: "30m", tags: ["http"], logo: "", url: "https://example.com/ws",
        labels: ["kind": "demo"], content: WorkshopContent(image: "img", files: "files"),
        command: ["python3", "-m", "http.server"], vms: [WorkshopVM(id: "vm1", name: "web")], region: "local",
        parameters: [RequestParameter(name: "WELCOME", value: "hi")])

    static let snapshot = CatalogPortal.Snapshot(
        portal: PortalSettings(
            name: "labportal", uid: "u-1", url: "http://localhost:8080", labels: ["team": "a"],
            sessions: SessionLimits(maximum: 10, registered: 2, anonymous: 1), indexURL: "http://index.test/"),
        generation: 3,
        environments: [
            CatalogEnvironment(
                name: "labportal-w01", position: 1, state: .running, workshop: workshop,
                settings: EnvironmentSettings(
                    workshop: "hello-http", capacity: 5, reserved: 1, initial: 2, expires: 1800, deadline: 3600,
                    overtime: 0, orphaned: 600, labels: ["env": "one"]))
        ])

    static let course = CourseItem(
        id: "3", name: "Intro", description: "First", templateIDs: ["hello-http"], templateMissing: false, maxLabs: 5,
        vmAccess: [CourseVMAccessItem(vmRef: "vm1", name: "web", access: "rdp")], anonymousSmartRDP: false,
        ssoRequired: false, customContentEnabled: true, customTitle: "T", customContent: nil,
        customContentIsDefault: false, classCount: 2, createdAt: t0, lastDeployed: nil, ownerID: "1",
        ownerName: "admin", ownerURL: "http://localhost:8080/users/1", lastUpdatedByID: "1",
        lastUpdatedByName: "admin", storage: 0)

    static let classItem = ClassItem(
        id: "4", name: "Monday", description: "", courseID: "3", startAt: t0, endAt: t1, timeZone: "Europe/Paris",
        provisionHours: 1, runHours: 2, cleanupHours: nil, shutdownHours: 1, deleteAtEnd: true,
        dailyStartupTime: "08:00", dailyShutdownTime: nil, startTime: nil, endTime: nil, runtimeLimit: 120,
        expirationDate: nil, accessCode: "abc", state: "scheduled", createdAt: t0, ownerID: "1", ownerName: "admin",
        ownerURL: "http://localhost:8080/users/1", labCount: 2, labsCreatedAt: nil, labsRunAt: t1, labsDeletedAt: nil,
        labsShutdownAt: nil, errorMessage: nil, regions: ["local"])

    static let lab = LabItem(
        id: "9", classID: "4", name: "Student 1", templateName: "Hello HTTP", templateID: "hello-http",
        region: "local", configurationID: "lab9-s001", desktopsURL: "http://localhost:8080/desktops/x", state: "running")

    static let audit = AuditItem(
        id: "21", activity: "CreateClassHistory", userID: "1", userName: "admin", targetType: "class", targetID: "4",
        targetName: "Monday", details: "created", createdAt: t0)

    static let filters = ListFilters(
        query: "name:Intro", createdAt: "2026/01/01 00:00:00..", lastDeployed: nil, sort: "name", classID: "4")

    /// (method, "params" or "result", the value's type-erased encoder and decoder round trip).
    static let all: [Sample] = [
        .init(WirePing.self, params: Empty(), result: WirePing.Result(service: "catalog", version: "1.0", time: "2026-06-01T00:00:00.000Z")),
        .init(IdentityAuthenticate.self, params: .init(authorization: "Bearer abc"), result: user),
        .init(
            SessionsOverview.self, params: .init(includeSessions: true),
            result: .init(
                allocated: 1,
                environments: ["portal-w01": .init(allocated: 1, available: 2, active: 3, sessions: [summary])])),
        .init(
            SessionsPage.self,
            params: PageRequest(cursor: "c1", limit: 500, filters: .init(query: "state:running", createdAt: "..2026/01/01")),
            result: Page(
                items: [
                    SessionItem(
                        name: "portal-w01-s001", environment: "portal-w01", workshop: "hello-http", state: .stopped,
                        user: "jo", createdAt: t0, startedAt: t0, expiresAt: t1, stoppedAt: t1, url: "http://lab.test/",
                        errorMessage: nil)
                ], nextCursor: "c2")),
        .init(
            LabsApply.self, params: .init(lab: "7", workshop: "hello-http", target: .running, owner: "Student 1"),
            result: .init(environment: environment)),
        .init(LabsStatus.self, params: .init(labs: ["7", "8"]), result: .init(environments: [environment])),
        .init(CatalogPortal.self, params: Empty(), result: snapshot),
        .init(
            AuditRecord.self,
            params: .init(
                id: "a-1", activity: "GrantUserClassroomAccessHistory", actorID: "1", actorName: "Admin",
                targetType: "user", targetID: "12", targetName: "jo", details: "classrooms_access true", at: t0),
            result: Empty()),
        .init(CoursesPage.self, params: PageRequest(cursor: nil, limit: 1000, filters: filters), result: Page(items: [course], nextCursor: nil)),
        .init(ClassesPage.self, params: PageRequest(cursor: "d.1.4", limit: 2, filters: filters), result: Page(items: [classItem], nextCursor: "x")),
        .init(LabsPage.self, params: PageRequest(cursor: "9", limit: 10, filters: filters), result: Page(items: [lab], nextCursor: "9")),
        .init(AuditPage.self, params: PageRequest(cursor: nil, limit: 1, filters: ListFilters()), result: Page(items: [audit], nextCursor: "21")),
    ]

    struct Sample: Sendable {
        var method: String
        var params: @Sendable (JSONEncoder) throws -> Data
        var result: @Sendable (JSONEncoder) throws -> Data
        /// Decodes the golden params and result and answers whether each equals the sample.
        var decodesTo: @Sendable (JSONDecoder, _ params: Data, _ result: Data) throws -> (Bool, Bool)

        init<Method: WireMethod>(_ method: Method.Type, params: Method.Params, result: Method.Result) {
            self.method = Method.name
            self.params = { try $0.encode(params) }
            self.result = { try $0.encode(result) }
            self.decodesTo = { decoder, p, r in
                (try decoder.decode(Method.Params.self, from: p) == params,
                 try decoder.decode(Method.Result.self, from: r) == result)
            }
        }
    }
}
