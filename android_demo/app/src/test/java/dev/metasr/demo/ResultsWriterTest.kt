package dev.metasr.demo

import org.json.JSONObject
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
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
    fun manifestGivesTheDefaultStrengthAndTiles() {
        assertEquals(EngineKind.EXECUTORCH_XNNPACK, manifest.engineKind)
        assertEquals(256 to 256, manifest.inputSize)
        assertArrayEquals(intArrayOf(1, 1, 1, 1), manifest.strengthShape)
        assertEquals(-1f, manifest.defaultStrength, 0f)
        assertEquals(manifest.file, EngineKind.EXECUTORCH_XNNPACK.artifactName(manifest.scale))
    }

    @Test
    fun rejectsAManifestOfThePlainStudent() {
        val json = fixture().put("schema_version", 1)
        assertThrows(IllegalArgumentException::class.java) { ModelManifest.parse(json) }
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
