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
 * A routed artifact is a file per function (router, expert_0, ...), each its own session, dispatched per tile by
 * [RoutedDispatch].
 */
class OnnxQnnEngine(context: Context, override val manifest: ModelManifest, artifact: File) : SrEngine {
    private val env: OrtEnvironment = OrtEnvironment.getEnvironment()
    /** A session per file: the model, or each function file of a routed artifact (router, expert_0, ...). */
    private val sessions: Map<String, OrtSession>
    private val dispatch = RoutedDispatch.forManifest(manifest)
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
        val routing = manifest.routing
        sessions = if (routing == null) {
            // A pre-compiled EPContext model (recipe option context_soc_model) skips on-device graph compilation.
            val model = manifest.contextModelFile?.let { File(artifact.parentFile, it) }?.takeIf(File::exists)
                ?: artifact
            mapOf(artifact.name to env.createSession(model.absolutePath, options))
        } else {
            // The sessions take turns on every tile: threads one leaves spinning would starve the next.
            options.addConfigEntry("session.intra_op.allow_spinning", "0")
            routing.files.associateWith { env.createSession(File(artifact.parentFile, it).absolutePath, options) }
        }
    }

    override fun run(input: FloatArray, height: Int, width: Int): FloatArray {
        val routing = manifest.routing
        if (routing == null || dispatch == null) return run(sessions.values.single(), input, height, width, true)
        // the router reads the thumbnail and the strength; an expert, the whole tile alone
        val router = sessions.getValue(routing.router.file)
        val routerStrength = ModelManifest.STRENGTH_INPUT in routing.routerInputs
        return dispatch.run(
            input, height, width,
            router = { thumbnail, th, tw -> run(router, thumbnail, th, tw, routerStrength) },
            expert = { k -> run(sessions.getValue(routing.experts[k].file), input, height, width, false) },
        )
    }

    /** One session call: the image, and the strength when [withStrength] and the manifest lists it. */
    private fun run(
        session: OrtSession,
        input: FloatArray,
        height: Int,
        width: Int,
        withStrength: Boolean,
    ): FloatArray {
        val shape = longArrayOf(1, 3, height.toLong(), width.toLong())
        val image = OnnxTensor.createTensor(env, FloatBuffer.wrap(input), shape)
        // a bare student (or a routed expert) takes the image alone
        val strength = strengthShape?.takeIf { withStrength }
            ?.let { OnnxTensor.createTensor(env, FloatBuffer.wrap(floatArrayOf(strength)), it) }
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

    override fun close() = sessions.values.forEach(OrtSession::close)

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
