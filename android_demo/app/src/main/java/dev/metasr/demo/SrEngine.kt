package dev.metasr.demo

import android.content.Context
import java.io.File

/** One super-resolution model, loaded and ready: upscales one tile at a time. */
interface SrEngine : AutoCloseable {
    val manifest: ModelManifest

    /** What executes the model, e.g. "XnnpackBackend", "VulkanBackend", "QNN htp", "CPU". */
    val backend: String

    /**
     * Restoration strength fed with every tile: a value in [0, 1] replaces the degradation degree the model
     * estimates (0 = treat the frame as clean, 1 = restore as hard as possible); the manifest's default (-1)
     * keeps the estimate. A bare-student artifact (no strength input in its manifest) ignores it: it has no
     * degradation estimate to override.
     */
    var strength: Float

    /**
     * Upscale one tile. [input] is planar RGB (CHW) in [0, 1], [height] x [width]; the result is planar RGB
     * of (scale * height) x (scale * width), also in [0, 1]. A routed artifact runs its router and the expert(s) it
     * picks for the tile ([RoutedDispatch]).
     */
    fun run(input: FloatArray, height: Int, width: Int): FloatArray

    companion object {
        /** The engine for [manifest]'s target, loading [artifact]. */
        fun open(context: Context, manifest: ModelManifest, artifact: File): SrEngine =
            when (manifest.engineKind) {
                EngineKind.EXECUTORCH_XNNPACK, EngineKind.EXECUTORCH_VULKAN -> ExecuTorchEngine(manifest, artifact)
                EngineKind.ONNX_QNN, EngineKind.ONNX_CPU -> OnnxQnnEngine(context, manifest, artifact)
            }
    }
}

/**
 * The manifest targets this app can run, the runtime id it reports in benchmark results, and the artifact name
 * the exporter writes for each (toolkit/metasr/exporter/<target>.py; %d is the scale): the model, and the `file` of
 * a routed artifact (the one .pte holding every function, or the router's .onnx beside one file per expert).
 */
enum class EngineKind(
    val target: String,
    val runtime: String,
    private val artifactPattern: String,
    private val routedPattern: String,
) {
    EXECUTORCH_XNNPACK("executorch-xnnpack", "executorch-xnnpack", "metasr_x%d.pte", "metasr_x%d_routed.pte"),
    EXECUTORCH_VULKAN("executorch-vulkan", "executorch-vulkan", "metasr_x%d.pte", "metasr_x%d_routed.pte"),
    ONNX_QNN("onnx-qnn", "onnxruntime-qnn", "metasr_x%d_qdq.onnx", "metasr_x%d_router_qdq.onnx"),
    ONNX_CPU("onnx", "onnxruntime-cpu", "metasr_x%d.onnx", "metasr_x%d_router.onnx");

    fun artifactName(scale: Int, routed: Boolean = false): String =
        (if (routed) routedPattern else artifactPattern).format(scale)

    /** Whether the model accepts input sizes other than the exported ones (ONNX with dynamic height/width). */
    val dynamicSize: Boolean get() = this == ONNX_CPU

    companion object {
        /** Preference when several artifacts are on the device: NPU, GPU, CPU int8, CPU float. */
        val PREFERENCE = listOf(ONNX_QNN, EXECUTORCH_VULKAN, EXECUTORCH_XNNPACK, ONNX_CPU)

        fun forTarget(target: String): EngineKind = entries.firstOrNull { it.target == target }
            ?: throw IllegalArgumentException(
                "target '$target' has no Android engine; export one of ${entries.joinToString { it.target }}"
            )
    }
}
