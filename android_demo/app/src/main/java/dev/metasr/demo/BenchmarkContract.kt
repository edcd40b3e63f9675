package dev.metasr.demo

import android.content.Intent
import java.io.File

/**
 * How a host (`metasr-profile --device adb`) drives the benchmark:
 *
 * ```
 * adb shell am start -W -n dev.metasr.demo/.BenchmarkActivity \
 *     --es artifact /sdcard/Android/data/dev.metasr.demo/files/executorch-xnnpack/metasr_x2.pte \
 *     --ei runs 50 --ei warmup 5 --es input_size 256x256
 * adb pull /sdcard/Android/data/dev.metasr.demo/files/benchmark_results.json
 * ```
 *
 * The results file is replaced atomically when the run ends; on failure [ERROR_FILE] is written instead.
 * Both are deleted when a run starts. Each outcome is also logged under [LOG_TAG].
 */
object BenchmarkContract {
    const val COMPONENT = "dev.metasr.demo/.BenchmarkActivity"

    /** String: absolute path of the artifact; its manifest.json must sit beside it. */
    const val EXTRA_ARTIFACT = "artifact"

    /** Int: timed runs (default [DEFAULT_RUNS]). */
    const val EXTRA_RUNS = "runs"

    /** Int: untimed runs before timing (default [DEFAULT_WARMUP]). */
    const val EXTRA_WARMUP = "warmup"

    /** String: "HxW" model input size (default: the manifest's first input size). */
    const val EXTRA_INPUT_SIZE = "input_size"

    const val DEFAULT_RUNS = 50
    const val DEFAULT_WARMUP = 5

    /** The app's external files dir: adb can push into and pull from it without root or run-as. */
    const val DEVICE_FILES_DIR = "/sdcard/Android/data/dev.metasr.demo/files"
    const val RESULTS_FILE = "benchmark_results.json"
    const val ERROR_FILE = "benchmark_error.txt"
    const val DEVICE_RESULTS_PATH = "$DEVICE_FILES_DIR/$RESULTS_FILE"
    const val DEVICE_ERROR_PATH = "$DEVICE_FILES_DIR/$ERROR_FILE"
    const val LOG_TAG = "MetaSRBenchmark"

    private val SIZE = Regex("""(\d+)[xX](\d+)""")

    /** One benchmark request, read from the launching intent. */
    class Request(val artifact: File, val runs: Int, val warmup: Int, val inputSize: Pair<Int, Int>?) {
        companion object {
            fun fromIntent(intent: Intent): Request {
                val path = requireNotNull(intent.getStringExtra(EXTRA_ARTIFACT)) {
                    "missing --es $EXTRA_ARTIFACT <path of the .pte/.onnx on the device>"
                }
                val runs = intent.getIntExtra(EXTRA_RUNS, DEFAULT_RUNS)
                val warmup = intent.getIntExtra(EXTRA_WARMUP, DEFAULT_WARMUP)
                require(runs >= 1 && warmup >= 0) { "--ei $EXTRA_RUNS must be >= 1 and --ei $EXTRA_WARMUP >= 0" }
                val size = intent.getStringExtra(EXTRA_INPUT_SIZE)?.let { text ->
                    val match = SIZE.matchEntire(text.trim())
                        ?: throw IllegalArgumentException("--es $EXTRA_INPUT_SIZE '$text' is not HxW, e.g. 256x256")
                    match.groupValues[1].toInt() to match.groupValues[2].toInt()
                }
                return Request(File(path), runs, warmup, size)
            }
        }
    }
}
