import ServerKit
import SessionService

await ServiceLauncher.main(spec: SessionApplication.spec, start: SessionApplication.run)
