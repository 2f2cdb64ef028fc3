import ServerKit
import ClassroomService

await ServiceLauncher.main(spec: ClassroomApplication.spec, start: ClassroomApplication.run)
