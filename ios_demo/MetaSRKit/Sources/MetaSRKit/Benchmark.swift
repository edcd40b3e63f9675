import CoreML
import CoreVideo
import Darwin
import Foundation

/// The benchmark launch arguments: `-benchmark runs=50 warmup=5 input=256x256 compute_units=cpuAndNeuralEngine`.
/// Every key is optional; `input` defaults to the manifest's first input size, `compute_units` to the manifest's.
public struct BenchmarkOptions: Equatable, Sendable {
    public static let flag = "-benchmark"
    public static let runsKey = "runs"
    public static let warmupKey = "warmup"
    public static let inputKey = "input"
    public static let computeUnitsKey = "compute_units"

    public var runs = 50
    public var warmup = 5
    /// [height, width]
    public var inputSize: [Int]?
    /// An MLComputeUnits name as written to the results: all, cpuOnly, cpuAndGPU, cpuAndNeuralEngine.
    public var computeUnits: String?

    public init() {}

    /// The options after `-benchmark` in `arguments`, or nil when the app was launched without it.
    public static func parse(_ arguments: [String]) throws -> BenchmarkOptions? {
        guard let flagIndex = arguments.firstIndex(of: flag) else { return nil }
        var options = BenchmarkOptions()
        for token in arguments[(flagIndex + 1)...] {
            if token.hasPrefix("-") { break } // the next flag, e.g. one Xcode adds
            let parts = token.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw MetaSRError("benchmark argument '\(token)' is not key=value, e.g. runs=50")
            }
            let (key, value) = (parts[0], parts[1])
            switch key {
            case runsKey:
                guard let runs = Int(value), runs >= 1 else {
                    throw MetaSRError("runs=\(value) must be an integer >= 1")
                }
                options.runs = runs
            case warmupKey:
                guard let warmup = Int(value), warmup >= 0 else {
                    throw MetaSRError("warmup=\(value) must be an integer >= 0")
                }
                options.warmup = warmup
            case inputKey:
                let dims = value.lowercased().split(separator: "x").compactMap { Int($0) }
                guard dims.count == 2, dims.allSatisfy({ $0 > 0 }) else {
                    throw MetaSRError("input=\(value) is not HxW, e.g. 256x256")
                }
                options.inputSize = dims
            case computeUnitsKey:
                guard MLComputeUnits(resultName: value) != nil else {
                    throw MetaSRError("compute_units=\(value): use all, cpuOnly, cpuAndGPU or cpuAndNeuralEngine")
                }
                options.computeUnits = value
            default:
                throw MetaSRError("unknown benchmark argument '\(key)'; use runs, warmup, input or compute_units")
            }
        }
        return options
    }
}

/// Benchmark results JSON, in the format of toolkit/metasr/schemas/benchmark_results.schema.json
/// (read back by metasr.profile.results.load_results).
public struct BenchmarkResults: Codable, Equatable, Sendable {
    public struct Device: Codable, Equatable, Sendable {
        public let model: String
        public let os: String
        public let soc: String?

        enum CodingKeys: String, CodingKey {
            case model
            case os
            case soc
        }

        public init(model: String, os: String, soc: String?) {
            self.model = model
            self.os = os
            self.soc = soc
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(model, forKey: .model)
            try container.encode(os, forKey: .os)
            try container.encode(soc, forKey: .soc) // null when unknown: the schema requires the key
        }
    }

    public struct Artifact: Codable, Equatable, Sendable {
        public let file: String
        public let target: String
        public let modelSha256: String

        enum CodingKeys: String, CodingKey {
            case file
            case target
            case modelSha256 = "model_sha256"
        }
    }

    public let schemaVersion: Int
    public let app: String
    public let device: Device
    public let artifact: Artifact
    public let runtime: String
    public let computeUnits: String
    public let inputSize: [Int]
    public let scale: Int
    public let warmupRuns: Int
    public let runs: Int
    public let latenciesMs: [Double]
    public let medianMs: Double
    public let p10Ms: Double
    public let p90Ms: Double
    public let peakMemoryMb: Double?
    public let timestamp: String

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case app
        case device
        case artifact
        case runtime
        case computeUnits = "compute_units"
        case inputSize = "input_size"
        case scale
        case warmupRuns = "warmup_runs"
        case runs
        case latenciesMs = "latencies_ms"
        case medianMs = "median_ms"
        case p10Ms = "p10_ms"
        case p90Ms = "p90_ms"
        case peakMemoryMb = "peak_memory_mb"
        case timestamp
    }

    public static let currentSchemaVersion = 1
    public static let appName = "ios_demo"
    public static let runtimeName = "coreml"

    /// Results of timed runs; latencies and statistics are rounded to microseconds.
    public init(manifest: Manifest, computeUnits: String, inputSize: [Int], warmupRuns: Int, latenciesMs: [Double],
                peakMemoryMb: Double?, device: Device, timestamp: Date) {
        let latencies = latenciesMs.map(Percentile.round3)
        self.schemaVersion = Self.currentSchemaVersion
        self.app = Self.appName
        self.device = device
        self.artifact = Artifact(file: manifest.file, target: manifest.target, modelSha256: manifest.modelSha256)
        self.runtime = Self.runtimeName
        self.computeUnits = computeUnits
        self.inputSize = inputSize
        self.scale = manifest.scale
        self.warmupRuns = warmupRuns
        self.runs = latencies.count
        self.latenciesMs = latencies
        self.medianMs = Percentile.round3(Percentile.of(latencies, 50))
        self.p10Ms = Percentile.round3(Percentile.of(latencies, 10))
        self.p90Ms = Percentile.round3(Percentile.of(latencies, 90))
        self.peakMemoryMb = peakMemoryMb
        self.timestamp = ISO8601DateFormatter().string(from: timestamp)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(schemaVersion, forKey: .schemaVersion)
        try container.encode(app, forKey: .app)
        try container.encode(device, forKey: .device)
        try container.encode(artifact, forKey: .artifact)
        try container.encode(runtime, forKey: .runtime)
        try container.encode(computeUnits, forKey: .computeUnits)
        try container.encode(inputSize, forKey: .inputSize)
        try container.encode(scale, forKey: .scale)
        try container.encode(warmupRuns, forKey: .warmupRuns)
        try container.encode(runs, forKey: .runs)
        try container.encode(latenciesMs, forKey: .latenciesMs)
        try container.encode(medianMs, forKey: .medianMs)
        try container.encode(p10Ms, forKey: .p10Ms)
        try container.encode(p90Ms, forKey: .p90Ms)
        try container.encode(peakMemoryMb, forKey: .peakMemoryMb) // null when unknown: the schema requires the key
        try container.encode(timestamp, forKey: .timestamp)
    }

    /// Pretty-printed JSON with sorted keys, as written to Documents/benchmark_results.json.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }
}

/// Percentiles as metasr.profile.results computes them: linear interpolation between closest ranks.
public enum Percentile {
    public static func of(_ values: [Double], _ p: Double) -> Double {
        precondition(!values.isEmpty, "no latencies")
        let sorted = values.sorted()
        let rank = p / 100 * Double(sorted.count - 1)
        let lo = Int(rank.rounded(.down))
        let hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - Double(lo))
    }

    public static func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}

public enum Benchmark {
    public static let resultsFileName = "benchmark_results.json"
    public static let errorFileName = "benchmark_error.txt"

    /// Time `engine.predict` on one input of the requested size (untimed warm-up first).
    public static func run(_ engine: CoreMLEngine, options: BenchmarkOptions) throws -> BenchmarkResults {
        var size = options.inputSize ?? []
        if size.isEmpty {
            let exported = try engine.manifest.inputSize
            size = [exported.height, exported.width]
        }
        let (height, width) = (size[0], size[1])
        let input = try makeInput(width: width, height: height)
        for _ in 0..<options.warmup { _ = try engine.predict(input) }
        var latencies: [Double] = []
        for _ in 0..<options.runs {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try engine.predict(input)
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return BenchmarkResults(manifest: engine.manifest, computeUnits: engine.computeUnits.resultName,
                                inputSize: [height, width], warmupRuns: options.warmup, latenciesMs: latencies,
                                peakMemoryMb: peakMemoryMB(), device: currentDevice(), timestamp: Date())
    }

    /// Write `results` atomically into `directory` (the app's Documents folder).
    @discardableResult
    public static func write(_ results: BenchmarkResults, to directory: URL) throws -> URL {
        let url = directory.appendingPathComponent(resultsFileName)
        try results.jsonData().write(to: url, options: .atomic)
        return url
    }

    /// A deterministic 32BGRA test image.
    static func makeInput(width: Int, height: Int) throws -> CVPixelBuffer {
        var buffer: CVPixelBuffer?
        let attributes = [kCVPixelBufferIOSurfacePropertiesKey: [:]] as CFDictionary
        let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, kCVPixelFormatType_32BGRA,
                                         attributes, &buffer)
        guard status == kCVReturnSuccess, let buffer else {
            throw MetaSRError("cannot allocate a \(height)x\(width) input")
        }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        let base = CVPixelBufferGetBaseAddress(buffer)!.assumingMemoryBound(to: UInt8.self)
        let rowBytes = CVPixelBufferGetBytesPerRow(buffer)
        for y in 0..<height {
            for x in 0..<width {
                let p = base + y * rowBytes + 4 * x
                p[0] = UInt8((x * 7 + y * 3) & 0xFF)
                p[1] = UInt8((x * 5 + y * 11) & 0xFF)
                p[2] = UInt8((x * 13 + y * 2) & 0xFF)
                p[3] = 255
            }
        }
        return buffer
    }

    /// Hardware identifier (e.g. iPhone16,1) and OS version; Apple does not report the chip, so soc is null.
    public static func currentDevice() -> BenchmarkResults.Device {
        var info = utsname()
        uname(&info)
        let machine = withUnsafeBytes(of: &info.machine) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let model = ProcessInfo.processInfo.environment["SIMULATOR_MODEL_IDENTIFIER"] ?? machine
        let v = ProcessInfo.processInfo.operatingSystemVersion
        #if os(iOS)
        let name = "iOS"
        #else
        let name = "macOS"
        #endif
        let patch = v.patchVersion > 0 ? ".\(v.patchVersion)" : ""
        let os = "\(name) \(v.majorVersion).\(v.minorVersion)\(patch)"
        return BenchmarkResults.Device(model: model, os: os, soc: nil)
    }

    /// Peak physical footprint of this process (what iOS's memory limit counts), or nil if the kernel does not say.
    public static func peakMemoryMB() -> Double? {
        var info = task_vm_info_data_t()
        var count = mach_msg_type_number_t(MemoryLayout<task_vm_info_data_t>.size / MemoryLayout<integer_t>.size)
        let result = withUnsafeMutablePointer(to: &info) { pointer in
            pointer.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
                task_info(mach_task_self_, task_flavor_t(TASK_VM_INFO), $0, &count)
            }
        }
        guard result == KERN_SUCCESS, info.ledger_phys_footprint_peak > 0 else { return nil }
        return (Double(info.ledger_phys_footprint_peak) / 1_048_576 * 10).rounded() / 10
    }
}
