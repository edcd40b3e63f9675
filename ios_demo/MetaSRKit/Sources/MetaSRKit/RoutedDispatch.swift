import Foundation

/// One tile of a routed artifact, dispatched as its manifest's `routing.dispatch` says: the router reads the
/// thumbnail (every `thumbnail`-th pixel of each row and column) and scores every expert for each `block` x `block`
/// block of the tile; the argmin over the experts names the block's expert; each chosen expert runs on the whole
/// tile and keeps its output over its blocks (hard blending). `block` 0: the router decides once for the whole
/// tile, whatever its size (the manifest's `routing.tile` 0). Works on interleaved pixels (32BGRA / 32ARGB rows).
public struct RoutedDispatch: Equatable, Sendable {
    public let block: Int
    public let thumbnail: Int
    public let experts: Int
    public let scale: Int

    public init(block: Int, thumbnail: Int, experts: Int, scale: Int) {
        precondition(block >= 0 && block % thumbnail == 0, "a routing tile must be whole thumbnail pixels")
        self.block = block
        self.thumbnail = thumbnail
        self.experts = experts
        self.scale = scale
    }

    public init(routing: RoutingSpec, scale: Int) throws {
        guard routing.blending == RoutingSpec.hardBlending else {
            throw MetaSRError("routing blending '\(routing.blending)' is unknown to this app (only 'hard')")
        }
        let scores = routing.router.output.shapes[0] // [1, K, H / tile, W / tile]
        guard scores.count == 4, scores[1] == routing.experts.count else {
            throw MetaSRError("the router scores \(scores) do not match \(routing.experts.count) experts; re-export")
        }
        self.init(block: routing.tile, thumbnail: routing.thumbnail, experts: routing.experts.count, scale: scale)
    }

    /// (rows, columns) of routing blocks in a `height` x `width` tile, which must hold whole blocks (one block
    /// when the router decides per tile).
    public func blocks(height: Int, width: Int) throws -> (rows: Int, cols: Int) {
        if block == 0 { return (1, 1) }
        guard height % block == 0, width % block == 0 else {
            throw MetaSRError("a routed tile must be whole \(block)-pixel routing tiles, not \(height)x\(width)")
        }
        return (height / block, width / block)
    }

    /// Size of the thumbnail `image[..., ::t, ::t]` of a `height` x `width` tile.
    public func thumbnailSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + thumbnail - 1) / thumbnail, (width + thumbnail - 1) / thumbnail)
    }

    /// Copies every `thumbnail`-th pixel of each row and column of `source` into `destination` (both with
    /// `bytesPerPixel`-byte pixels and their own row strides): what the router reads.
    public func makeThumbnail(of source: UnsafeRawPointer, height: Int, width: Int, rowBytes: Int,
                              into destination: UnsafeMutableRawPointer, destinationRowBytes: Int,
                              bytesPerPixel: Int = 4) {
        let t = thumbnail
        let (th, tw) = thumbnailSize(height: height, width: width)
        for j in 0..<th {
            let src = source + j * t * rowBytes
            let dst = destination + j * destinationRowBytes
            for i in 0..<tw {
                (dst + i * bytesPerPixel).copyMemory(from: src + i * t * bytesPerPixel, byteCount: bytesPerPixel)
            }
        }
    }

    /// Argmin over axis 1 of NKHW `scores` (N = 1, K = `experts`): the expert of each block, row-major. Ties go to
    /// the first expert, as in torch.
    public func routes(scores: [Float], rows: Int, cols: Int) throws -> [Int] {
        let plane = rows * cols
        guard scores.count == experts * plane else {
            throw MetaSRError("the router returned \(scores.count) scores, not \(experts) x \(rows) x \(cols)")
        }
        return (0..<plane).map { b in
            var best = 0
            for k in 1..<max(experts, 1) where scores[k * plane + b] < scores[best * plane + b] { best = k }
            return best
        }
    }

    /// The experts `routes` uses, in first-use order.
    public static func used(_ routes: [Int]) -> [Int] {
        var seen = Set<Int>()
        return routes.filter { seen.insert($0).inserted }
    }

    /// Hard blending of one upscaled tile (`height` x `width` input pixels): each block's (block * scale)^2 output
    /// pixels are copied from the output of the expert `routes` names. `output(k)` gives expert k's pixels and row
    /// stride; all share `bytesPerPixel`.
    public func compose(routes: [Int], height: Int, width: Int,
                        output: (Int) -> (pixels: UnsafeRawPointer, rowBytes: Int),
                        into destination: UnsafeMutableRawPointer, destinationRowBytes: Int,
                        bytesPerPixel: Int = 4) {
        let side = (block == 0 ? width : block) * scale
        let cols = block == 0 ? 1 : width / block
        let rowSpan = side * bytesPerPixel
        for y in 0..<(height * scale) {
            let blocks = block == 0 ? 0 : y / side * cols
            for b in 0..<cols {
                let source = output(routes[blocks + b])
                let offset = b * rowSpan
                (destination + y * destinationRowBytes + offset)
                    .copyMemory(from: source.pixels + y * source.rowBytes + offset, byteCount: rowSpan)
            }
        }
    }
}
