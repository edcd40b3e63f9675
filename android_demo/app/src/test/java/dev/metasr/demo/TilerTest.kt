package dev.metasr.demo

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test

class TilerTest {
    /** Nearest-neighbour x[scale] "model" on a planar RGB tile. */
    private fun nearest(tile: FloatArray, h: Int, w: Int, s: Int): FloatArray {
        val out = FloatArray(3 * h * s * w * s)
        for (c in 0 until 3) for (y in 0 until h * s) for (x in 0 until w * s) {
            out[(c * h * s + y) * w * s + x] = tile[(c * h + y / s) * w + x / s]
        }
        return out
    }

    @Test
    fun originsCoverTheFrameWithOverlap() {
        val tiler = Tiler(64, 64, 8, 2)
        assertEquals(listOf(0, 56, 100), tiler.origins(164, 64))
        assertEquals(listOf(0), tiler.origins(40, 64))
        assertEquals(listOf(0), tiler.origins(64, 64))
    }

    @Test
    fun stitchingAnExactModelReproducesItsOutput() {
        val (w, h, s) = Triple(150, 90, 2)
        val frame = FloatArray(3 * w * h) { (it * 7919 % 1000) / 1000f }
        val tiler = Tiler(32, 48, 6, s)
        val stitched = tiler.upscale(frame, w, h) { tile -> nearest(tile, 32, 48, s) }
        assertArrayEquals(nearest(frame, h, w, s), stitched, 1e-5f)
    }

    @Test
    fun smallFramesArePaddedAndCropped() {
        val frame = FloatArray(3 * 10 * 12) { it / 360f }
        val stitched = Tiler(16, 16, 4, 4).upscale(frame, 12, 10) { tile -> nearest(tile, 16, 16, 4) }
        assertArrayEquals(nearest(frame, 10, 12, 4), stitched, 1e-6f)
    }
}
