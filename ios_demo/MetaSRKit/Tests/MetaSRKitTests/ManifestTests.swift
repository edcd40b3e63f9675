import CoreML
import XCTest
@testable import MetaSRKit

final class ManifestTests: XCTestCase {
    func testDecodesTheExporterManifest() throws {
        let manifest = try Fixtures.manifest()
        XCTAssertEqual(manifest.schemaVersion, 3)
        XCTAssertEqual(manifest.target, "coreml")
        XCTAssertEqual(manifest.scale, 2)
        XCTAssertEqual(manifest.file, String(format: Manifest.artifactPattern, manifest.scale))
        XCTAssertEqual(manifest.compiledModelName, "metasr_x2.mlmodelc")
        XCTAssertEqual(manifest.tile, TileSpec(size: 256, overlap: 16))
        XCTAssertEqual(try manifest.inputSize.height, 256)
        XCTAssertEqual(try manifest.inputSize.width, 256)
        XCTAssertEqual(try manifest.input(named: Manifest.strengthInput).shapes, [[1, 1, 1, 1]])
        XCTAssertEqual(manifest.outputs.map(\.name), [Manifest.outputName])
        XCTAssertEqual(manifest.mlComputeUnits, .cpuAndNeuralEngine)
    }

    func testDefaultStrengthKeepsTheEstimatedDegree() throws {
        XCTAssertEqual(try Fixtures.manifest().defaultStrength, -1)
        XCTAssertEqual(try Fixtures.manifest().input(named: Manifest.strengthInput).valueRange, [0, 1])
    }

    func testRejectsAStrengthWithoutADefaultOrOfTheWrongShape() throws {
        XCTAssertThrowsError(try Fixtures.manifest { $0.removeValue(forKey: "default") }.defaultStrength)
        XCTAssertThrowsError(try Fixtures.manifest { $0["shapes"] = [[1, 2, 1, 1]] }.defaultStrength)
    }

    func testMapsComputeUnitNames() {
        XCTAssertEqual(MLComputeUnits(resultName: "cpuOnly"), .cpuOnly)
        XCTAssertNil(MLComputeUnits(resultName: "CPU_AND_NE"))
        for units in [MLComputeUnits.all, .cpuOnly, .cpuAndGPU, .cpuAndNeuralEngine] {
            XCTAssertEqual(MLComputeUnits(resultName: units.resultName), units)
        }
    }
}
