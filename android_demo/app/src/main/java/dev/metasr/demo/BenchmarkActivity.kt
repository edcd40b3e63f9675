package dev.metasr.demo

import android.os.Bundle
import android.util.Log
import android.view.WindowManager
import android.widget.TextView
import androidx.activity.ComponentActivity
import dev.metasr.demo.BenchmarkContract.ERROR_FILE
import dev.metasr.demo.BenchmarkContract.LOG_TAG
import dev.metasr.demo.BenchmarkContract.RESULTS_FILE
import org.json.JSONObject
import java.io.File
import java.util.Random
import kotlin.concurrent.thread

/** Times the model at one input size and writes benchmark_results.json; started over adb (BenchmarkContract). */
class BenchmarkActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        val status = TextView(this).apply {
            textSize = 16f
            setPadding(48, 96, 48, 48)
            text = "MetaSR benchmark running…"
        }
        setContentView(status)
        val dir = getExternalFilesDir(null) ?: filesDir
        val resultsFile = File(dir, RESULTS_FILE).apply { delete() }
        val errorFile = File(dir, ERROR_FILE).apply { delete() }
        val launch = intent
        thread(name = "metasr-benchmark") {
            val message = try {
                val request = BenchmarkContract.Request.fromIntent(launch)
                val results = measure(request)
                ResultsWriter.write(results, resultsFile)
                "done: median ${results.getDouble("median_ms")} ms over ${request.runs} runs -> $resultsFile"
                    .also { Log.i(LOG_TAG, it) }
            } catch (e: Exception) {
                ResultsWriter.writeText(errorFile, "${e.javaClass.simpleName}: ${e.message}\n")
                "failed: ${e.message}".also { Log.e(LOG_TAG, it, e) }
            }
            runOnUiThread { status.text = message }
        }
    }

    private fun measure(request: BenchmarkContract.Request): JSONObject {
        val artifact = request.artifact
        require(artifact.isFile) {
            "no artifact at $artifact; adb push artifacts/<target> ${BenchmarkContract.DEVICE_FILES_DIR}/"
        }
        val manifest = ModelManifest.load(File(artifact.parentFile, ModelManifest.FILE_NAME))
        require(artifact.name == manifest.file) {
            "${artifact.name} is not the artifact manifest.json describes (${manifest.file})"
        }
        require(manifest.matches(artifact)) {
            "${artifact.name} does not match model_sha256 in manifest.json; push both again"
        }
        val (h, w) = request.inputSize ?: manifest.inputSize
        require(manifest.engineKind.dynamicSize || manifest.imageShapes.any { it[2] == h && it[3] == w }) {
            val exported = manifest.imageShapes.joinToString { "${it[2]}x${it[3]}" }
            "${manifest.file} was exported for $exported, not ${h}x$w; re-export with --input-size ${h}x$w"
        }
        val random = Random(0)
        val input = FloatArray(3 * h * w) { random.nextFloat() }
        SrEngine.open(this, manifest, artifact).use { engine ->
            repeat(request.warmup) { engine.run(input, h, w) }
            val latencies = List(request.runs) {
                val start = System.nanoTime()
                engine.run(input, h, w)
                (System.nanoTime() - start) / 1e6
            }
            return ResultsWriter.build(
                manifest, engine.backend, h to w, request.warmup, latencies, ResultsWriter.peakMemoryMb(),
            )
        }
    }
}
