// swift-tools-version:5.10
import PackageDescription

let package = Package(
    name: "MetaSRKit",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [
        .library(name: "MetaSRKit", targets: ["MetaSRKit"]),
    ],
    targets: [
        .target(name: "MetaSRKit"),
        .testTarget(name: "MetaSRKitTests", dependencies: ["MetaSRKit"]),
    ]
)
