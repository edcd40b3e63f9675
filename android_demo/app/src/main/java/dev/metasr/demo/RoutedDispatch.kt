package dev.metasr.demo

/**
 * One tile of a routed artifact, dispatched as its manifest's `routing.dispatch` says: the router reads the
 * thumbnail (every [thumbnail]-th pixel of each row and column) and scores every expert for each [block] x [block]
 * block of the tile; the argmin over the experts names the block's expert; each chosen expert runs on the whole tile
 * and keeps its output over its blocks (hard blending). [block] 0: the router decides once for the whole tile,
 * whatever its size (the manifest's `routing.tile` 0). Planar RGB (CHW) float arrays, as [SrEngine.run] uses.
 */
class RoutedDispatch(val block: Int, val thumbnail: Int, val experts: Int, val scale: Int) {
    init {
        require(block >= 0 && block % thumbnail == 0) {
            "routing tile $block is not whole x1/$thumbnail thumbnail pixels"
        }
    }

    /**
     * Upscale one [height] x [width] tile: [router] maps the thumbnail (and its height, width) to NKHW scores,
     * [expert] runs expert k on the whole tile. When every block names one expert (the usual case: the app tile is
     * one routing tile) that expert's output is returned as is.
     */
    fun run(
        input: FloatArray,
        height: Int,
        width: Int,
        router: (FloatArray, Int, Int) -> FloatArray,
        expert: (Int) -> FloatArray,
    ): FloatArray {
        require(block == 0 || (height % block == 0 && width % block == 0)) {
            "a routed tile must be whole $block-pixel routing tiles, not ${height}x$width"
        }
        val (th, tw) = (height + thumbnail - 1) / thumbnail to (width + thumbnail - 1) / thumbnail
        val scores = router(thumbnail(input, height, width), th, tw)
        val routes = if (block == 0) routes(scores, 1, 1) else routes(scores, height / block, width / block)
        val used = routes.distinct()
        if (used.size == 1) return expert(used[0])
        return compose(routes, height, width, used.associateWith(expert))
    }

    /** `image[..., ::t, ::t]` of a planar RGB [height] x [width] image: what the router reads. */
    fun thumbnail(image: FloatArray, height: Int, width: Int): FloatArray {
        val t = thumbnail
        val (th, tw) = (height + t - 1) / t to (width + t - 1) / t
        val out = FloatArray(3 * th * tw)
        for (c in 0 until 3) for (j in 0 until th) {
            val src = (c * height + j * t) * width
            val dst = (c * th + j) * tw
            for (i in 0 until tw) out[dst + i] = image[src + i * t]
        }
        return out
    }

    /** Argmin over axis 1 of NKHW [scores] (N = 1, K = [experts]): the expert of each block, row-major. */
    fun routes(scores: FloatArray, rows: Int, cols: Int): IntArray {
        val plane = rows * cols
        require(scores.size == experts * plane) {
            "the router returned ${scores.size} scores, not $experts x $rows x $cols"
        }
        return IntArray(plane) { b ->
            var best = 0
            for (k in 1 until experts) if (scores[k * plane + b] < scores[best * plane + b]) best = k
            best
        }
    }

    /** Hard blending: each block's (block * scale)^2 output pixels from [outputs] of the expert [routes] names. */
    fun compose(routes: IntArray, height: Int, width: Int, outputs: Map<Int, FloatArray>): FloatArray {
        val side = block * scale
        val (outH, outW) = height * scale to width * scale
        val plane = outH * outW
        val cols = width / block
        val out = FloatArray(3 * plane)
        for (c in 0 until 3) for (y in 0 until outH) {
            val row = c * plane + y * outW
            val blocks = y / side * cols
            for (b in 0 until cols) {
                System.arraycopy(outputs.getValue(routes[blocks + b]), row + b * side, out, row + b * side, side)
            }
        }
        return out
    }

    companion object {
        fun forManifest(manifest: ModelManifest): RoutedDispatch? = manifest.routing?.let {
            RoutedDispatch(it.tile, it.thumbnail, it.experts.size, manifest.scale)
        }
    }
}
