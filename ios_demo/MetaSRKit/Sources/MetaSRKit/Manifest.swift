import Foundation

/// Errors with a one-line message naming the problem and the fix.
public struct MetaSRError: LocalizedError, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var errorDescription: String? { message }
}

/// `manifest.json`, written by `metasr-export` beside every artifact
/// (toolkit/metasr/validate/report.py, schema toolkit/metasr/schemas/manifest.schema.json).
public struct Manifest: Codable, Equatable, Sendable {
    public let schemaVersion: Int
    public let toolkitVersion: String
    public let target: String
    public let file: String
    public let modelSha256: String
    public let scale: Int
    public let inputs: [TensorSpec]
    public let outputs: [TensorSpec]
    public let tile: TileSpec
    /// Core ML only: the compute units the model was converted for (coremltools or MLComputeUnits spelling).
    public let computeUnits: String?

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case toolkitVersion = "toolkit_version"
        case target
        case file
        case modelSha256 = "model_sha256"
        case scale
        case inputs
        case outputs
        case tile
        case computeUnits = "compute_units"
    }

    public static let fileName = "manifest.json"
    public static let supportedSchemaVersion = 1
    public static let imageInput = "image"
    public static let modulationInput = "modulation"
    public static let outputName = "output"
    /// The Core ML artifact `metasr-export --target coreml` writes (%d is the scale); Xcode compiles it to .mlmodelc.
    public static let artifactPattern = "metasr_x%d.mlpackage"
    /// Manifests without `stages` / `channels_per_stage` state the layout only in the modulation input's description:
    /// "per stage (5): 32 gains then 32 biases; neutral = ...".
    public static let modulationLayoutPattern = #"per stage \((\d+)\): (\d+) gains then (\d+) biases"#

    public static func load(from url: URL) throws -> Manifest {
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url))
        guard manifest.schemaVersion == supportedSchemaVersion else {
            let version = manifest.schemaVersion
            throw MetaSRError("manifest schema_version \(version) is not \(supportedSchemaVersion); update the app")
        }
        return manifest
    }

    public func input(named name: String) throws -> TensorSpec {
        guard let spec = inputs.first(where: { $0.name == name }) else {
            throw MetaSRError("manifest has no input named '\(name)'; re-export with metasr-export")
        }
        return spec
    }

    /// (height, width) of the first exported image input size: the tile the model is fed.
    public var inputSize: (height: Int, width: Int) {
        get throws {
            let shape = try input(named: Self.imageInput).shapes[0]
            return (shape[2], shape[3])
        }
    }

    /// Stages and channels per stage of the modulation vector: the structured keys when present, else the description.
    public var modulationLayout: (stages: Int, channels: Int) {
        get throws {
            let spec = try input(named: Self.modulationInput)
            let width = spec.shapes[0][1]
            if let stages = spec.stages, let channels = spec.channelsPerStage {
                guard stages * 2 * channels == width else {
                    throw MetaSRError("modulation layout \(stages)x2x\(channels) does not match \(spec.shapes[0])")
                }
                return (stages, channels)
            }
            let text = spec.detail ?? ""
            let regex = try NSRegularExpression(pattern: Self.modulationLayoutPattern)
            guard let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else {
                throw MetaSRError("cannot read the modulation layout from '\(text)'; re-export with metasr-export")
            }
            let numbers = (1...3).map { Int((text as NSString).substring(with: match.range(at: $0)))! }
            let (stages, gains, biases) = (numbers[0], numbers[1], numbers[2])
            guard gains == biases, stages * (gains + biases) == width else {
                throw MetaSRError("modulation \(stages)x(\(gains)+\(biases)) does not match \(spec.shapes[0])")
            }
            return (stages, gains)
        }
    }

    /// Per stage: `channels` gains of 1, then `channels` biases of 0 (the manifest's "default": "neutral").
    public func neutralModulation() throws -> [Float] {
        let spec = try input(named: Self.modulationInput)
        guard spec.defaultValue == "neutral" else {
            throw MetaSRError("modulation input has no neutral default; re-export with metasr-export")
        }
        let (stages, channels) = try modulationLayout
        let stage = [Float](repeating: 1, count: channels) + [Float](repeating: 0, count: channels)
        return Array([[Float]](repeating: stage, count: stages).joined())
    }

    /// The model's resource name once Xcode has compiled it: metasr_x2.mlpackage -> metasr_x2.mlmodelc.
    public var compiledModelName: String {
        (file as NSString).deletingPathExtension + ".mlmodelc"
    }
}

public struct TensorSpec: Codable, Equatable, Sendable {
    public let name: String
    public let shapes: [[Int]]
    public let layout: String
    public let dtype: String?
    public let color: String?
    public let valueRange: [Double]?
    public let defaultValue: String?
    /// Modulation input only: stages, and channels per stage (each stage has that many gains, then as many biases).
    public let stages: Int?
    public let channelsPerStage: Int?
    public let detail: String?

    enum CodingKeys: String, CodingKey {
        case name
        case shapes
        case layout
        case dtype
        case color
        case valueRange = "value_range"
        case defaultValue = "default"
        case stages
        case channelsPerStage = "channels_per_stage"
        case detail = "description"
    }
}

public struct TileSpec: Codable, Equatable, Sendable {
    public let size: Int
    public let overlap: Int

    enum CodingKeys: String, CodingKey {
        case size
        case overlap
    }
}
