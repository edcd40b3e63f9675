package dev.metasr.demo

import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import java.io.File

/**
 * A `.pte` (XNNPACK or Vulkan delegate) run through ExecuTorch's Android library. A routed `.pte` holds a method per
 * function (`router`, `expert_0`, ...) instead of `forward`; each tile is dispatched by [RoutedDispatch].
 */
class ExecuTorchEngine(override val manifest: ModelManifest, artifact: File) : SrEngine {
    private val module: Module = Module.load(artifact.absolutePath)
    private val strengthShape = manifest.strengthShape?.let { shape -> LongArray(shape.size) { shape[it].toLong() } }
    private val routing = manifest.routing
    private val dispatch = RoutedDispatch.forManifest(manifest)
    private val loaded = mutableSetOf<String>()
    override val backend: String
    override var strength: Float = manifest.defaultStrength

    init {
        val methods = routing?.let { r -> (listOf(r.router) + r.experts).map { it.function } } ?: listOf(METHOD)
        methods.forEach(::load)
        backend = methods.flatMap { module.getMethodMetadata(it).backends.asList() }.distinct()
            .joinToString("+").ifEmpty { "portable" }
    }

    private fun load(method: String) {
        if (method in loaded) return
        val status = module.loadMethod(method)
        check(status == 0) {
            "ExecuTorch could not load '$method' from ${manifest.file} (error 0x${status.toString(16)}); " +
                "a Vulkan .pte needs an AAR built with the Vulkan backend (see README)"
        }
        loaded += method
    }

    override fun run(input: FloatArray, height: Int, width: Int): FloatArray {
        val routing = routing
        if (routing != null && dispatch != null) return runRouted(routing, dispatch, input, height, width)
        val image = Tensor.fromBlob(input, longArrayOf(1, 3, height.toLong(), width.toLong()))
        // the manifest's input_order: (image, strength), or (image) for a bare student
        val inputs = listOfNotNull(image, strengthShape?.let { Tensor.fromBlob(floatArrayOf(strength), it) })
        val outputs = module.forward(*inputs.map(EValue::from).toTypedArray())
        check(outputs.isNotEmpty()) { "ExecuTorch '$METHOD' returned nothing; see logcat tag ExecuTorch" }
        return outputs[0].toTensor().dataAsFloatArray
    }

    /** The router on the tile's thumbnail (its inputs in manifest order), then the expert(s) it picks. */
    private fun runRouted(
        routing: Routing,
        dispatch: RoutedDispatch,
        input: FloatArray,
        height: Int,
        width: Int,
    ): FloatArray {
        val (h0, w0) = manifest.inputSize
        val t = routing.thumbnail
        return dispatch.run(
            input, height, width,
            router = { thumbnail, th, tw ->
                val inputs = routing.routerInputs.map { name ->
                    if (name == ModelManifest.IMAGE_INPUT) tensor(thumbnail, th, tw)
                    else Tensor.fromBlob(floatArrayOf(strength), checkNotNull(strengthShape))
                }
                execute(method(routing.router.function, th, tw, h0 / t to w0 / t), inputs)
            },
            expert = { k ->
                val method = method(routing.experts[k].function, height, width, h0 to w0)
                execute(method, listOf(tensor(input, height, width)))
            },
        )
    }

    private fun tensor(data: FloatArray, height: Int, width: Int): Tensor =
        Tensor.fromBlob(data, longArrayOf(1, 3, height.toLong(), width.toLong()))

    private fun execute(method: String, inputs: List<Tensor>): FloatArray {
        load(method)
        val outputs = module.execute(method, *inputs.map(EValue::from).toTypedArray())
        check(outputs.isNotEmpty()) { "ExecuTorch '$method' returned nothing; see logcat tag ExecuTorch" }
        return outputs[0].toTensor().dataAsFloatArray
    }

    override fun close() = module.destroy()

    companion object {
        /** The method `metasr-export` writes into every .pte. */
        const val METHOD = "forward"

        /**
         * A routed function's method for a [height] x [width] input: the function's own name at its first exported
         * size ([first]), else `<function>_<H>x<W>` (metasr.exporter.executorch_common.method_sizes).
         */
        fun method(function: String, height: Int, width: Int, first: Pair<Int, Int>): String =
            if (height to width == first) function else "${function}_${height}x$width"
    }
}
