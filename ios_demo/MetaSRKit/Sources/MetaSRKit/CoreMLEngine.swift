import CoreGraphics
import CoreImage
import CoreML
import CoreVideo
import Foundation

/// The Core ML artifact (`metasr-export --target coreml`): image input "image" (RGB, 1/255 scaling inside the
/// model), tensor input "strength" (1, 1, 1, 1) unless the artifact is a bare student, image output "output".
/// A routed artifact is one multifunction package (iOS 18): the router (thumbnail image and strength in, NKHW scores
/// "output" out) and the experts (image in, image out), each loaded by function name and dispatched per tile.
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
    /// The model, or a routed artifact's router (both take the image and the strength).
    private let model: MLModel
    /// A routed artifact's experts, in manifest order, and how tiles are dispatched to them; empty / nil otherwise.
    private let experts: [MLModel]
    private let dispatch: RoutedDispatch?
    private let strengthArray: MLMultiArray?
    private let context = CIContext(options: [.cacheIntermediates: false])
    private var tileBuffer: CVPixelBuffer?
    private var thumbnailBuffers: [Int: CVPixelBuffer] = [:] // by width << 32 | height

    /// Load a compiled `.mlmodelc` (bundled by Xcode) or compile an `.mlpackage` (e.g. copied into Documents).
    public init(modelURL: URL, manifest: Manifest, computeUnits: MLComputeUnits? = nil) async throws {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits ?? manifest.mlComputeUnits
        var compiled = modelURL
        if modelURL.pathExtension != "mlmodelc" {
            compiled = try await MLModel.compileModel(at: modelURL)
        }
        let model: MLModel
        var experts: [MLModel] = []
        var dispatch: RoutedDispatch?
        if let routing = manifest.routing {
            guard #available(iOS 18.0, macOS 15.0, *) else {
                let needs = manifest.minimumDeploymentTarget ?? "iOS18"
                throw MetaSRError("\(manifest.file) is a routed multifunction model for \(needs); update the OS")
            }
            let files = Set([routing.router.file] + routing.experts.map(\.file))
            guard files == [manifest.file] else {
                throw MetaSRError("routing names \(files.sorted()), not one package \(manifest.file); re-export it")
            }
            model = try await Self.load(compiled, function: routing.router.function, configuration: configuration)
            for expert in routing.experts {
                experts.append(try await Self.load(compiled, function: expert.function, configuration: configuration))
            }
            dispatch = try RoutedDispatch(routing: routing, scale: manifest.scale)
        } else {
            model = try await MLModel.load(contentsOf: compiled, configuration: configuration)
        }
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
        self.experts = experts
        self.dispatch = dispatch
        self.strengthArray = strength
    }

    /// One function of a multifunction package (MLModelConfiguration.functionName).
    @available(iOS 18.0, macOS 15.0, *)
    private static func load(_ url: URL, function: String,
                             configuration: MLModelConfiguration) async throws -> MLModel {
        let configuration = configuration.copy() as! MLModelConfiguration // swiftlint:disable:this force_cast
        configuration.functionName = function
        return try await MLModel.load(contentsOf: url, configuration: configuration)
    }

    /// One model call on a tile-sized pixel buffer (32BGRA); returns the upscaled image buffer. A routed artifact
    /// runs its router and the expert(s) it picks for the tile.
    public func predict(_ tile: CVPixelBuffer) throws -> CVPixelBuffer {
        if let dispatch { return try predictRouted(tile, dispatch: dispatch) }
        return try image(from: prediction(model, image: tile, strength: true))
    }

    private func prediction(_ model: MLModel, image: CVPixelBuffer, strength: Bool) throws -> MLFeatureProvider {
        var inputs: [String: MLFeatureValue] = [Manifest.imageInput: MLFeatureValue(pixelBuffer: image)]
        if strength, let strengthArray {
            inputs[Manifest.strengthInput] = MLFeatureValue(multiArray: strengthArray)
        }
        let features = try MLDictionaryFeatureProvider(dictionary: inputs)
        return try model.prediction(from: features)
    }

    private func image(from result: MLFeatureProvider) throws -> CVPixelBuffer {
        guard let output = result.featureValue(for: Manifest.outputName)?.imageBufferValue else {
            throw MetaSRError("\(manifest.file) returned no image output '\(Manifest.outputName)'; re-export it")
        }
        return output
    }

    /// The router on the tile's thumbnail, the argmin of its scores per block, then each chosen expert on the whole
    /// tile; one expert's output is returned as is, several are composed block by block.
    private func predictRouted(_ tile: CVPixelBuffer, dispatch: RoutedDispatch) throws -> CVPixelBuffer {
        let (height, width) = (CVPixelBufferGetHeight(tile), CVPixelBufferGetWidth(tile))
        let (rows, cols) = try dispatch.blocks(height: height, width: width)
        let thumbnail = try makeThumbnail(of: tile, dispatch: dispatch)
        let scores = try prediction(model, image: thumbnail, strength: true)
        guard let array = scores.featureValue(for: Manifest.outputName)?.multiArrayValue else {
            throw MetaSRError("\(manifest.file)'s router returned no scores '\(Manifest.outputName)'; re-export it")
        }
        let routes = try dispatch.routes(scores: Self.floats(array, experts: dispatch.experts, rows: rows, cols: cols),
                                         rows: rows, cols: cols)
        let used = RoutedDispatch.used(routes)
        var outputs: [Int: CVPixelBuffer] = [:]
        for k in used {
            outputs[k] = try image(from: prediction(experts[k], image: tile, strength: false))
        }
        guard let first = used.first.flatMap({ outputs[$0] }) else {
            throw MetaSRError("the router named no expert for the \(width)x\(height) tile")
        }
        if used.count == 1 { return first } // the usual case: one expert for the whole tile, its output as is
        let out = try Self.makeBuffer(width: width * dispatch.scale, height: height * dispatch.scale,
                                      format: CVPixelBufferGetPixelFormatType(first))
        let buffers = [out] + used.compactMap { outputs[$0] }
        buffers.forEach { CVPixelBufferLockBaseAddress($0, []) }
        defer { buffers.forEach { CVPixelBufferUnlockBaseAddress($0, []) } }
        guard let destination = CVPixelBufferGetBaseAddress(out) else {
            throw MetaSRError("cannot compose the routed tile: an output buffer has no base address")
        }
        let sources = try outputs.mapValues { buffer -> (pixels: UnsafeRawPointer, rowBytes: Int) in
            guard let base = CVPixelBufferGetBaseAddress(buffer) else {
                throw MetaSRError("cannot compose the routed tile: an output buffer has no base address")
            }
            return (UnsafeRawPointer(base), CVPixelBufferGetBytesPerRow(buffer))
        }
        dispatch.compose(routes: routes, height: height, width: width, output: { sources[$0]! },
                         into: destination, destinationRowBytes: CVPixelBufferGetBytesPerRow(out))
        return out
    }

    /// `tile[..., ::t, ::t]` in a (cached) 32BGRA buffer of the thumbnail's size.
    private func makeThumbnail(of tile: CVPixelBuffer, dispatch: RoutedDispatch) throws -> CVPixelBuffer {
        let (height, width) = (CVPixelBufferGetHeight(tile), CVPixelBufferGetWidth(tile))
        let size = dispatch.thumbnailSize(height: height, width: width)
        let key = size.width << 32 | size.height
        let thumbnail = try thumbnailBuffers[key]
            ?? Self.makeBuffer(width: size.width, height: size.height, format: kCVPixelFormatType_32BGRA)
        thumbnailBuffers[key] = thumbnail
        CVPixelBufferLockBaseAddress(tile, .readOnly)
        CVPixelBufferLockBaseAddress(thumbnail, [])
        defer {
            CVPixelBufferUnlockBaseAddress(thumbnail, [])
            CVPixelBufferUnlockBaseAddress(tile, .readOnly)
        }
        guard CVPixelBufferGetPixelFormatType(tile) == kCVPixelFormatType_32BGRA,
              let source = CVPixelBufferGetBaseAddress(tile), let destination = CVPixelBufferGetBaseAddress(thumbnail)
        else { throw MetaSRError("the routed tile must be a 32BGRA pixel buffer") }
        dispatch.makeThumbnail(of: source, height: height, width: width, rowBytes: CVPixelBufferGetBytesPerRow(tile),
                               into: destination, destinationRowBytes: CVPixelBufferGetBytesPerRow(thumbnail))
        return thumbnail
    }

    /// NKHW scores (N = 1) as floats in row-major order, read through the array's own strides.
    static func floats(_ array: MLMultiArray, experts: Int, rows: Int, cols: Int) throws -> [Float] {
        guard array.shape.map(\.intValue) == [1, experts, rows, cols] else {
            throw MetaSRError("router scores \(array.shape) are not [1, \(experts), \(rows), \(cols)]; re-export")
        }
        var out: [Float] = []
        out.reserveCapacity(experts * rows * cols)
        for k in 0..<experts {
            for i in 0..<rows {
                for j in 0..<cols {
                    out.append(array[[0, k, i, j] as [NSNumber]].floatValue)
                }
            }
        }
        return out
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
        let buffer = try Self.makeBuffer(width: tiler.tileWidth, height: tiler.tileHeight,
                                         format: kCVPixelFormatType_32BGRA)
        tileBuffer = buffer
        return buffer
    }

    static func makeBuffer(width: Int, height: Int, format: OSType) throws -> CVPixelBuffer {
        var buffer: CVPixelBuffer?
        let attributes = [kCVPixelBufferIOSurfacePropertiesKey: [:]] as CFDictionary
        let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, format, attributes, &buffer)
        guard status == kCVReturnSuccess, let buffer else {
            throw MetaSRError("cannot allocate a \(width)x\(height) pixel buffer (\(status))")
        }
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
