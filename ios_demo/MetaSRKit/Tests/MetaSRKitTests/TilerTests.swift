import XCTest
@testable import MetaSRKit

final class TilerTests: XCTestCase {
    func testOriginsOverlapAndEndFlush() {
        let tiler = Tiler(tileWidth: 64, tileHeight: 64, overlap: 8, scale: 2)
        XCTAssertEqual(tiler.origins(length: 164, tile: 64), [0, 56, 100])
        XCTAssertEqual(tiler.origins(length: 64, tile: 64), [0])
        XCTAssertEqual(tiler.origins(length: 40, tile: 64), [0])
    }

    func testStitchingAnExactModelReproducesItsOutput() {
        let (width, height, scale) = (150, 90, 2)
        let tiler = Tiler(tileWidth: 48, tileHeight: 32, overlap: 6, scale: scale)
        // A "model" that upscales by nearest neighbour: every tile agrees with the whole-frame answer.
        func value(_ x: Int, _ y: Int) -> SIMD3<Float> {
            let (sx, sy) = (min(x / scale, width - 1), min(y / scale, height - 1))
            return SIMD3(Float(sx) / 150, Float(sy) / 90, Float((sx * 7 + sy) % 10) / 10)
        }
        var stitcher = Stitcher(width: width * scale, height: height * scale)
        for tile in tiler.tiles(width: width, height: height) {
            stitcher.add(tile, tiler: tiler) { i, j in value(tile.x * scale + i, tile.y * scale + j) }
        }
        let rgb = stitcher.rgb()
        for y in stride(from: 0, to: height * scale, by: 7) {
            for x in stride(from: 0, to: width * scale, by: 5) {
                let o = 3 * (y * width * scale + x)
                let expected = value(x, y)
                XCTAssertEqual(rgb[o], expected.x, accuracy: 1e-5)
                XCTAssertEqual(rgb[o + 1], expected.y, accuracy: 1e-5)
                XCTAssertEqual(rgb[o + 2], expected.z, accuracy: 1e-5)
            }
        }
    }
}
