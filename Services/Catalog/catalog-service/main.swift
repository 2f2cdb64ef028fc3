import ServerKit
import CatalogService

await ServiceLauncher.main(spec: CatalogApplication.spec, start: CatalogApplication.run)
