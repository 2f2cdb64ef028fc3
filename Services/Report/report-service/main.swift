import ServerKit
import ReportService

await ServiceLauncher.main(spec: ReportApplication.spec, start: ReportApplication.run)
