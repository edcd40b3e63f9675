import XCTest
@testable import MetaSRKit

final class BenchmarkTests: XCTestCase {
    func testPercentilesInterpolateLinearlyBetweenClosestRanks() {
        let values = [40.0, 10.0, 30.0, 20.0]
        XCTAssertEqual(Percentile.of(values, 10), 13, accuracy: 1e-9)
        XCTAssertEqual(Percentile.of(values, 50), 25, accuracy: 1e-9)
        XCTAssertEqual(Percentile.of(values, 90), 37, accuracy: 1e-9)
        XCTAssertEqual(Percentile.of([7.5], 90), 7.5)
        XCTAssertEqual(Percentile.round3(12.00049), 12.0)
    }

    func testResultsJSONHasEveryKeyIncludingNulls() throws {
        let results = BenchmarkResults(
            manifest: try Fixtures.manifest(), computeUnits: "cpuAndNeuralEngine", inputSize: [256, 256],
            warmupRuns: 5, latenciesMs: [12.0004, 11, 13.5, 12.25], peakMemoryMb: nil,
            device: .init(model: "iPhone16,1", os: "iOS 17.5", soc: nil),
            timestamp: Date(timeIntervalSince1970: 1_748_779_200))
        let data = try results.jsonData()
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(object.keys), [
            "schema_version", "app", "device", "artifact", "runtime", "compute_units", "input_size", "scale",
            "warmup_runs", "runs", "latencies_ms", "median_ms", "p10_ms", "p90_ms", "peak_memory_mb", "timestamp",
        ])
        XCTAssertTrue(object["peak_memory_mb"] is NSNull)
        XCTAssertTrue((object["device"] as? [String: Any])?["soc"] is NSNull)
        XCTAssertEqual(object["median_ms"] as? Double, 12.125)
        XCTAssertEqual(object["runs"] as? Int, 4)
        XCTAssertEqual(object["timestamp"] as? String, "2025-06-01T12:00:00Z")
        XCTAssertEqual(try JSONDecoder().decode(BenchmarkResults.self, from: data), results)
    }

    func testParsesLaunchArguments() throws {
        XCTAssertNil(try BenchmarkOptions.parse(["/app/MetaSRDemo"]))
        let options = try XCTUnwrap(try BenchmarkOptions.parse(
            ["/app/MetaSRDemo", "-benchmark", "runs=20", "input=128x96", "-NSDocumentRevisionsDebugMode", "YES"]))
        XCTAssertEqual(options.runs, 20)
        XCTAssertEqual(options.warmup, 5)
        XCTAssertEqual(options.inputSize, [128, 96])
        XCTAssertThrowsError(try BenchmarkOptions.parse(["-benchmark", "runs=0"]))
        XCTAssertThrowsError(try BenchmarkOptions.parse(["-benchmark", "iterations=5"]))
        XCTAssertThrowsError(try BenchmarkOptions.parse(["-benchmark", "compute_units=npu"]))
    }
}
