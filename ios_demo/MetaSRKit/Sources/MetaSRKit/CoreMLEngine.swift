import CoreGraphics
import CoreImage
import CoreML
import CoreVideo
import Foundation

/// The Core ML artifact (`metasr-export --target coreml`): image input "image" (RGB, 1/255 scaling inside the
/// model), tensor input "strength" (1, 1, 1, 1) unless the artifact is a bare student, image output "output".
public final class CoreMLEngine {
    public let manifest: Manifest
    public let computeUnits: MLComputeUnits
    public let tiler: Tiler
    /// Restoration strength fed with every tile: [0, 1] replaces the degradation degree the model estimates
    /// (0 = treat the frame as clean, 1 = restore as hard as possible); the manifest's default (-1) keeps it.
    /// A bare student (no strength input in its manifest) has no estimate to override and ignores it.
    public var strength: Float {
        get { strengthArray?[0].floatValue ?? Manifest.noStrength }
        set { strengthArray?[0] = NSNumber(value: newValue) }
    }
    private let model: MLModel
    private let strengthArray: MLMultiArray?
    private let context = CIContext(options: [.cacheIntermediates: false])
    private var tileBuffer: CVPixelBuffer?

    /// Load a compiled `.mlmodelc` (bundled by Xcode) or compile an `.mlpackage` (e.g. copied into Documents).
    public init(modelURL: URL, manifest: Manifest, computeUnits: MLComputeUnits? = nil) async throws {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits ?? manifest.mlComputeUnits
        var compiled = modelURL
        if modelURL.pathExtension != "mlmodelc" {
            compiled = try await MLModel.compileModel(at: modelURL)
        }
        let model = try await MLModel.load(contentsOf: compiled, configuration: configuration)
        let inputs = model.modelDescription.inputDescriptionsByName
        guard inputs[Manifest.imageInput]?.type == .image else {
            throw MetaSRError("\(manifest.file) has no image input '\(Manifest.imageInput)'; re-export it")
        }
        var strength: MLMultiArray?
        if manifest.hasStrengthInput {
            guard let constraint = inputs[Manifest.strengthInput]?.multiArrayConstraint else {
                throw MetaSRError("\(manifest.file) has no tensor input '\(Manifest.strengthInput)'; re-export it")
            }
            let shape = try manifest.input(named: Manifest.strengthInput).shapes[0].map { NSNumber(value: $0) }
            let array = try MLMultiArray(shape: shape, dataType: constraint.dataType)
            array[0] = NSNumber(value: try manifest.defaultStrength)
            strength = array
        }
        self.manifest = manifest
        self.computeUnits = configuration.computeUnits
        self.tiler = try Tiler(manifest: manifest)
        self.model = model
        self.strengthArray = strength
    }

    /// One model call on a tile-sized pixel buffer (32BGRA); returns the upscaled image buffer.
    public func predict(_ tile: CVPixelBuffer) throws -> CVPixelBuffer {
        var inputs: [String: MLFeatureValue] = [Manifest.imageInput: MLFeatureValue(pixelBuffer: tile)]
        if let strengthArray {
            inputs[Manifest.strengthInput] = MLFeatureValue(multiArray: strengthArray)
        }
        let features = try MLDictionaryFeatureProvider(dictionary: inputs)
        let result = try model.prediction(from: features)
        guard let output = result.featureValue(for: Manifest.outputName)?.imageBufferValue else {
            throw MetaSRError("\(manifest.file) returned no image output '\(Manifest.outputName)'; re-export it")
        }
        return output
    }

    /// Upscale a whole camera frame tile by tile and blend the tiles; returns an RGBA image scale x the frame.
    public func upscale(_ frame: CVPixelBuffer) throws -> CGImage {
        let width = CVPixelBufferGetWidth(frame)
        let height = CVPixelBufferGetHeight(frame)
        let source = CIImage(cvPixelBuffer: frame).clampedToExtent() // edge-pads tiles that hang over the frame
        var stitcher = Stitcher(width: width * tiler.scale, height: height * tiler.scale)
        let buffer = try makeTileBuffer()
        for tile in tiler.tiles(width: width, height: height) {
            // Core Image's origin is bottom-left; tiles are top-left.
            let rect = CGRect(x: tile.x, y: height - tile.y - tiler.tileHeight,
                              width: tiler.tileWidth, height: tiler.tileHeight)
            let shift = CGAffineTransform(translationX: -rect.minX, y: -rect.minY)
            let crop = source.cropped(to: rect).transformed(by: shift)
            context.render(crop, to: buffer)
            let output = try predict(buffer)
            try Self.withRGB(of: output) { pixel in stitcher.add(tile, tiler: tiler, pixel: pixel) }
        }
        return try Self.makeImage(rgba: stitcher.rgba8(), width: stitcher.width, height: stitcher.height)
    }

    private func makeTileBuffer() throws -> CVPixelBuffer {
        if let tileBuffer { return tileBuffer }
        var buffer: CVPixelBuffer?
        let attributes = [kCVPixelBufferIOSurfacePropertiesKey: [:]] as CFDictionary
        let status = CVPixelBufferCreate(kCFAllocatorDefault, tiler.tileWidth, tiler.tileHeight,
                                         kCVPixelFormatType_32BGRA, attributes, &buffer)
        guard status == kCVReturnSuccess, let buffer else {
            throw MetaSRError("cannot allocate a tile buffer (\(status))")
        }
        tileBuffer = buffer
        return buffer
    }

    /// Calls `body` with an RGB accessor over a 32BGRA or 32ARGB buffer (what Core ML returns for RGB images).
    static func withRGB(of buffer: CVPixelBuffer, _ body: ((Int, Int) -> SIMD3<Float>) -> Void) throws {
        let format = CVPixelBufferGetPixelFormatType(buffer)
        let offsets: (r: Int, g: Int, b: Int)
        switch format {
        case kCVPixelFormatType_32BGRA: offsets = (2, 1, 0)
        case kCVPixelFormatType_32ARGB: offsets = (1, 2, 3)
        default: throw MetaSRError("unexpected output pixel format \(format); expected 32BGRA or 32ARGB")
        }
        CVPixelBufferLockBaseAddress(buffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
        guard let base = CVPixelBufferGetBaseAddress(buffer)?.assumingMemoryBound(to: UInt8.self) else {
            throw MetaSRError("output pixel buffer has no base address")
        }
        let rowBytes = CVPixelBufferGetBytesPerRow(buffer)
        body { x, y in
            let p = base + y * rowBytes + 4 * x
            return SIMD3(Float(p[offsets.r]), Float(p[offsets.g]), Float(p[offsets.b])) / 255
        }
    }

    static func makeImage(rgba: [UInt8], width: Int, height: Int) throws -> CGImage {
        let info = CGBitmapInfo(rawValue: CGImageAlphaInfo.noneSkipLast.rawValue)
        guard let provider = CGDataProvider(data: Data(rgba) as CFData),
              let image = CGImage(width: width, height: height, bitsPerComponent: 8, bitsPerPixel: 32,
                                  bytesPerRow: 4 * width, space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: info,
                                  provider: provider, decode: nil, shouldInterpolate: true, intent: .defaultIntent)
        else { throw MetaSRError("cannot build the output image") }
        return image
    }
}

public extension Manifest {
    /// The manifest's compute_units as MLComputeUnits; the Neural Engine (CPU_AND_NE) when absent.
    var mlComputeUnits: MLComputeUnits {
        switch computeUnits {
        case "ALL", "all": .all
        case "CPU_ONLY", "cpuOnly": .cpuOnly
        case "CPU_AND_GPU", "cpuAndGPU": .cpuAndGPU
        case "CPU_AND_NE", "cpuAndNeuralEngine": .cpuAndNeuralEngine
        default: .cpuAndNeuralEngine
        }
    }
}

public extension MLComputeUnits {
    /// The name written to benchmark results ("compute_units").
    var resultName: String {
        switch self {
        case .all: "all"
        case .cpuOnly: "cpuOnly"
        case .cpuAndGPU: "cpuAndGPU"
        case .cpuAndNeuralEngine: "cpuAndNeuralEngine"
        @unknown default: "all"
        }
    }

    init?(resultName: String) {
        switch resultName {
        case "all": self = .all
        case "cpuOnly": self = .cpuOnly
        case "cpuAndGPU": self = .cpuAndGPU
        case "cpuAndNeuralEngine": self = .cpuAndNeuralEngine
        default: return nil
        }
    }
}
