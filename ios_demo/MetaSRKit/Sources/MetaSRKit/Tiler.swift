import Foundation

/// Splits a frame into model-sized tiles that overlap by `overlap` input pixels and blends the upscaled tiles back
/// with linear feathering across every seam (frame borders are not feathered). Frames smaller than a tile are
/// edge-padded by the caller (CoreMLEngine clamps the source image to its extent).
public struct Tiler: Equatable, Sendable {
    public struct Tile: Equatable, Sendable {
        /// Top-left corner in input pixels (origin top-left).
        public let x: Int
        public let y: Int
        let featherLeft: Bool
        let featherRight: Bool
        let featherTop: Bool
        let featherBottom: Bool
    }

    public let tileWidth: Int
    public let tileHeight: Int
    public let overlap: Int
    public let scale: Int

    public init(tileWidth: Int, tileHeight: Int, overlap: Int, scale: Int) {
        precondition(overlap >= 0 && overlap < min(tileWidth, tileHeight), "tile overlap must be below the tile size")
        self.tileWidth = tileWidth
        self.tileHeight = tileHeight
        self.overlap = overlap
        self.scale = scale
    }

    /// The tile is the model's first exported input size; the overlap comes from the manifest's tile entry.
    public init(manifest: Manifest) throws {
        let size = try manifest.inputSize
        self.init(tileWidth: size.width, tileHeight: size.height, overlap: manifest.tile.overlap, scale: manifest.scale)
    }

    /// Tile starts along one axis: a stride of (tile - overlap), the last tile flush with the far edge.
    public func origins(length: Int, tile: Int) -> [Int] {
        guard length > tile else { return [0] }
        var starts = Array(stride(from: 0, to: length - tile, by: tile - overlap))
        starts.append(length - tile)
        return starts
    }

    public func tiles(width: Int, height: Int) -> [Tile] {
        let xs = origins(length: width, tile: tileWidth)
        let ys = origins(length: height, tile: tileHeight)
        return ys.flatMap { y in
            xs.map { x in
                Tile(x: x, y: y, featherLeft: x != xs.first, featherRight: x != xs.last,
                     featherTop: y != ys.first, featherBottom: y != ys.last)
            }
        }
    }

    /// Weight of output pixel `i` of `n` along one axis: ramps up over `ramp` pixels on sides with a neighbour.
    public static func feather(_ i: Int, _ n: Int, ramp: Int, start: Bool, end: Bool) -> Float {
        guard ramp > 0 else { return 1 }
        var w: Float = 1
        if start, i < ramp { w = min(w, (Float(i) + 0.5) / Float(ramp)) }
        if end, i >= n - ramp { w = min(w, (Float(n - i) - 0.5) / Float(ramp)) }
        return w
    }
}

/// Accumulates feathered RGB tiles into one output frame.
public struct Stitcher {
    public let width: Int
    public let height: Int
    private var sum: [Float]
    private var weight: [Float]

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
        sum = [Float](repeating: 0, count: 3 * width * height)
        weight = [Float](repeating: 0, count: width * height)
    }

    /// Add one upscaled tile; `pixel(x, y)` returns its RGB in [0, 1] at tile-output coordinates.
    public mutating func add(_ tile: Tiler.Tile, tiler: Tiler, pixel: (Int, Int) -> SIMD3<Float>) {
        let s = tiler.scale
        let (tw, th, ramp) = (tiler.tileWidth * s, tiler.tileHeight * s, tiler.overlap * s)
        for j in 0..<min(th, height - tile.y * s) {
            let wy = Tiler.feather(j, th, ramp: ramp, start: tile.featherTop, end: tile.featherBottom)
            let row = (tile.y * s + j) * width + tile.x * s
            for i in 0..<min(tw, width - tile.x * s) {
                let w = wy * Tiler.feather(i, tw, ramp: ramp, start: tile.featherLeft, end: tile.featherRight)
                let rgb = pixel(i, j) * w
                let o = row + i
                weight[o] += w
                sum[3 * o] += rgb.x
                sum[3 * o + 1] += rgb.y
                sum[3 * o + 2] += rgb.z
            }
        }
    }

    /// The blended frame as RGB floats (interleaved), or RGBA8 bytes for a CGImage.
    public func rgb() -> [Float] {
        var out = sum
        for o in 0..<(width * height) where weight[o] > 0 {
            let inv = 1 / weight[o]
            out[3 * o] *= inv
            out[3 * o + 1] *= inv
            out[3 * o + 2] *= inv
        }
        return out
    }

    public func rgba8() -> [UInt8] {
        let rgb = rgb()
        var bytes = [UInt8](repeating: 255, count: 4 * width * height)
        for o in 0..<(width * height) {
            for c in 0..<3 {
                bytes[4 * o + c] = UInt8((min(max(rgb[3 * o + c], 0), 1) * 255).rounded())
            }
        }
        return bytes
    }
}
