package dev.metasr.demo

import android.graphics.Bitmap
import kotlin.math.min

/**
 * Splits a frame into model-sized tiles that overlap by [overlap] input pixels, upscales each, and blends them back
 * with linear feathering across every seam (frame borders are not feathered). Frames smaller than a tile are
 * edge-padded. Works on planar RGB float arrays (CHW, [0, 1]).
 */
class Tiler(val tileHeight: Int, val tileWidth: Int, val overlap: Int, val scale: Int) {
    init {
        require(overlap in 0 until min(tileHeight, tileWidth)) { "tile overlap $overlap must be below the tile size" }
    }

    /** Tile starts along one axis: a stride of (tile - overlap), the last tile flush with the far edge. */
    fun origins(length: Int, tile: Int): List<Int> {
        if (length <= tile) return listOf(0)
        val starts = generateSequence(0) { it + tile - overlap }.takeWhile { it + tile < length }.toMutableList()
        starts += length - tile
        return starts
    }

    /** Upscale a [width] x [height] planar RGB [frame] with [model], one tile (tileHeight x tileWidth) per call. */
    fun upscale(frame: FloatArray, width: Int, height: Int, model: (FloatArray) -> FloatArray): FloatArray {
        val s = scale
        val outW = width * s
        val outH = height * s
        val plane = outW * outH
        val sum = FloatArray(3 * plane)
        val weight = FloatArray(plane)
        val th = tileHeight * s
        val tw = tileWidth * s
        val ramp = overlap * s
        val ys = origins(height, tileHeight)
        val xs = origins(width, tileWidth)
        for (y0 in ys) for (x0 in xs) {
            val out = model(crop(frame, width, height, x0, y0))
            for (j in 0 until min(th, outH - y0 * s)) {
                val wy = feather(j, th, ramp, y0 != ys.first(), y0 != ys.last())
                val row = (y0 * s + j) * outW + x0 * s
                for (i in 0 until min(tw, outW - x0 * s)) {
                    val w = wy * feather(i, tw, ramp, x0 != xs.first(), x0 != xs.last())
                    val o = row + i
                    val t = j * tw + i
                    weight[o] += w
                    sum[o] += w * out[t]
                    sum[plane + o] += w * out[th * tw + t]
                    sum[2 * plane + o] += w * out[2 * th * tw + t]
                }
            }
        }
        for (o in 0 until plane) {
            val inv = 1f / weight[o]
            sum[o] *= inv
            sum[plane + o] *= inv
            sum[2 * plane + o] *= inv
        }
        return sum
    }

    /** The tile at (x0, y0) of a planar RGB frame, edge pixels repeated where the tile hangs over the frame. */
    fun crop(frame: FloatArray, width: Int, height: Int, x0: Int, y0: Int): FloatArray {
        val tile = FloatArray(3 * tileHeight * tileWidth)
        val plane = width * height
        for (c in 0 until 3) for (j in 0 until tileHeight) {
            val src = c * plane + min(y0 + j, height - 1) * width
            val dst = (c * tileHeight + j) * tileWidth
            for (i in 0 until tileWidth) tile[dst + i] = frame[src + min(x0 + i, width - 1)]
        }
        return tile
    }

    companion object {
        /** The tile is the model's first exported input size; the overlap comes from the manifest's tile entry. */
        fun forManifest(manifest: ModelManifest): Tiler {
            val (h, w) = manifest.inputSize
            return Tiler(h, w, manifest.tileOverlap, manifest.scale)
        }

        /** Weight of output pixel [i] of [n] along one axis: ramps up over [ramp] pixels on sides with a neighbour. */
        fun feather(i: Int, n: Int, ramp: Int, rampStart: Boolean, rampEnd: Boolean): Float {
            if (ramp == 0) return 1f
            var w = 1f
            if (rampStart && i < ramp) w = min(w, (i + 0.5f) / ramp)
            if (rampEnd && i >= n - ramp) w = min(w, (n - i - 0.5f) / ramp)
            return w
        }
    }
}

/** ARGB_8888 pixels to planar RGB floats in [0, 1]. */
fun Bitmap.toPlanarRgb(): FloatArray {
    val plane = width * height
    val pixels = IntArray(plane).also { getPixels(it, 0, width, 0, 0, width, height) }
    val out = FloatArray(3 * plane)
    for (i in 0 until plane) {
        val p = pixels[i]
        out[i] = (p shr 16 and 0xFF) / 255f
        out[plane + i] = (p shr 8 and 0xFF) / 255f
        out[2 * plane + i] = (p and 0xFF) / 255f
    }
    return out
}

/** Planar RGB floats in [0, 1] to an ARGB_8888 bitmap. */
fun planarRgbToBitmap(data: FloatArray, width: Int, height: Int): Bitmap {
    val plane = width * height
    fun byte(v: Float): Int = (v.coerceIn(0f, 1f) * 255f + 0.5f).toInt()
    val pixels = IntArray(plane) { i ->
        (0xFF shl 24) or (byte(data[i]) shl 16) or (byte(data[plane + i]) shl 8) or byte(data[2 * plane + i])
    }
    return Bitmap.createBitmap(pixels, width, height, Bitmap.Config.ARGB_8888)
}
