package dev.metasr.demo

import android.os.Build
import org.json.JSONArray
import org.json.JSONObject
import java.io.File
import java.nio.file.Files
import java.nio.file.StandardCopyOption
import java.time.Instant
import java.time.temporal.ChronoUnit
import kotlin.math.floor
import kotlin.math.roundToLong

/**
 * Benchmark results JSON, in the format of toolkit/metasr/schemas/benchmark_results.schema.json
 * (read back by metasr.profile.results.load_results).
 */
object ResultsWriter {
    const val SCHEMA_VERSION = 1
    const val APP = "android_demo"

    fun build(
        manifest: ModelManifest,
        backend: String,
        inputSize: Pair<Int, Int>,
        warmupRuns: Int,
        latenciesMs: List<Double>,
        peakMemoryMb: Double?,
        device: JSONObject = deviceInfo(),
        timestamp: String = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString(),
    ): JSONObject {
        require(latenciesMs.isNotEmpty()) { "no latencies to report" }
        val latencies = latenciesMs.map(::round3)
        val artifact = JSONObject()
            .put("file", manifest.file)
            .put("target", manifest.target)
            .put("model_sha256", manifest.modelSha256)
        return JSONObject()
            .put("schema_version", SCHEMA_VERSION)
            .put("app", APP)
            .put("device", device)
            .put("artifact", artifact)
            .put("runtime", manifest.engineKind.runtime)
            .put("backend", backend)
            .put("input_size", JSONArray(listOf(inputSize.first, inputSize.second)))
            .put("scale", manifest.scale)
            .put("warmup_runs", warmupRuns)
            .put("runs", latencies.size)
            .put("latencies_ms", JSONArray(latencies))
            .put("median_ms", round3(percentile(latencies, 50.0)))
            .put("p10_ms", round3(percentile(latencies, 10.0)))
            .put("p90_ms", round3(percentile(latencies, 90.0)))
            .put("peak_memory_mb", peakMemoryMb ?: JSONObject.NULL)
            .put("timestamp", timestamp)
    }

    /** The [p]-th percentile (0..100), linear interpolation between closest ranks (numpy's default). */
    fun percentile(values: List<Double>, p: Double): Double {
        val sorted = values.sorted()
        val rank = p / 100.0 * (sorted.size - 1)
        val lo = floor(rank).toInt()
        val hi = minOf(lo + 1, sorted.size - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo)
    }

    fun round3(value: Double): Double = (value * 1000.0).roundToLong() / 1000.0

    /** Write [json] to [file] atomically: a temp file beside it, then a rename over it. */
    fun write(json: JSONObject, file: File): File = writeText(file, json.toString(2) + "\n")

    fun writeText(file: File, text: String): File {
        val tmp = File(file.parentFile, ".${file.name}.tmp")
        tmp.writeText(text)
        Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
        return file
    }

    fun deviceInfo(): JSONObject {
        val soc = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S && Build.SOC_MODEL != Build.UNKNOWN) {
            "${Build.SOC_MANUFACTURER} ${Build.SOC_MODEL}"
        } else {
            null
        }
        return JSONObject()
            .put("manufacturer", Build.MANUFACTURER)
            .put("model", Build.MODEL)
            .put("os", "Android ${Build.VERSION.RELEASE} (API ${Build.VERSION.SDK_INT})")
            .put("soc", soc ?: JSONObject.NULL)
    }

    /** Peak resident set size of this process (VmHWM), or null where /proc does not say. */
    fun peakMemoryMb(): Double? = runCatching {
        File("/proc/self/status").readLines()
            .firstOrNull { it.startsWith("VmHWM:") }
            ?.split(Regex("\\s+"))?.get(1)?.toDouble()
            ?.let { kb -> (kb / 1024.0 * 10).roundToLong() / 10.0 }
    }.getOrNull()
}
