import XCTest
@testable import MetaSRKit

final class RoutedDispatchTests: XCTestCase {
    func testDecodesTheRoutedManifest() throws {
        let manifest = try Fixtures.routedManifest()
        let routing = try XCTUnwrap(manifest.routing)
        XCTAssertEqual(manifest.file, String(format: Manifest.routedArtifactPattern, manifest.scale))
        XCTAssertEqual(manifest.minimumDeploymentTarget, "iOS18")
        XCTAssertEqual(routing.router.function, "router")
        XCTAssertEqual(routing.experts.map(\.function), ["expert_0", "expert_1"])
        XCTAssertEqual(Set(routing.experts.map(\.file) + [routing.router.file]), [manifest.file])
        XCTAssertEqual(routing.router.inputs.map(\.name), [Manifest.imageInput, Manifest.strengthInput])
        XCTAssertEqual(routing.router.output.name, Manifest.outputName)
        let dispatch = try RoutedDispatch(routing: routing, scale: manifest.scale)
        XCTAssertEqual(dispatch, RoutedDispatch(block: 64, thumbnail: 2, experts: 2, scale: 2))
        XCTAssertNil(try Fixtures.manifest().routing)
    }

    func testThumbnailKeepsEveryTthPixelOfEachRowAndColumn() {
        let (height, width, bpp) = (4, 6, 4)
        let source = (0..<(height * width * bpp)).map { UInt8($0) }
        var thumbnail = [UInt8](repeating: 0, count: 2 * 3 * bpp)
        let dispatch = RoutedDispatch(block: 2, thumbnail: 2, experts: 2, scale: 2)
        source.withUnsafeBytes { src in
            thumbnail.withUnsafeMutableBytes { dst in
                dispatch.makeThumbnail(of: src.baseAddress!, height: height, width: width, rowBytes: width * bpp,
                                       into: dst.baseAddress!, destinationRowBytes: 3 * bpp)
            }
        }
        for j in 0..<2 {
            for i in 0..<3 {
                for c in 0..<bpp {
                    XCTAssertEqual(thumbnail[(j * 3 + i) * bpp + c], source[(2 * j * width + 2 * i) * bpp + c])
                }
            }
        }
    }

    func testRoutesAreTheArgminOverExpertsWithTiesToTheFirst() throws {
        let scores: [Float] = [
            0.5, 0.1, 0.2, 0.3,
            0.4, 0.1, 0.9, 0.3,
            0.6, 0.7, 0.1, 0.3,
        ]
        let dispatch = RoutedDispatch(block: 8, thumbnail: 1, experts: 3, scale: 2)
        XCTAssertEqual(try dispatch.routes(scores: scores, rows: 1, cols: 4), [1, 0, 2, 0])
        XCTAssertThrowsError(try dispatch.routes(scores: scores, rows: 2, cols: 4))
        XCTAssertEqual(RoutedDispatch.used([1, 0, 1, 2, 0]), [1, 0, 2])
    }

    func testEachBlockComesFromTheExpertItNames() throws {
        // a 4 x 8 tile, two 4 x 4 blocks: the left from expert 0 (bytes 10), the right from expert 1 (bytes 20)
        let (height, width, scale, bpp) = (4, 8, 2, 4)
        let dispatch = RoutedDispatch(block: 4, thumbnail: 2, experts: 2, scale: scale)
        XCTAssertTrue(try dispatch.blocks(height: height, width: width) == (1, 2))
        XCTAssertThrowsError(try dispatch.blocks(height: 6, width: 8))
        let rowBytes = width * scale * bpp
        let outputs = [[UInt8](repeating: 10, count: height * scale * rowBytes),
                       [UInt8](repeating: 20, count: height * scale * rowBytes)]
        var composed = [UInt8](repeating: 0, count: height * scale * rowBytes)
        outputs[0].withUnsafeBytes { zero in
            outputs[1].withUnsafeBytes { one in
                composed.withUnsafeMutableBytes { out in
                    let pixels = [zero.baseAddress!, one.baseAddress!]
                    dispatch.compose(routes: [0, 1], height: height, width: width,
                                     output: { (pixels[$0], rowBytes) }, into: out.baseAddress!,
                                     destinationRowBytes: rowBytes)
                }
            }
        }
        for y in 0..<(height * scale) {
            for x in 0..<(width * scale) {
                XCTAssertEqual(composed[y * rowBytes + x * bpp], x < 4 * scale ? 10 : 20)
            }
        }
    }
}
