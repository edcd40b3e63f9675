package dev.metasr.demo

import org.json.JSONObject
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

class ResultsWriterTest {
    private fun fixture() = JSONObject(javaClass.getResource("/manifest_executorch_xnnpack.json")!!.readText())

    private val manifest = ModelManifest.parse(fixture())

    @Test
    fun percentilesInterpolateLinearly() {
        val values = listOf(40.0, 10.0, 30.0, 20.0)
        assertEquals(13.0, ResultsWriter.percentile(values, 10.0), 1e-9)
        assertEquals(25.0, ResultsWriter.percentile(values, 50.0), 1e-9)
        assertEquals(37.0, ResultsWriter.percentile(values, 90.0), 1e-9)
        assertEquals(7.5, ResultsWriter.percentile(listOf(7.5), 90.0), 1e-9)
    }

    @Test
    fun manifestGivesNeutralModulationAndTiles() {
        assertEquals(EngineKind.EXECUTORCH_XNNPACK, manifest.engineKind)
        assertEquals(256 to 256, manifest.inputSize)
        val modulation = manifest.neutralModulation()
        assertEquals(320, modulation.size)
        assertEquals(5 * 32, modulation.count { it == 1f })
        assertEquals(1f, modulation[31])
        assertEquals(0f, modulation[32])
        assertEquals(1f, modulation[64])
        assertEquals(manifest.file, EngineKind.EXECUTORCH_XNNPACK.artifactName(manifest.scale))
    }

    @Test
    fun modulationLayoutFallsBackToTheDescription() {
        val json = fixture()
        val modulation = json.getJSONArray("inputs").getJSONObject(1)
        modulation.remove("stages")
        modulation.remove("channels_per_stage")
        assertArrayEquals(manifest.neutralModulation(), ModelManifest.parse(json).neutralModulation(), 0f)
    }

    @Test
    fun resultsCarryTheManifestAndConsistentStatistics() {
        val device = JSONObject().put("model", "test").put("os", "Android 15 (API 35)").put("soc", JSONObject.NULL)
        val json = ResultsWriter.build(
            manifest, "XnnpackBackend", 256 to 256, 5, listOf(12.0004, 11.0, 13.5, 12.25), null,
            device, "2025-06-01T12:00:00Z",
        )
        assertEquals(manifest.modelSha256, json.getJSONObject("artifact").getString("model_sha256"))
        assertEquals("executorch-xnnpack", json.getString("runtime"))
        assertEquals(4, json.getInt("runs"))
        assertEquals(12.0, json.getJSONArray("latencies_ms").getDouble(0), 0.0)
        assertEquals(12.125, json.getDouble("median_ms"), 1e-9)
        assertTrue(json.isNull("peak_memory_mb"))
    }
}
