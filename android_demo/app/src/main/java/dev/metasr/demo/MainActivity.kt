package dev.metasr.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.os.Bundle
import android.util.Log
import android.util.Size
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.core.resolutionselector.ResolutionStrategy
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import java.io.File
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Live camera: each analysis frame is upscaled tile by tile and shown split against the original. */
class MainActivity : ComponentActivity() {
    private lateinit var preview: PreviewView
    private lateinit var splitView: SplitView
    private lateinit var stats: TextView
    private lateinit var routeView: TextView

    /** Loads the model, then runs every analysis frame, on one thread. */
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var engine: SrEngine? = null
    private var tiler: Tiler? = null

    /**
     * What produced the frame on screen. For now the one model in use ("target · file · backend"); the content
     * orchestrator will set it per frame.
     */
    var route: String = ""
        set(value) {
            field = value
            routeView.text = "route: $value"
        }

    private val cameraPermission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else stats.setText(R.string.camera_denied)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        preview = findViewById(R.id.preview)
        splitView = findViewById(R.id.split)
        stats = findViewById(R.id.stats)
        routeView = findViewById(R.id.route)
        worker.execute(::loadEngine)
        val granted = ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA)
        if (granted == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            cameraPermission.launch(Manifest.permission.CAMERA)
        }
    }

    override fun onDestroy() {
        super.onDestroy()
        worker.execute { engine?.close() }
        worker.shutdown()
    }

    /** The preferred artifact pushed under the app's files dir (one folder per target, as metasr-export writes). */
    private fun loadEngine() {
        val root = getExternalFilesDir(null) ?: filesDir
        val found = root.listFiles().orEmpty()
            .map { File(it, ModelManifest.FILE_NAME) }
            .filter(File::isFile)
            .mapNotNull { file ->
                runCatching { ModelManifest.load(file) to file.parentFile!! }
                    .onFailure { Log.w(TAG, "skipping $file: ${it.message}") }
                    .getOrNull()
            }
            .filter { (manifest, dir) ->
                EngineKind.entries.any { it.target == manifest.target } && File(dir, manifest.file).exists()
            }
            .minByOrNull { (manifest, _) -> EngineKind.PREFERENCE.indexOf(manifest.engineKind) }
        if (found == null) {
            runOnUiThread { stats.text = getString(R.string.no_artifacts, root.absolutePath) }
            return
        }
        val (manifest, dir) = found
        runOnUiThread { stats.text = getString(R.string.loading, manifest.file) }
        if (manifest.file != manifest.engineKind.artifactName(manifest.scale, routed = manifest.routing != null)) {
            Log.w(TAG, "${manifest.file} is not the name metasr-export writes for ${manifest.target}")
        }
        try {
            val loaded = SrEngine.open(this, manifest, File(dir, manifest.file))
            engine = loaded
            tiler = Tiler.forManifest(manifest)
            val experts = manifest.routing?.let { " · routed, ${it.experts.size} experts" }.orEmpty()
            runOnUiThread { route = "${manifest.target} · ${manifest.file} · ${loaded.backend}$experts" }
        } catch (e: Exception) {
            Log.e(TAG, "cannot load ${manifest.file}", e)
            runOnUiThread { stats.text = "cannot load ${manifest.file}: ${e.message}" }
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val previewCase = Preview.Builder().build().also { it.setSurfaceProvider(preview.surfaceProvider) }
            val strategy = ResolutionStrategy(ANALYSIS_SIZE, ResolutionStrategy.FALLBACK_RULE_CLOSEST_LOWER_THEN_HIGHER)
            val analysis = ImageAnalysis.Builder()
                .setResolutionSelector(ResolutionSelector.Builder().setResolutionStrategy(strategy).build())
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
                .also { it.setAnalyzer(worker) { image -> process(image) } }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, previewCase, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun process(image: ImageProxy) {
        val engine = engine
        val tiler = tiler
        if (engine == null || tiler == null) {
            image.close()
            return
        }
        val frame = image.use { it.toBitmap().rotated(it.imageInfo.rotationDegrees) }
        val start = System.nanoTime()
        val out = tiler.upscale(frame.toPlanarRgb(), frame.width, frame.height) { tile ->
            engine.run(tile, tiler.tileHeight, tiler.tileWidth)
        }
        val ms = (System.nanoTime() - start) / 1e6
        val upscaled = planarRgbToBitmap(out, frame.width * tiler.scale, frame.height * tiler.scale)
        runOnUiThread {
            splitView.show(frame, upscaled)
            stats.text = "%.1f ms/frame  %dx%d → %dx%d".format(
                ms, frame.width, frame.height, upscaled.width, upscaled.height,
            )
        }
    }

    private fun Bitmap.rotated(degrees: Int): Bitmap {
        if (degrees == 0) return this
        val matrix = Matrix().apply { postRotate(degrees.toFloat()) }
        return Bitmap.createBitmap(this, 0, 0, width, height, matrix, true)
    }

    companion object {
        private const val TAG = "MetaSRDemo"

        /** Camera frames fed to the model: small enough for a live preview on a phone CPU. */
        private val ANALYSIS_SIZE = Size(640, 480)
    }
}
