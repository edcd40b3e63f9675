package dev.metasr.demo

import org.json.JSONObject
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertSame
import org.junit.Assert.assertThrows
import org.junit.Test

class RoutedDispatchTest {
    /** A routed manifest as `metasr-export --target executorch-xnnpack` writes it for a two-expert checkpoint. */
    private fun fixture() = JSONObject(javaClass.getResource("/manifest_executorch_xnnpack_routed.json")!!.readText())

    @Test
    fun manifestGivesTheRouterAndExpertsAsMethodsOfOneFile() {
        val manifest = ModelManifest.parse(fixture())
        val routing = manifest.routing!!
        assertEquals(64, routing.tile)
        assertEquals(2, routing.thumbnail)
        assertEquals("router", routing.router.function)
        assertEquals(listOf("expert_0", "expert_1"), routing.experts.map { it.function })
        assertEquals(listOf("image", "strength"), routing.routerInputs)
        assertEquals(listOf(manifest.file), routing.files)
        assertEquals(manifest.file, EngineKind.EXECUTORCH_XNNPACK.artifactName(manifest.scale, routed = true))
        assertEquals(-1f, manifest.defaultStrength, 0f)
    }

    @Test
    fun aRouterScoringAnotherNumberOfExpertsIsRefused() {
        val json = fixture()
        json.getJSONObject("routing").getJSONArray("experts").remove(1)
        assertThrows(IllegalArgumentException::class.java) { ModelManifest.parse(json) }
    }

    @Test
    fun sizedMethodsFollowTheExporter() {
        assertEquals("router", ExecuTorchEngine.method("router", 64, 64, 64 to 64))
        assertEquals("expert_1_256x256", ExecuTorchEngine.method("expert_1", 256, 256, 128 to 128))
    }

    @Test
    fun thumbnailKeepsEveryTthPixelOfEachRowAndColumn() {
        val (h, w) = 4 to 6
        val image = FloatArray(3 * h * w) { it.toFloat() }
        val thumb = RoutedDispatch(2, 2, 2, 2).thumbnail(image, h, w)
        // channel c, row j, column i of the thumbnail is image[c, 2j, 2i]
        val expected = FloatArray(3 * 2 * 3) { n ->
            val (c, j, i) = Triple(n / 6, n / 3 % 2, n % 3)
            ((c * h + 2 * j) * w + 2 * i).toFloat()
        }
        assertArrayEquals(expected, thumb, 0f)
    }

    @Test
    fun routesAreTheArgminOverExpertsWithTiesToTheFirst() {
        // K = 3 experts, 1 x 4 blocks, NKHW
        val scores = floatArrayOf(
            0.5f, 0.1f, 0.2f, 0.3f,
            0.4f, 0.1f, 0.9f, 0.3f,
            0.6f, 0.7f, 0.1f, 0.3f,
        )
        assertArrayEquals(intArrayOf(1, 0, 2, 0), RoutedDispatch(8, 1, 3, 2).routes(scores, 1, 4))
    }

    @Test
    fun eachBlockComesFromTheExpertItNames() {
        val (h, w, s) = Triple(4, 8, 2)
        val dispatch = RoutedDispatch(4, 2, 2, s) // 1 x 2 blocks of 4 x 4 input pixels
        val outputs = mapOf(0 to FloatArray(3 * h * s * w * s) { 10f }, 1 to FloatArray(3 * h * s * w * s) { 20f })
        val calls = mutableListOf<Int>()
        val out = dispatch.run(
            FloatArray(3 * h * w), h, w,
            router = { _, th, tw ->
                assertEquals(2 to 4, th to tw)
                floatArrayOf(0f, 1f, 1f, 0f) // block 0 -> expert 0, block 1 -> expert 1
            },
            expert = { k -> calls += k; outputs.getValue(k) },
        )
        assertEquals(listOf(0, 1), calls)
        for (c in 0 until 3) for (y in 0 until h * s) for (x in 0 until w * s) {
            assertEquals(if (x < 4 * s) 10f else 20f, out[(c * h * s + y) * w * s + x], 0f)
        }
    }

    @Test
    fun oneExpertForTheWholeTileIsUsedAsIs() {
        val expert = FloatArray(3 * 16 * 16) { it.toFloat() }
        val out = RoutedDispatch(8, 2, 2, 2).run(
            FloatArray(3 * 8 * 8), 8, 8,
            router = { _, _, _ -> floatArrayOf(0.3f, 0.1f) },
            expert = { k -> assertEquals(1, k); expert },
        )
        assertSame(expert, out)
    }

    @Test
    fun tilesThatAreNotWholeRoutingTilesAreRefused() {
        assertThrows(IllegalArgumentException::class.java) {
            val dispatch = RoutedDispatch(64, 2, 2, 2)
            dispatch.run(FloatArray(3 * 96 * 64), 96, 64, { _, _, _ -> FloatArray(0) }, { FloatArray(0) })
        }
    }
}
