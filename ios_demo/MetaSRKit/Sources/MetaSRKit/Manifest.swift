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
    /// Core ML only: the oldest OS the model loads on ("iOS17"; "iOS18" for a routed multifunction package).
    public let minimumDeploymentTarget: String?
    /// A routed artifact's router and experts (model.graph "routed"); nil for a plain model.
    public let routing: RoutingSpec?

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
        case minimumDeploymentTarget = "minimum_deployment_target"
        case routing
    }

    public static let fileName = "manifest.json"
    public static let supportedSchemaVersion = 3
    public static let imageInput = "image"
    public static let strengthInput = "strength"
    /// What `strength` reads for a bare student, which has no strength input (the value is never fed).
    public static let noStrength: Float = -1
    public static let outputName = "output"
    /// The Core ML artifact `metasr-export --target coreml` writes (%d is the scale); Xcode compiles it to .mlmodelc.
    public static let artifactPattern = "metasr_x%d.mlpackage"
    /// A routed checkpoint's artifact: one multifunction package, a function per router and expert (iOS 18).
    public static let routedArtifactPattern = "metasr_x%d_routed.mlpackage"

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

    /// Whether the artifact takes a strength input: MetaSR graphs do, a bare student does not.
    public var hasStrengthInput: Bool {
        inputs.contains { $0.name == Self.strengthInput }
    }

    /// The strength to feed when the user picks none: -1, "use the degradation degree the model estimates".
    /// A value in [0, 1] replaces the estimate (0 = treat the frame as clean, 1 = restore as hard as possible).
    public var defaultStrength: Float {
        get throws {
            let spec = try input(named: Self.strengthInput)
            guard spec.shapes[0].reduce(1, *) == 1, let value = spec.defaultValue else {
                throw MetaSRError("strength input \(spec.shapes[0]) has no single default value; re-export it")
            }
            return Float(value)
        }
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
    /// Strength input: the value apps feed by default (-1: use the estimated degradation degree).
    public let defaultValue: Double?
    public let detail: String?

    enum CodingKeys: String, CodingKey {
        case name
        case shapes
        case layout
        case dtype
        case color
        case valueRange = "value_range"
        case defaultValue = "default"
        case detail = "description"
    }
}

/// `routing` of a routed artifact: per app tile, the router reads the thumbnail (every `thumbnail`-th pixel of each row
/// and column) and the strength, and scores every expert for each `tile` x `tile` block of the tile; each block's
/// output comes from the expert with the lowest score (see `RoutedDispatch`).
public struct RoutingSpec: Codable, Equatable, Sendable {
    public let tile: Int
    public let thumbnail: Int
    public let router: RouterSpec
    public let experts: [FunctionSpec]
    /// "hard": each block from exactly one expert.
    public let blending: String
    public let dispatch: String?

    enum CodingKeys: String, CodingKey {
        case tile
        case thumbnail
        case router
        case experts
        case blending
        case dispatch
    }

    public static let hardBlending = "hard"
}

/// The router: its function name and file, its inputs (image thumbnail, strength) and its NKHW scores output.
public struct RouterSpec: Codable, Equatable, Sendable {
    public let function: String
    public let file: String
    public let inputs: [TensorSpec]
    public let output: TensorSpec

    enum CodingKeys: String, CodingKey {
        case function
        case file
        case inputs
        case output
    }
}

/// One function of a routed artifact: a function of that name in the shared multifunction package.
public struct FunctionSpec: Codable, Equatable, Sendable {
    public let function: String
    public let file: String

    enum CodingKeys: String, CodingKey {
        case function
        case file
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
