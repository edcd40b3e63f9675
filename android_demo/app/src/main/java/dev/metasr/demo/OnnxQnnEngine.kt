package dev.metasr.demo

import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtEpDevice
import ai.onnxruntime.OrtSession
import android.content.Context
import android.system.Os
import java.io.File
import java.nio.FloatBuffer

/**
 * An `.onnx` model through ONNX Runtime: the onnx-qnn QDQ model on the Qualcomm HTP through the QNN plugin
 * execution provider (CPU fallback disabled, as in the export's placement check), or the plain onnx model on CPU.
 */
class OnnxQnnEngine(context: Context, override val manifest: ModelManifest, artifact: File) : SrEngine {
    private val env: OrtEnvironment = OrtEnvironment.getEnvironment()
    private val session: OrtSession
    private val strengthShape = manifest.strengthShape?.let { shape -> LongArray(shape.size) { shape[it].toLong() } }
    override val backend: String
    override var strength: Float = manifest.defaultStrength

    init {
        val options = OrtSession.SessionOptions()
        if (manifest.engineKind == EngineKind.ONNX_QNN) {
            val qnnBackend = manifest.qnnBackend ?: "htp"
            options.addConfigEntry("session.disable_cpu_ep_fallback", "1")
            options.addExecutionProvider(
                qnnDevices(context),
                mapOf("backend_type" to qnnBackend, "offload_graph_io_quantization" to "0"),
            )
            backend = "QNN $qnnBackend"
        } else {
            backend = "CPU"
        }
        // A pre-compiled EPContext model (recipe option context_soc_model) skips on-device graph compilation.
        val model = manifest.contextModelFile?.let { File(artifact.parentFile, it) }?.takeIf(File::exists) ?: artifact
        session = env.createSession(model.absolutePath, options)
    }

    override fun run(input: FloatArray, height: Int, width: Int): FloatArray {
        val shape = longArrayOf(1, 3, height.toLong(), width.toLong())
        val image = OnnxTensor.createTensor(env, FloatBuffer.wrap(input), shape)
        // a bare student takes the image alone
        val strength = strengthShape?.let { OnnxTensor.createTensor(env, FloatBuffer.wrap(floatArrayOf(strength)), it) }
        try {
            val feeds = mapOf(ModelManifest.IMAGE_INPUT to image) +
                listOfNotNull(strength?.let { ModelManifest.STRENGTH_INPUT to it })
            session.run(feeds, setOf(ModelManifest.OUTPUT)).use { result ->
                val output = result.get(ModelManifest.OUTPUT).get() as OnnxTensor
                val buffer = output.floatBuffer
                return FloatArray(buffer.remaining()).also { buffer.get(it) }
            }
        } finally {
            strength?.close()
            image.close()
        }
    }

    override fun close() = session.close()

    private fun qnnDevices(context: Context): List<OrtEpDevice> {
        synchronized(OnnxQnnEngine::class.java) {
            if (!registered) {
                val libraryDir = context.applicationInfo.nativeLibraryDir
                // The HTP skeleton libraries are loaded by the DSP from here.
                Os.setenv("ADSP_LIBRARY_PATH", libraryDir, true)
                env.registerExecutionProviderLibrary(QNN_EP_NAME, File(libraryDir, QNN_EP_LIBRARY).absolutePath)
                registered = true
            }
        }
        return env.epDevices.filter { it.epName == QNN_EP_NAME }.ifEmpty {
            throw IllegalStateException("the QNN execution provider found no device; this phone has no Qualcomm HTP")
        }
    }

    companion object {
        const val QNN_EP_NAME = "QNNExecutionProvider"
        /** Shipped by com.qualcomm.qti:onnxruntime-android-qnn (the same file name as in the onnxruntime-qnn wheel). */
        const val QNN_EP_LIBRARY = "libonnxruntime_providers_qnn.so"

        @Volatile
        private var registered = false
    }
}
