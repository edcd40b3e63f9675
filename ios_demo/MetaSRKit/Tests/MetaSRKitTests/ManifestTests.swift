import CoreML
import XCTest
@testable import MetaSRKit

final class ManifestTests: XCTestCase {
    func testDecodesTheExporterManifest() throws {
        let manifest = try Fixtures.manifest()
        XCTAssertEqual(manifest.schemaVersion, 1)
        XCTAssertEqual(manifest.target, "coreml")
        XCTAssertEqual(manifest.scale, 2)
        XCTAssertEqual(manifest.file, String(format: Manifest.artifactPattern, manifest.scale))
        XCTAssertEqual(manifest.compiledModelName, "metasr_x2.mlmodelc")
        XCTAssertEqual(manifest.tile, TileSpec(size: 256, overlap: 16))
        XCTAssertEqual(try manifest.inputSize.height, 256)
        XCTAssertEqual(try manifest.inputSize.width, 256)
        XCTAssertEqual(try manifest.input(named: Manifest.modulationInput).shapes, [[1, 320, 1, 1]])
        XCTAssertEqual(manifest.outputs.map(\.name), [Manifest.outputName])
        XCTAssertEqual(manifest.mlComputeUnits, .cpuAndNeuralEngine)
    }

    func testNeutralModulationIsGainsOneThenBiasesZeroPerStage() throws {
        let (stages, channels) = try Fixtures.manifest().modulationLayout
        XCTAssertEqual(stages, 5)
        XCTAssertEqual(channels, 32)
        let values = try Fixtures.manifest().neutralModulation()
        XCTAssertEqual(values.count, 320)
        XCTAssertEqual(values.filter { $0 == 1 }.count, 160)
        XCTAssertEqual(Array(values[0..<32]), [Float](repeating: 1, count: 32))
        XCTAssertEqual(Array(values[32..<64]), [Float](repeating: 0, count: 32))
        XCTAssertEqual(values[64], 1)
    }

    func testFallsBackToTheDescriptionWithoutStructuredKeys() throws {
        let manifest = try Fixtures.manifest { modulation in
            modulation.removeValue(forKey: "stages")
            modulation.removeValue(forKey: "channels_per_stage")
        }
        XCTAssertNil(try manifest.input(named: Manifest.modulationInput).stages)
        XCTAssertEqual(try manifest.modulationLayout.channels, 32)
        XCTAssertEqual(try manifest.neutralModulation(), try Fixtures.manifest().neutralModulation())
    }

    func testRejectsAModulationLayoutThatDisagreesWithTheShape() throws {
        XCTAssertThrowsError(try Fixtures.manifest { $0["stages"] = 4 }.neutralModulation())
        let text = try Fixtures.manifest { modulation in
            modulation.removeValue(forKey: "stages")
            modulation.removeValue(forKey: "channels_per_stage")
            modulation["description"] = "per stage (4): 32 gains then 32 biases; neutral = gains 1, biases 0"
        }
        XCTAssertThrowsError(try text.neutralModulation())
    }

    func testMapsComputeUnitNames() {
        XCTAssertEqual(MLComputeUnits(resultName: "cpuOnly"), .cpuOnly)
        XCTAssertNil(MLComputeUnits(resultName: "CPU_AND_NE"))
        for units in [MLComputeUnits.all, .cpuOnly, .cpuAndGPU, .cpuAndNeuralEngine] {
            XCTAssertEqual(MLComputeUnits(resultName: units.resultName), units)
        }
    }
}
